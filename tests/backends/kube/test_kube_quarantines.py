"""The annotation that keeps a quarantine in Kubernetes mode (backends/kube/quarantines.py): what it holds, what
is read back, and an annotation that is not a quarantine (edited by hand) is skipped, said, not fatal."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_kube_member_clusters import FakeApi, member

from federator.backends.kube.quarantines import ANNOTATION, KubeQuarantineStore, decode, encode, held_in
from federator.model.quarantine import Held


def _annotated(name: str, text: str) -> dict[str, Any]:
    obj = member(name, "Ready")
    obj["metadata"]["annotations"] = {ANNOTATION: text}
    return obj


def test_the_annotation_holds_the_end_rounded_up_to_the_second_and_the_reason() -> None:
    text = encode(Held(1_700_000_000.25, "3 placements of 2 owners failed"))
    assert text == '{"reason": "3 placements of 2 owners failed", "until": "2023-11-14T22:13:21Z"}'
    assert decode(text) == Held(1_700_000_001.0, "3 placements of 2 owners failed")


@pytest.mark.parametrize(("text", "said"), [
    ("{", "not JSON"), ("[]", "must be an object"), ('{"reason": "x"}', "until: must be an RFC 3339 time"),
    ('{"until": "tomorrow"}', "until: must be an RFC 3339 time, got 'tomorrow'"),
], ids=["not-json", "not-object", "no-until", "bad-until"])
def test_an_annotation_that_is_not_a_quarantine_is_skipped_and_said(text: str, said: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match=said):
        decode(text)
    good = encode(Held(1_700_000_000.0, "kept"))
    with caplog.at_level(logging.WARNING, logger="federator.kube.quarantines"):
        assert held_in([_annotated("bad", text), _annotated("ok", good), member("none", "Ready")]) == \
            {"ok": Held(1_700_000_000.0, "kept")}
    assert f"MemberCluster bad: annotation {ANNOTATION} is not a quarantine ({said}" in caplog.text


def test_a_put_patches_only_the_annotation_and_an_end_on_a_missing_object_writes_nothing() -> None:
    api = FakeApi([member("east-1", "Ready")])
    store = KubeQuarantineStore(api)  # type: ignore[arg-type]
    store.put("east-1", Held(1_700_000_000.0, "kept"))
    assert api.writes == [("patch/", "east-1", {"metadata": {"annotations": {ANNOTATION: encode(
        Held(1_700_000_000.0, "kept"))}}})]
    assert store.load() == {"east-1": Held(1_700_000_000.0, "kept")}
    store.put("gone", None)
    assert len(api.writes) == 1  # no object, nothing to end: none made for it
