"""The FederatedJob CRD and the job file validator describe the same spec (one shape, one name per field)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.jobfile import JobFileError, parse_job

from support import ROOT

CRDS = ROOT / "deploy" / "helm" / "federator" / "crds"


def _schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{name}.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"])


def _known(spec: dict[str, Any], field: str) -> set[str]:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(JobFileError) as err:
        parse_job(doc)
    match = re.search(rf"{re.escape(field)}: is not a known field \(known: ([^)]*)\)", str(err.value))
    assert match, str(err.value)
    return set(match.group(1).split(", "))


def test_spec_fields_match_the_job_file() -> None:
    spec = _schema("federatedjobs")["properties"]["spec"]
    assert set(spec["properties"]) == _known({"kind": "training", "resources": {"cpu": 1}, "zz": 1}, "spec.zz")
    assert set(spec["properties"]["regions"]["properties"]) == _known(
        {"kind": "training", "resources": {"cpu": 1}, "regions": {"zz": 1}}, "spec.regions.zz")
    # any catalog resource (nvidia.com/gpu, huawei.com/Ascend910, ...) is a quantity; the job file names bad ones
    assert "quantity" in str(spec["properties"]["resources"]["additionalProperties"]["pattern"]) or \
        spec["properties"]["resources"]["additionalProperties"]["x-kubernetes-int-or-string"]
    alternative = spec["properties"]["accelerators"]["items"]["properties"]
    assert set(alternative) == _known({"kind": "training", "accelerators": [{"count": 1, "zz": 1}]},
                                      "spec.accelerators[0].zz")


def test_kubectl_get_fj_columns() -> None:
    crd = yaml.safe_load((CRDS / "federatedjobs.yaml").read_text())
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    assert [c.upper() for c in columns] == ["QUEUE", "PHASE", "CLUSTER", "ACCELERATORS", "AGE"]
    assert crd["spec"]["names"]["shortNames"] == ["fj"]


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_no_key_is_a_yaml_accident(path: Path) -> None:
    """A comma in a flow-style description splits it into a bogus key; the API server refuses it on apply."""
    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                assert re.match(r"^[A-Za-z0-9_./-]+$", str(k)), f"{path.name}: suspicious key {k!r}"
                walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(yaml.safe_load(path.read_text()))
