"""agent.proto is the whole contract for a third-party agent (goagentqa62: a Go agent written from the proto alone).

What its comments state of the federator's own data and behaviour is checked against the code here, so the words
cannot drift from it: the built-in accelerator catalog's vendors and resources (M2: they lived only in a data file
of src/), the model-matching rule's examples, the seals' bounds (H1: "printable" let a non-ASCII seal through to
a comparison that raised), the re-sync window's count (M1), and what follows a refused Launch (L3)."""

from __future__ import annotations

import re
from pathlib import Path

from federator.agent.final_updates import ENDED_KEPT_AT_MOST, ENDED_KEPT_SECONDS
from federator.api.seals import MAX_SEAL_CHARS
from federator.catalog import DRA_SUFFIX, catalog
from federator.model.accelerator import model_matches

AGENT_PROTO = Path(__file__).resolve().parents[2] / "proto/federator/v1/agent.proto"


def _flat(text: str) -> str:
    """Comment text as one line: a phrase may wrap."""
    return re.sub(r"\s*\n\s*(//)?\s*", " ", text)


def _text() -> str:
    return AGENT_PROTO.read_text()


def test_the_vendor_table_is_the_built_in_catalogs() -> None:
    text = _text()
    header = text[text.index("// The nodes of one cluster that carry one accelerator type"):
                  text.index("message AcceleratorPool {")]
    table = dict(re.findall(r"^//   ([a-z]+) +(\S.*)$", header, re.M))
    want = {}
    for vendor in catalog().vendors:
        row = ", ".join(vendor.resources)
        if vendor.dra:
            row += "; DRA " + ", ".join(f'"{d.device_class}{DRA_SUFFIX}"' for d in vendor.dra)
        want[vendor.name] = row
    assert table == want
    flat = _flat(header)
    assert "--accelerator-catalog" in flat and "A vendor the catalog lacks is taken as sent" in flat


def test_the_model_matching_rule_is_stated_with_examples_that_hold() -> None:
    text = _text()
    pool = _flat(text[text.index("message AcceleratorPool {"):text.index("repeated int32 nodes_by_free = 2;")])
    assert "in the same order and next to each other, ignoring case" in pool
    for wanted, pool_name in (("H100", "NVIDIA-H100-80GB-HBM3"), ("A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB")):
        assert f'"{wanted}" selects "{pool_name}"' in pool and model_matches(wanted, pool_name)
    assert '"A10" does not select "NVIDIA-A100-SXM4-80GB"' in pool
    assert not model_matches("A10", "NVIDIA-A100-SXM4-80GB")


def test_source_files_are_named_only_as_examples() -> None:
    """A third party reads the proto, not the Python tree: "the reference agent does exactly this (a file)" made the
    file the contract."""
    flat = _flat(_text())
    assert "exactly this" not in flat
    for m in re.finditer(r"src/federator/", flat):
        assert "for example" in flat[max(0, m.start() - 60):m.start()], flat[m.start() - 120:m.end() + 60]


def test_the_seals_bounds_say_printable_ascii() -> None:
    flat = _flat(_text())
    said = flat.lower().count(f"at most {MAX_SEAL_CHARS} printable ascii characters")
    assert said == 3  # Launch.seal, Cancel.seal, JobUpdate.launch_seal (cancel_seal: "Same bounds")
    assert f"{MAX_SEAL_CHARS} printable characters" not in flat


def test_step_3_says_how_to_count_the_day_of_ends() -> None:
    text = _text()
    step3 = _flat(text[text.index("// 3. Re-sync"):text.index("// 4. Send something")])
    assert f"max({ENDED_KEPT_SECONDS:.0f}, that Welcome's lost_after_seconds)" in step3
    assert "ONE stream has been up" in step3 and "the next one counts from its own Welcome again" in step3
    assert f"Past {ENDED_KEPT_AT_MOST:,} ends forget the oldest first" in step3
    assert "need not outlive the agent's own restart" in step3


def test_ack_says_a_refused_launch_is_cancelled() -> None:
    text = _text()
    ack = _flat(text[text.index("// The answer to a Launch:"):text.index("message Ack {")])
    assert 'A refused Launch is followed by a Cancel of that placement (reason "superseded: CLUSTER refused:' in ack
