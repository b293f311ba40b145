"""The accelerator catalog: shipped as data, extended by operators' files, errors name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.backends.kube.discovery import Discovery
from federator.catalog import (
    CatalogError,
    builtin_catalog,
    load_catalog_file,
    memory_mib_of_label,
    parse_catalog_text,
)


def test_the_builtin_catalog_knows_the_vendors_device_plugins() -> None:
    cat = builtin_catalog()
    assert set(cat.vendor_names) >= {"nvidia", "amd", "huawei", "cambricon", "hygon", "intel"}
    assert {"nvidia.com/gpu", "amd.com/gpu", "huawei.com/Ascend910", "huawei.com/Ascend310P", "cambricon.com/mlu",
            "hygon.com/dcu", "habana.ai/gaudi"} <= set(cat.resource_names)
    assert cat.vendor("nvidia").product_label == "nvidia.com/gpu.product"  # type: ignore[union-attr]
    h100 = cat.describe_model("H100")
    assert (h100.vendor, h100.memory_mib, h100.resource_name) == ("nvidia", 81559, "nvidia.com/gpu")  # by its words
    ascend = cat.describe_model("Ascend910B")
    assert (ascend.vendor, ascend.memory_mib, ascend.resource_name) == ("huawei", 65536, "huawei.com/Ascend910")
    assert cat.vendor_of_model("V100M16") == "nvidia"  # unknown models default to nvidia, as before vendors
    huawei = cat.vendor("huawei")
    assert huawei is not None
    # MindCluster dual-writes the chip name under a new and a deprecated key: both are read, the new first.
    assert huawei.product_labels == ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name")
    assert huawei.model_name("910B3") == "Ascend910B3" and huawei.model_name("Ascend910B3") == "Ascend910B3"
    assert cat.describe_model("Ascend910B3").family == "Ascend910B"
    assert [d.driver for v in cat.vendors for d in v.dra] == ["gpu.nvidia.com", "gpu.amd.com"]


def test_an_operator_file_adds_a_dra_driver_and_product_labels(tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text("vendors:\n  amd:\n    resources: [amd.com/gpu]\n    dra:\n"
                     "      - {driver: gpu.amd.com, productAttribute: productName, memoryCapacity: vram}\n"
                     "  huawei:\n    resources: [huawei.com/Ascend910]\n    productLabel: example.com/chip\n")
    cat = builtin_catalog().merged(load_catalog_file(extra))
    amd, huawei = cat.vendor("amd"), cat.vendor("huawei")
    assert amd is not None and huawei is not None
    assert [(d.driver, d.memory_capacity) for d in amd.dra] == [("gpu.amd.com", "vram")]  # the operator's wins
    assert huawei.product_labels == ("example.com/chip",)
    assert huawei.memory_labels[0] == "huawei.com/npu.chip.memory"  # what the file does not say is kept


def test_an_operator_file_extends_the_builtin_catalog(tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text("vendors:\n  iluvatar:\n    resources: [iluvatar.ai/gpu]\n    models:\n"
                     "      - {name: BI-V150, memoryMiB: 65536}\n"
                     "  huawei:\n    resources: [huawei.com/Ascend910]\n    models:\n"
                     "      - {name: Ascend910C, memoryMiB: 131072}\n")
    cat = builtin_catalog().merged(load_catalog_file(extra))
    assert cat.vendor_of_resource("iluvatar.ai/gpu").name == "iluvatar"  # type: ignore[union-attr]
    assert cat.describe_model("Ascend910C").memory_mib == 131072
    assert cat.describe_model("Ascend910B").memory_mib == 65536  # the built-in models stay


@pytest.mark.parametrize(("text", "where"), [
    ("vendors:\n  acme:\n    models: []\n", "catalog:3: vendors.acme.resources: is required"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    models:\n      - {name: X1, memoryMiB: lots}\n",
     "catalog:5: vendors.acme.models[0].memoryMiB: must be a positive integer"),
    ("vendors:\n  acme:\n    resources: [not a name]\n", "catalog:3: vendors.acme.resources[0]:"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    colour: red\n", "catalog:4: vendors.acme.colour: is not"),
    ("vendors: [\n", "catalog:2: not valid YAML"),
    ("vendors:\n  Acme Inc:\n    resources: [acme.io/npu]\n", "catalog:2: vendors.Acme Inc:"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    productLabel: [acme.io/product, not a label]\n",
     "catalog:4: vendors.acme.productLabel: must be a node label key"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    models:\n      - {name: X1, family: X 1}\n",
     "catalog:5: vendors.acme.models[0].family: must be a model name"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra:\n      - {deviceClass: npu.acme.io}\n",
     "catalog:5: vendors.acme.dra[0].driver: is required"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra:\n      - driver: npu.acme.io\n"
     "        productAttribute: 'product name'\n", "catalog:6: vendors.acme.dra[0].productAttribute: must be"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra:\n      - {driver: npu.acme.io, colour: red}\n",
     "catalog:5: vendors.acme.dra[0].colour: is not a known field"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    models: X1\n",
     "catalog:4: vendors.acme.models: must be a list of {name, memoryMiB, resource, family, aiCores}"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    models: [X1]\n",
     "catalog:4: vendors.acme.models[0]: must be a mapping {name, memoryMiB, resource, family, aiCores}"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra: npu.acme.io\n",
     "catalog:4: vendors.acme.dra: must be a list of {driver, deviceClass,"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra: [npu.acme.io]\n",
     "catalog:4: vendors.acme.dra[0]: must be a mapping {driver, deviceClass,"),
], ids=["no-resources", "bad-memory", "bad-resource", "unknown-key", "bad-yaml", "bad-vendor", "bad-label-list",
        "bad-family", "dra-without-driver", "bad-dra-attribute", "unknown-dra-key", "models-not-a-list",
        "model-not-a-mapping", "dra-not-a-list", "dra-not-a-mapping"])
def test_a_catalog_with_errors_names_the_line(text: str, where: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog_text(text)
    assert where in str(err.value)


def test_memory_labels_in_the_plugins_units() -> None:
    assert memory_mib_of_label("81559") == 81559  # nvidia.com/gpu.memory, MiB
    assert memory_mib_of_label("192G", "Gi") == 196608  # amd.com/gpu.vram
    assert memory_mib_of_label("64", "Gi") == 65536
    assert memory_mib_of_label("lots") == 0


def test_the_one_count_forms_resource_belongs_to_the_vendor_the_scheduler_binds_it_to() -> None:
    """A job asking `nvidia.com/gpu` without spec.accelerators runs on SchedulerConfig.legacy_vendor's pools:
    that must be the vendor whose device plugin advertises the resource."""
    from federator.jobfile import GPU_RESOURCE
    from federator.scheduler import SchedulerConfig

    owner = builtin_catalog().vendor_of_resource(GPU_RESOURCE)
    assert owner is not None and owner.name == SchedulerConfig().legacy_vendor == "nvidia"


def test_a_family_name_belongs_to_its_vendor_though_no_entry_carries_it_as_a_name() -> None:
    extra = parse_catalog_text("vendors:\n  acme:\n    resources: [acme.example/npu]\n    models:\n"
                               "      - {name: Acme-X1, memoryMiB: 65536, family: Acme-X}\n")
    cat = builtin_catalog().merged(extra)
    assert cat.vendor_of_model("Acme-X") == "acme"  # a job naming the family runs on acme, not the default nvidia
    assert cat.describe_model("Acme-X").family == ""  # the family of a model, never of the family itself
    assert cat.describe_model("Acme-X1").family == "Acme-X"


@pytest.mark.parametrize(("text", "where"), [
    ("vendors:\n  metax:\n    resources: [nvidia.com/gpu]\n    defaultModel: MX\n",
     "more.yaml:3: vendors.metax.resources[0]: 'nvidia.com/gpu' is nvidia's resource"),
    ("vendors:\n  metax:\n    resources: [metax-tech.com/gpu, hygon.com/dcu]\n",
     "more.yaml:3: vendors.metax.resources[1]: 'hygon.com/dcu' is hygon's resource"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n  bolt:\n    resources: [acme.io/npu]\n",
     "more.yaml:5: vendors.bolt.resources[0]: 'acme.io/npu' is acme's resource"),
    ("vendors:\n  acme:\n    resources: [acme.io/npu]\n    dra:\n      - {driver: gpu.nvidia.com}\n",
     "more.yaml:5: vendors.acme.dra[0].driver: 'gpu.nvidia.com' is nvidia's DRA driver"),
], ids=["another-vendors-resource", "one-of-several", "two-new-vendors", "another-vendors-dra-driver"])
def test_a_file_giving_a_vendor_another_vendors_resource_is_refused(tmp_path: Path, text: str, where: str) -> None:
    """A resource name (or DRA driver) belongs to one vendor: given to two, the agent reported the same GPUs once
    per vendor and a "metax" job ran on NVIDIA nodes (outside QA, vendors V4)."""
    extra = tmp_path / "more.yaml"
    extra.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog_file(extra, base=builtin_catalog())
    assert where in str(err.value)


def test_a_files_resources_for_a_known_vendor_add_to_its_own_and_keep_its_models(tmp_path: Path) -> None:
    """A 0.10.0 file (where `resources` was required) naming one huawei resource to add a model keeps the other
    huawei resources and their models (outside QA re-test, vendors2 R1: replacing them made the agent stop reading
    the Ascend 310P nodes without a word); a resource it adds is read too, a model may name any of the vendor's
    resources, and a vendor the file names without `resources` keeps its own."""
    extra = tmp_path / "more.yaml"
    extra.write_text("vendors:\n  huawei:\n    resources: [huawei.com/Ascend910, huawei.com/Ascend310P-2c]\n"
                     "    models:\n      - {name: Ascend910B3, memoryMiB: 65536, family: Ascend910B}\n"
                     "      - {name: Ascend310P9, memoryMiB: 24576, resource: huawei.com/Ascend310P}\n"
                     "  amd:\n    models:\n      - {name: AMD-Instinct-MI400, memoryMiB: 442368}\n")
    builtin = builtin_catalog()
    cat = builtin.merged(load_catalog_file(extra, base=builtin))
    huawei, amd = cat.vendor("huawei"), cat.vendor("amd")
    assert huawei is not None and amd is not None
    assert huawei.resources == ("huawei.com/Ascend910", "huawei.com/Ascend310P", "huawei.com/Ascend310",
                                "huawei.com/Ascend310P-2c")
    assert cat.vendor_of_resource("huawei.com/Ascend310P").name == "huawei"  # type: ignore[union-attr]
    assert {m.name for m in builtin.models("huawei")} | {"Ascend310P9"} == {m.name for m in huawei.models}
    assert cat.describe_model("Ascend310P3").resource_name == "huawei.com/Ascend310P"
    assert cat.describe_model("Ascend310P9").resource_name == "huawei.com/Ascend310P"
    assert cat.describe_model("Ascend910B3").resource_name == "huawei.com/Ascend910"
    read = {(p.vendor, p.resource) for p in Discovery.from_catalog(cat).plugins}
    assert {("huawei", "huawei.com/Ascend310P"), ("huawei", "huawei.com/Ascend310"),
            ("huawei", "huawei.com/Ascend310P-2c")} <= read
    assert amd.resources == ("amd.com/gpu",)
    assert cat.describe_model("AMD-Instinct-MI400").resource_name == "amd.com/gpu"


def test_a_known_vendors_resource_stays_its_own_when_the_file_lists_it_another_resource(tmp_path: Path) -> None:
    """Resources add, so listing a built-in vendor's resources frees none of them: giving huawei.com/Ascend310P to
    a new vendor is still refused (vendors V4), whether or not the file lists huawei's resources."""
    extra = tmp_path / "more.yaml"
    extra.write_text("vendors:\n  huawei:\n    resources: [huawei.com/Ascend910]\n"
                     "  acme:\n    resources: [huawei.com/Ascend310P]\n")
    with pytest.raises(CatalogError) as err:
        load_catalog_file(extra, base=builtin_catalog())
    assert "more.yaml:5: vendors.acme.resources[0]: 'huawei.com/Ascend310P' is huawei's resource" in str(err.value)


@pytest.mark.parametrize(("name", "vendor", "memory"), [
    ("DCU", "hygon", 0),  # selects DCU-Z100 (32 GiB) and DCU-K100 (64 GiB): unknown, not the first listed
    ("DCU-K100", "hygon", 65536),
    ("A100", "nvidia", 0),  # the 40 GB and the 80 GB
    ("H100", "nvidia", 81559),  # one model's words
    ("Ascend910B", "huawei", 65536),  # an entry of that name
    ("MLU", "cambricon", 0),
], ids=["dcu", "dcu-k100", "a100", "h100", "family-entry", "mlu"])
def test_a_pools_memory_is_the_catalogs_only_where_the_name_leaves_no_doubt(name: str, vendor: str,
                                                                            memory: int) -> None:
    """Outside QA, vendors V7: a Hygon "DCU" pool was given DCU-Z100's memory, the first DCU of the file."""
    assert builtin_catalog().describe_model(name, vendor).memory_mib == memory


def test_a_models_ai_cores_are_catalog_data_built_in_and_from_an_operators_file(tmp_path: Path) -> None:
    """aiCores (what a static vNPU template's share of the chip is worked out against) are data: the built-in
    chips have them, a file adds a chip's (in YAML's integer forms) and corrects one, keeping its other fields."""
    cat = builtin_catalog()
    cores = {m.name: m.ai_cores for m in cat.models("huawei") if m.ai_cores}
    assert cores == {"Ascend910A": 32, "Ascend910ProA": 32, "Ascend910PremiumA": 32, "Ascend910ProB": 30,
                     "Ascend910B": 30, "Ascend910B1": 24, "Ascend910B2": 24, "Ascend910B2C": 24, "Ascend910B3": 20,
                     "Ascend910B4": 20, "Ascend310P3": 8}
    extra = tmp_path / "more.yaml"
    extra.write_text("vendors:\n  huawei:\n    models:\n"
                     "      - {name: Ascend910B4-1, memoryMiB: 65536, family: Ascend910B, aiCores: 0x14}\n"
                     "      - {name: Ascend910B2, aiCores: 2_0}\n      - {name: Ascend310P3, aiCores: 8}\n")
    merged = cat.merged(load_catalog_file(extra, base=cat))
    b41, b2 = merged.find_model("Ascend910B4-1"), merged.find_model("Ascend910B2")
    assert b41 is not None
    assert (b41.ai_cores, b41.family, b41.resource_name) == (20, "Ascend910B", "huawei.com/Ascend910")
    assert b2 is not None and (b2.ai_cores, b2.family, b2.memory_mib) == (20, "Ascend910B", 65536)  # the rest kept
    assert merged.find_model("Ascend910B3").ai_cores == 20  # type: ignore[union-attr]  # untouched
    p3 = merged.find_model("Ascend310P3")  # its resource is its own, not the vendor's first (Ascend910)
    assert p3 is not None and (p3.resource_name, p3.family) == ("huawei.com/Ascend310P", "Ascend310P")


@pytest.mark.parametrize("value", ["lots", "0", "-24", "24.5", "'24'", "100000", "[24]", "null"])
def test_a_bad_ai_core_count_is_refused_naming_the_field_and_line(value: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from federator.cli import main

    bad = tmp_path / "catalog.yaml"
    bad.write_text(f"vendors:\n  huawei:\n    models:\n      - name: Ascend910B4-1\n        aiCores: {value}\n")
    with pytest.raises(CatalogError) as err:
        load_catalog_file(bad, base=builtin_catalog())
    assert f"{bad}:5: vendors.huawei.models[0].aiCores: must be a positive integer, the AI cores of one chip" \
        in str(err.value)
    assert main(["agent", "--cluster", "c", "--accelerator-catalog", str(bad)]) == 2  # refused, no traceback
    said = capsys.readouterr().err
    assert "vendors.huawei.models[0].aiCores: must be a positive integer" in said and "Traceback" not in said


@pytest.mark.parametrize(("value", "got"), [("0", "'0'"), ("2000", "'2000'"), ("8.5", "'8.5'"), ("[8]", "a list")])
def test_a_bad_per_node_count_is_refused_in_the_same_words_as_ai_cores(value: str, got: str, tmp_path: Path) -> None:
    """perNode and aiCores are checked by one helper: the same wording, the bound and what was given."""
    bad = tmp_path / "catalog.yaml"
    bad.write_text(f"vendors:\n  amd:\n    models:\n      - name: MI300X-OAM\n        perNode: {value}\n")
    with pytest.raises(CatalogError) as err:
        load_catalog_file(bad, base=builtin_catalog())
    assert f"{bad}:5: vendors.amd.models[0].perNode: must be a positive integer, the most devices of this model " \
        f"one node holds (8 for an MI300X OAM platform), at most 1024; got {got}" in str(err.value)
