"""The federator chart's revocation list: a ConfigMap (or an existing ConfigMap or Secret) behind --revocation-list.

The rendered list is parsed by the federator's own parser, and the flag by
its CLI parser, so the chart cannot write a list or a flag the federator
refuses. The mount is a directory, not a subPath: only then does the kubelet
update the file in place, which the federator notices and re-reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_support import FEDERATOR, Helm, by_kind, containers, one

from federator.cli import build_parser
from federator.security.auth import parse_revocations
from federator.security.pki import Identity, IdentityKind

ENTRIES = ["--set", "revocationList.enabled=true", "--set", "revocationList.entries[0]=cluster east-1",
           "--set", "revocationList.entries[1]=user mallory", "--set", "revocationList.entries[2]=serial 0A:1B"]


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def _flag(docs: list[dict[str, Any]]) -> Path | None:
    parsed = build_parser().parse_args(containers(docs)[0]["args"])
    return parsed.revocation_list  # type: ignore[no-any-return]


def test_no_revocation_list_by_default(h: Helm) -> None:
    docs = h.template(FEDERATOR)
    assert _flag(docs) is None
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-revocations")]
    assert "revocations" not in {v["name"] for v in _pod(docs)["volumes"]}


def test_entries_become_the_list_the_federator_reads(h: Helm) -> None:
    docs = h.template(FEDERATOR, *ENTRIES)
    cm = one(docs, "ConfigMap", "-revocations")
    for version in ("1.27", "1.37"):
        kubernetes_validate.validate(cm, version, strict=True)
    parsed = parse_revocations(cm["data"]["revoked.txt"], source="chart")
    assert parsed.identities == {Identity(IdentityKind.CLUSTER, "east-1"), Identity(IdentityKind.USER, "mallory")}
    assert parsed.serials == {0x0A1B}
    assert _flag(docs) == Path("/etc/federator/revocations/revoked.txt")
    [c] = containers(docs)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "revocations")
    assert mount == {"name": "revocations", "mountPath": "/etc/federator/revocations", "readOnly": True}
    volume = next(v for v in _pod(docs)["volumes"] if v["name"] == "revocations")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]


def test_an_empty_list_is_a_valid_list(h: Helm) -> None:
    """Enabled with no entries yet: the federator starts with nothing revoked, and a helm upgrade adds entries."""
    cm = one(h.template(FEDERATOR, "--set", "revocationList.enabled=true"), "ConfigMap", "-revocations")
    assert parse_revocations(cm["data"]["revoked.txt"]) == parse_revocations("")


def test_changing_the_list_does_not_roll_the_pods(h: Helm) -> None:
    """The federator re-reads the mounted file: revoking must not restart it (and drop every agent's stream)."""
    before = one(h.template(FEDERATOR, *ENTRIES), "Deployment")
    after = one(h.template(FEDERATOR, *ENTRIES, "--set", "revocationList.entries[3]=cluster west-1"), "Deployment")
    assert before == after


@pytest.mark.parametrize(("args", "kind", "name"), [
    pytest.param(["--set", "revocationList.existingConfigMap=fleet-revocations"], "configMap", "fleet-revocations",
                 id="existing-configmap"),
    pytest.param(["--set", "revocationList.existingSecret=fleet-revocations"], "secret", "fleet-revocations",
                 id="existing-secret"),
])
def test_an_existing_configmap_or_secret_is_mounted(h: Helm, args: list[str], kind: str, name: str) -> None:
    docs = h.template(FEDERATOR, "--set", "revocationList.enabled=true", "--set", "revocationList.key=crl.txt",
                      *args)
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-revocations")]
    volume = next(v for v in _pod(docs)["volumes"] if v["name"] == "revocations")
    assert volume[kind] == ({"secretName": name} if kind == "secret" else {"name": name})
    assert _flag(docs) == Path("/etc/federator/revocations/crl.txt")
    for version in ("1.27", "1.37"):
        kubernetes_validate.validate(one(docs, "Deployment"), version, strict=True)


@pytest.mark.parametrize(("args", "field"), [
    pytest.param(["--set", "revocationList.entries[0]=east-1"], "/revocationList/entries/0", id="entry-without-kind"),
    pytest.param(["--set", "revocationList.entries[0]=serial xyz"], "/revocationList/entries/0", id="serial-not-hex"),
    pytest.param(["--set", "revocationList.key=a/b"], "/revocationList/key", id="key-with-slash"),
    pytest.param(["--set", "revocationList.enable=true"], "enable", id="unknown-key"),
    pytest.param(["--set", "revocationList.existingConfigMap=a", "--set", "revocationList.existingSecret=b"],
                 "revocationList.existingSecret", id="configmap-and-secret"),
    pytest.param(["--set", "revocationList.existingSecret=b", "--set", "revocationList.entries[0]=user x"],
                 "revocationList.entries", id="entries-and-existing"),
    pytest.param(["--set", "tls.enabled=false", "--set", "mode=standalone", "--set", "replicaCount=1",
                  "--set", "leaderElection.enabled=false", "--set", "persistence.enabled=true"],
                 "revocationList.enabled", id="needs-tls"),
])
def test_bad_revocation_values_are_refused_naming_the_field(h: Helm, args: list[str], field: str) -> None:
    assert field in h.template_error(FEDERATOR, "--set", "revocationList.enabled=true", *args)
