"""A template pin on a vendor's product label is judged by the value the node label really carries (vendqa61 V6).

A pin in the catalog's spelling (`huawei.com/npu.chip.name: Ascend910B3`, `amd.com/gpu.product-name:
AMD-Instinct-MI300X`) was accepted at submit (submit's own advice had the user write it so), then refused by the
member for ever: MindCluster labels the chip 910B3, AMD's labeller AMD_Instinct_MI300X_OAM. Refused at submit now,
naming the value to pin; the label's own spelling is kept. A pin on another vendor's product label (a Huawei chip
label on an amd.com/gpu job) is refused too: no node the job may run on carries it."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.server.intake import SubmitError

ASCEND_CHIP = "huawei.com/npu.chip.name"
AMD_PRODUCT = "amd.com/gpu.product-name"


def _job(resource: str, models: list[str], selector: dict[str, str]) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": {"kind": "inference", "replicas": 1, "resources": {"cpu": "1", resource: 1},
                               **({"acceleratorModels": models} if models else {}),
                               "template": {"spec": {"nodeSelector": selector,
                                                     "containers": [{"name": "c", "image": "i:1"}]}}}})


def _submit(spec: JobSpec) -> str:
    fed = make(MemoryStore(), Clock())
    try:
        fed.submit(spec)
    except SubmitError as err:
        assert not fed.jobs
        return str(err)
    assert len(fed.jobs) == 1
    return ""


@pytest.mark.parametrize("resource, model, key, catalog_spelling, label", [
    ("huawei.com/Ascend910", "Ascend910B3", ASCEND_CHIP, "Ascend910B3", "910B3"),
    ("amd.com/gpu", "AMD-Instinct-MI300X", AMD_PRODUCT, "AMD-Instinct-MI300X", "AMD_Instinct_MI300X_OAM"),
], ids=["ascend", "amd"])
def test_a_pin_in_the_catalogs_spelling_is_refused_naming_the_labels(
        resource: str, model: str, key: str, catalog_spelling: str, label: str) -> None:
    said = _submit(_job(resource, [model], {key: catalog_spelling}))
    assert f"spec.template.spec.nodeSelector[{key}]" in said
    assert f"carry {key}={label}" in said and f"pin {label!r}" in said
    assert _submit(_job(resource, [model], {key: label})) == ""  # the label's own value: kept


def test_submits_advice_leads_to_the_labels_value() -> None:
    """p3: `[Ascend910B]` with the chip pinned: told to name the model, the pin staying: a pin that can match."""
    said = _submit(_job("huawei.com/Ascend910", ["Ascend910B"], {ASCEND_CHIP: "910B3"}))
    assert "name Ascend910B3 in spec." in said and "(the pin may stay)" in said
    assert _submit(_job("huawei.com/Ascend910", ["Ascend910B3"], {ASCEND_CHIP: "910B3"})) == ""


def test_another_vendors_product_label_is_refused() -> None:
    said = _submit(_job("amd.com/gpu", [], {ASCEND_CHIP: "910B3"}))
    assert f"nodeSelector[{ASCEND_CHIP}]" in said and "huawei's product label" in said and "amd" in said
    assert _submit(_job("amd.com/gpu", [], {"Model": "MLU370-X8"})) == ""  # a bare key may be a site's own


def test_a_partition_job_pinned_to_its_gpus_label_value_is_kept() -> None:
    """An AMD partition pool (AMD-Instinct-MI300X-CPX-NPS4) is pinned by its GPU's product label: a job naming
    MI300X-CPX with the label's value keeps the pin; one naming MI300X-CPX with another GPU's value does not."""
    from dataclasses import replace

    from server_support import capacity

    from builders import pool

    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="m", region="r", labels={})
    cpx = replace(pool("AMD-Instinct-MI300X-CPX-NPS4", nodes=1, gpus_per_node=64, free=64), vendor="amd",
                  sharing="MIG", unit_milli=125, resource_name="amd.com/gpu")
    fed.report(rec, replace(capacity(), accelerator_pools=(cpx,)))
    fed.submit(_job("amd.com/gpu", ["MI300X-CPX"], {AMD_PRODUCT: "AMD_Instinct_MI300X_OAM"}))
    with pytest.raises(SubmitError, match="is not AMD-Instinct-MI325X"):
        fed.submit(_job("amd.com/gpu", ["MI300X-CPX"], {AMD_PRODUCT: "AMD_Instinct_MI325X_OAM"}))
