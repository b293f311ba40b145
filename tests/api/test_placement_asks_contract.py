"""types.proto's JobSpec.region_weights and prefer are the whole contract of spec.regions.weights and spec.prefer: a
client written from the proto files alone learns the rounding, what happens without room, the bounds and fields a
refusal names, and the feature that says a federator serves them (scheduler/weights.py, scheduler/cheapest.py)."""

from __future__ import annotations

from pathlib import Path

from federator.api.features import FEATURES, JOBS_PLACEMENT_ASKS
from federator.api.v1 import types_pb2
from federator.model import MAX_REGION_WEIGHT, MAX_WEIGHTED_REGIONS, PRICE_LABEL

PROTOS = Path(__file__).resolve().parents[2] / "proto/federator/v1"


def _flat(text: str) -> str:
    return " ".join(text.replace("//", " ").split())


def test_the_proto_states_the_rule_the_bounds_the_fields_and_the_feature() -> None:
    text = (PROTOS / "types.proto").read_text()
    weights = _flat(text[text.index("// inference: static weights per region"):text.index("region_weights = 26;")])
    for term in ("floor(replicas x weight / sum)", "largest fractional part, then the heavier weight",
                 "8 replicas: 6 and 2", "never spill", "the whole job waits", f"at most {MAX_WEIGHTED_REGIONS}",
                 f"1 to {MAX_REGION_WEIGHT}", "INVALID_ARGUMENT naming spec.regions.weights", "training job",
                 f'"{JOBS_PLACEMENT_ASKS}"', "before 0.19.0"):
        assert term in weights, term
    prefer = _flat(text[text.index("enum Preference {"):text.index("PREFERENCE_CHEAPEST = 1;")])
    assert PRICE_LABEL in prefer and "after every priced one" in prefer
    assert JOBS_PLACEMENT_ASKS in FEATURES


def test_the_field_numbers_are_the_ones_shipped() -> None:
    """A renumbered field is read as another by every client built before: the numbers never change."""
    assert types_pb2.JobSpec.DESCRIPTOR.fields_by_name["region_weights"].number == 26
    assert types_pb2.JobSpec.DESCRIPTOR.fields_by_name["prefer"].number == 27
    assert types_pb2.PREFERENCE_CHEAPEST == 1
