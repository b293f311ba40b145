"""Resource quantities, in the integer base units the scheduler does arithmetic in.

CPU is counted in milli-cores, memory in bytes and accelerators in milli-devices, so that
accounting never touches floats and fractional accelerators (inference replicas that
share an accelerator) are first-class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MILLI = 1000

# Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity): a number, then a decimal SI suffix
# (n u m k M G T P E), a binary one (Ki ... Ei) or a decimal exponent (e3, E-6). The API server sends a
# quantity in the form it was written, or in its canonical form: a pod asking for 0.0001 CPU reads "100u".
_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal(10) ** -9,
    "u": Decimal(10) ** -6,
    "m": Decimal(1) / 1000,
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                       r"(?:[eE]([+-]?[0-9]{1,3})|(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$")
# An amount in the units the scheduler counts (milli-cores, bytes) is an int64 on the wire (proto/); none is larger.
_LARGEST = Decimal(2) ** 63 - 1


class QuantityError(ValueError):
    """A resource quantity that is not a Kubernetes quantity."""


def parse_quantity(value: object) -> Decimal:
    """Parse a Kubernetes quantity ("500m", "16Gi", "100u", "1e3", 8, 0.5) into a Decimal."""
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise QuantityError(f"must not be negative, got {value}")
        return Decimal(value)
    if isinstance(value, float):
        if value < 0 or value != value or value in (float("inf"),):
            raise QuantityError(f"must be a finite non-negative number, got {value}")
        return Decimal(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"expected a quantity such as '4', '500m' or '16Gi', got {value!r}")
    match = _QUANTITY.match(value.strip())
    if not match and _QUANTITY.match(value.strip().removeprefix("-")):
        raise QuantityError(f"must not be negative, got {value!r}")
    if not match:
        raise QuantityError(f"{value!r} is not a quantity such as '4', '500m' or '16Gi'")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the regex already vetted it
        raise QuantityError(f"{value!r} is not a number") from exc
    exponent = match.group(2)
    return number.scaleb(int(exponent)) if exponent else number * _SUFFIXES[match.group(3) or ""]


def _counted(value: object, amount: Decimal) -> Decimal:
    if amount > _LARGEST:
        raise QuantityError(f"{value!r} is too large")
    return amount


def to_milli(value: object) -> int:
    """A quantity in thousandths (CPU cores -> milli-cores, accelerators -> milli-devices); QuantityError if it
    is finer than that or past an int64."""
    milli = _counted(value, parse_quantity(value) * MILLI)
    if milli != milli.to_integral_value():
        raise QuantityError(f"{value!r} is finer than one thousandth")
    return int(milli)


def to_bytes(value: object) -> int:
    """A memory quantity in bytes."""
    amount = _counted(value, parse_quantity(value))
    if amount != amount.to_integral_value():
        raise QuantityError(f"{value!r} is not a whole number of bytes")
    return int(amount)


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource request or amount (per replica, unless said otherwise)."""

    cpu_milli: int = 0
    memory_bytes: int = 0
    accelerator_milli: int = 0

    @property
    def whole_accelerators(self) -> int:
        """accelerators a replica needs whole; 0 for CPU-only or fractional replicas."""
        return self.accelerator_milli // MILLI if self.accelerator_milli % MILLI == 0 else 0

    @property
    def is_fractional_accelerator(self) -> bool:
        return self.accelerator_milli % MILLI != 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.memory_bytes + other.memory_bytes,
            self.accelerator_milli + other.accelerator_milli,
        )

    def __mul__(self, n: int) -> Resources:
        return Resources(self.cpu_milli * n, self.memory_bytes * n, self.accelerator_milli * n)


def format_accelerators(accelerator_milli: int) -> str:
    """Human form of an accelerator amount: '8', '0.5', '20001.75' (exact: a fleet's total in whole-device
    equivalents runs to thousands with a fraction, which `:g` would round to '20001.8' or write as 1.2e+04)."""
    if accelerator_milli % MILLI == 0:
        return str(accelerator_milli // MILLI)
    whole, rest = divmod(abs(accelerator_milli), MILLI)
    return f"{'-' if accelerator_milli < 0 else ''}{whole}.{rest:03d}".rstrip("0")


def format_free_of_total(free: int, total: int, quota_held: int = 0, unit: str = "") -> str:
    """A pool's own counts as users are shown them: '8/24', or '8/24 (16 quota held)' when the member's own
    quota holds free ones back (AcceleratorPool.quota_held_accelerators): free on its nodes, not counted free.
    `unit` names what is counted when it is not whole devices: '14/14 partitions' for a MIG pool."""
    return f"{free}/{total}" + (f" {unit}" if unit else "") + (f" ({quota_held} quota held)" if quota_held > 0 else "")


def format_accelerator_milli_free_of_total(free_milli: int, total_milli: int, quota_held_milli: int = 0) -> str:
    """Accelerator milli over several pools in whole-device equivalents (cluster.accelerator_milli_of), as
    `format_free_of_total` shows counts: '9.75/11.75', '8/24 (16 quota held)'."""
    held = f" ({format_accelerators(quota_held_milli)} quota held)" if quota_held_milli > 0 else ""
    return f"{format_accelerators(free_milli)}/{format_accelerators(total_milli)}{held}"


def format_bytes(n: int) -> str:
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)
