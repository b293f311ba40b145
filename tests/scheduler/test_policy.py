"""Policy files: parsed into a SchedulerConfig, every bad field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.scheduler import PolicyError, load_policy, parse_policy

GOOD = """
queues:
  research: {weight: 1, quota: {gpus: {H100: 64, A100: 200}, cpu: 2000, memory: 16Ti}, maxPendingJobs: 5000}
  serving: {weight: 2}
defaultQueue: {weight: 0.5, maxPendingJobs: 1000}
scoreWeights: {LeastFragmentation: 2, Price: 1}
preemption: {enabled: true, maxVictimsPerCycle: 3}
regions:
  latencyMs:
    east: {central: 40, west: 120}
    central: {west: 70}
"""


def test_a_full_policy() -> None:
    cfg = parse_policy(GOOD)
    assert cfg.queue("serving").weight == 2
    assert cfg.queue("anything-else").weight == 0.5
    assert cfg.queue("research").max_pending_jobs == 5000 and cfg.queue("anything-else").max_pending_jobs == 1000
    assert cfg.queue("serving").max_pending_jobs is None  # the server's --max-pending-jobs-per-queue
    quota = cfg.queue("research").quota
    assert quota.accelerator_milli == {"H100": 64_000, "A100": 200_000}
    assert quota.cpu_milli == 2_000_000 and quota.memory_bytes == 16 * 2**40
    assert dict(cfg.score_weights) == {"LeastFragmentation": 2, "Price": 1}
    assert cfg.max_preemptions_per_cycle == 3
    assert cfg.latency_ms("west", "east") == 120 and cfg.latency_ms("east", "east") == 0
    assert cfg.latency_ms("east", "mars") is None


def test_the_example_policy_loads(examples: Path) -> None:
    cfg = load_policy(examples / "policy.yaml")
    assert cfg.queues


def test_empty_policy_is_the_defaults() -> None:
    assert parse_policy("").queues == {}


BAD = [
    ("queues: [a, b]", "queues"),
    ("queues: {a: {weight: 0}}", "queues.a.weight"),
    ("queues: {a: {wieght: 1}}", "queues.a.wieght"),
    ("queues: {a: {quota: {gpus: {H100: lots}}}}", "queues.a.quota.gpus.H100"),
    ("queues: {a: {quota: {cpu: -1}}}", "queues.a.quota.cpu"),
    ("queues: {a: {maxPendingJobs: 0}}", "queues.a.maxPendingJobs"),
    ("defaultQueue: {maxPendingJobs: true}", "defaultQueue.maxPendingJobs"),
    ("scoreWeights: {Cheapness: 1}", "scoreWeights.Cheapness"),
    ("scoreWeights: {Price: -1}", "scoreWeights.Price"),
    ("preemption: {maxVictimsPerCycle: many}", "preemption.maxVictimsPerCycle"),
    ("preemption: {enabled: sometimes}", "preemption.enabled"),
    ("regions: {latencyMs: {east: {west: fast}}}", "regions.latencyMs.east.west"),
    ("regions: {latencyMs: {east: {west: 10}, west: {east: 20}}}", "regions.latencyMs.west.east"),
    ("rebalance: {maxMovesPerMinute: -1}", "rebalance.maxMovesPerMinute"),
    ("rebalance: {maxMovesPerMinute: lots}", "rebalance.maxMovesPerMinute"),
    ("rebalance: {quietSeconds: -5}", "rebalance.quietSeconds"),
    ("rebalance: {maxMoves: 3}", "rebalance.maxMoves"),
    ("rebalance: [6]", "rebalance"),
    ("colour: blue", "colour"),
    ("[1, 2]", "document"),
    ("a: [", "document"),
]


@pytest.mark.parametrize(("text", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_policy_names_the_field(text: str, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, source="p.yaml")
    assert field in str(err.value) and str(err.value).startswith("p.yaml: ")


def test_the_rebalance_section() -> None:
    """Unset: on, at most 6 moves a minute, a job not moved again within 10 minutes; 0 moves a minute: off."""
    assert (parse_policy("").rebalance.max_moves_per_minute, parse_policy("").rebalance.quiet_seconds) == (6, 600.0)
    cfg = parse_policy("rebalance: {maxMovesPerMinute: 0, quietSeconds: 60}").rebalance
    assert (cfg.max_moves_per_minute, cfg.quiet_seconds) == (0, 60.0)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("queues: {a: {weight: -1}}\nscoreWeights: {Nope: 1}")
    assert len(err.value.problems) == 2


@pytest.mark.parametrize(("data", "said"), [
    (b"scoreWeights: [\n", "document: not valid YAML: expected the node content, but found '<stream end>' "
                           "(line 2, column 1)"),
    (b"\x97\x00\xff binary", "file: is not UTF-8 text (byte 0x97 at offset 0)"),
    (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "document: nested too deep"),
], ids=["broken-yaml", "binary", "deep"])
def test_a_policy_file_that_is_not_yaml_is_one_line_naming_the_file(tmp_path: Path, data: bytes, said: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(data)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == f"{path}: {said}"


def test_owner_share_is_a_queue_option_on_by_default() -> None:
    """Within a priority the user holding least goes first (scheduler/owner_share.py); a queue may keep FIFO."""
    config = parse_policy("queues:\n  batch: {ownerShare: false}\n  research: {weight: 2}\n")
    assert config.queue("batch").owner_share is False
    assert config.queue("research").owner_share is True
    with pytest.raises(PolicyError, match=r"queues\.batch\.ownerShare: must be true .* or false .*got 'no'"):
        parse_policy("queues:\n  batch: {ownerShare: 'no'}\n")

