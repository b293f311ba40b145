"""What an accelerator is, vendor-neutrally, and the ways a job may ask for one.

An accelerator is any device a Kubernetes device plugin or DRA driver hands to
a pod: an NVIDIA or AMD GPU, a Huawei Ascend NPU, a Cambricon MLU, a Hygon DCU,
an Intel Gaudi HPU. The scheduler needs four facts of one: its vendor, its
model (product), the memory of one device and the resource name pods request
it by. Which vendors and models exist is data (`federator.catalog`), not code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: The vendor of a pool or fleet entry that names none and whose model the
#: catalog does not know: what every agent meant before vendors existed.
DEFAULT_VENDOR = "nvidia"


@dataclass(frozen=True, slots=True)
class AcceleratorType:
    """One kind of device: pools are keyed by (vendor, model)."""

    vendor: str
    model: str
    memory_mib: int = 0  # per device; 0 = unknown
    resource_name: str = ""  # e.g. nvidia.com/gpu, huawei.com/Ascend910

    @property
    def key(self) -> tuple[str, str]:
        return (self.vendor, self.model)


@dataclass(frozen=True, slots=True)
class AcceleratorAlternative:
    """One way to run a job's replicas: a model (and/or vendor), or a capability.

    `milli` is per replica (8000 = eight devices). `min_memory_mib` asks by
    capability: any model with at least that much memory per device.
    `pod_template_json` is merged over the job's template when this
    alternative is chosen (a CUDA image does not run on CANN or ROCm).
    `resource_name` is the device plugin resource the one-count form named,
    kept when the vendor's plugin advertises one per product line (Huawei:
    huawei.com/Ascend910, huawei.com/Ascend310P): only pools of that resource
    serve it. "" = any of the vendor's pools (a job stored before 0.11.0).
    """

    milli: int
    model: str = ""
    vendor: str = ""
    min_memory_mib: int = 0
    pod_template_json: str = ""
    resource_name: str = ""

    def describe(self) -> str:
        """Short human form: '8 x H100', '16 x huawei Ascend910B', '4 x >=64Gi', '1 x huawei.com/Ascend310P'."""
        what = " ".join(p for p in (self.resource_name or self.vendor, self.model) if p)
        if self.min_memory_mib:
            mem = self.min_memory_mib
            cap = f">={mem // 1024}Gi" if mem % 1024 == 0 else f">={mem}Mi"
            what = f"{what} {cap}".strip()
        count = str(self.milli // 1000) if self.milli % 1000 == 0 else f"{self.milli}m"
        return f"{count} x {what or 'any accelerator'}"


def prefixed_model(prefix: str, product: str) -> str:
    """A catalog model name from a product label's value: the vendor's prefix put in front unless the
    value starts with it already (Huawei labels the chip "910B3", the catalog says "Ascend910B3")."""
    if prefix and not product.lower().startswith(prefix.lower()):
        return f"{prefix}{product}"
    return product


def accepts_model(requested: str, model: str, family: str = "") -> bool:
    """Whether a user's model name selects a pool: by the pool's model (`model_matches`) or by the
    family the catalog puts it in ("Ascend910B" selects a pool of Ascend910B3 whose family is
    Ascend910B). A family is a name of its own, never a prefix rule: "A10" still does not select A100."""
    return model_matches(requested, model) or (bool(family) and model_matches(requested, family))


_TOKEN_SPLIT = re.compile(r"[-_ ./]+")


@lru_cache(maxsize=4096)
def model_matches(requested: str, actual: str) -> bool:
    """Whether a user's model name selects a pool's (or the catalog's) model name.

    Users write "H100" or "A100-SXM4-80GB"; nodes are labelled with names such
    as "NVIDIA-H100-80GB-HBM3". A request matches when its tokens appear, in
    order and adjacent, among the actual name's tokens (case-insensitive), so
    "H100" matches "NVIDIA-H100-80GB-HBM3" but "A10" does not match "A100".
    """
    want = [t for t in _TOKEN_SPLIT.split(requested.upper()) if t]
    have = [t for t in _TOKEN_SPLIT.split(actual.upper()) if t]
    if not want:
        return False
    for start in range(len(have) - len(want) + 1):
        if have[start : start + len(want)] == want:
            return True
    return False
