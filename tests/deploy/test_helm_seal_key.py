"""The federator chart's seal key (`federator serve --seal-key-file`, security/seal_keys.py): a Secret the chart makes
once (or one the operator names), mounted into every replica and passed by the flag, so seals agents say back and
page tokens outlive a renewal of the cert-manager certificate (rotationPolicy: Always replaces the serving key).

The rendered file is parsed by the federator's own parser, and the flag by its CLI parser. That `helm upgrade` keeps
the key (the template's lookup) needs a real API server: tests/deploy/test_helm_install.py."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_support import FEDERATOR, Helm, by_kind, containers, one

from federator.cli import build_parser
from federator.security.seal_keys import parse_seal_keys


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def _flag(docs: list[dict[str, Any]]) -> Path | None:
    return build_parser().parse_args(containers(docs)[0]["args"]).seal_key_file  # type: ignore[no-any-return]


def _secrets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in by_kind(docs, "Secret") if d["metadata"]["name"].endswith("-seal-key")]


@pytest.mark.parametrize("args", [[], ["--set", "tls.certManager.enabled=true",
                                       "--set", "tls.certManager.issuerRef.name=fleet-ca"],
                                  ["--set", "mode=kubernetes", "--set", "replicaCount=2"]],
                         ids=["default", "cert-manager", "two replicas"])
def test_the_chart_makes_a_seal_key_and_every_replica_reads_it(h: Helm, args: list[str]) -> None:
    docs = h.template(FEDERATOR, *args)
    [secret] = _secrets(docs)
    for version in ("1.27", "1.37"):
        kubernetes_validate.validate(secret, version, strict=True)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # helm uninstall leaves the key
    keys = parse_seal_keys(base64.b64decode(secret["data"]["seal-keys"]).decode())
    assert len(keys.keys) == 1 and len(keys.sealing) == 32
    assert _flag(docs) == Path("/etc/federator/seal-key/seal-keys")
    [c] = containers(docs)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "seal-key")
    assert mount == {"name": "seal-key", "mountPath": "/etc/federator/seal-key", "readOnly": True}
    volume = next(v for v in _pod(docs)["volumes"] if v["name"] == "seal-key")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]


def test_each_render_without_the_release_makes_a_new_key(h: Helm) -> None:
    """What `helm template` (a GitOps tool) does: no lookup, a new key each time; why sealKey.existingSecret exists
    (docs/operators.md). `helm upgrade` looks the Secret up and keeps its key (test_helm_install.py)."""
    first, second = (_secrets(h.template(FEDERATOR))[0]["data"] for _ in range(2))
    assert first != second


def test_an_existing_secret_is_mounted_and_none_is_made(h: Helm) -> None:
    docs = h.template(FEDERATOR, "--set", "sealKey.existingSecret=fleet-seal-keys", "--set", "sealKey.key=keys.txt")
    assert not _secrets(docs)
    assert _flag(docs) == Path("/etc/federator/seal-key/keys.txt")
    volume = next(v for v in _pod(docs)["volumes"] if v["name"] == "seal-key")
    assert volume["secret"]["secretName"] == "fleet-seal-keys"


def test_disabled_the_federator_keys_seals_from_its_serving_key(h: Helm) -> None:
    docs = h.template(FEDERATOR, "--set", "sealKey.enabled=false")
    assert not _secrets(docs) and _flag(docs) is None
    assert "seal-key" not in {v["name"] for v in _pod(docs)["volumes"]}


def test_a_bad_key_name_is_refused_naming_the_field(h: Helm) -> None:
    assert "sealKey" in h.template_error(FEDERATOR, "--set", "sealKey.key=a/b")
