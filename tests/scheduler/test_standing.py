"""A pending job's reason names its queue's standing against its weighted fair share (tenant QA F2)."""

from __future__ import annotations

from scenarios import H100, cycle, running, spec, with_queues

from builders import cluster, pool


def test_an_over_share_queue_says_it_holds_its_share_and_who_goes_first() -> None:
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))  # 16 accelerators, all held
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(12)]
    held += [running(spec(f"b{i}", gpus=1, queue="org-b"), "c") for i in range(4)]
    result = cycle([c], [spec("more-a", gpus=1, queue="org-a"), spec("more-b", gpus=1, queue="org-b")],
                   config=with_queues(**{"org-a": 1, "org-b": 1}), allocations=held)
    over = result.pending["more-a"].message
    assert over.endswith("; queue org-a holds 12 accelerators; its weighted fair share now is 8.0; "
                         "queues further under their share go first")
    assert "fair share" not in result.pending["more-b"].message  # under its share: it goes first already


def test_the_share_follows_the_weights() -> None:
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(13)]
    held += [running(spec(f"b{i}", gpus=1, queue="org-b"), "c") for i in range(3)]
    result = cycle([c], [spec("more-a", gpus=1, queue="org-a")],
                   config=with_queues(**{"org-a": 3, "org-b": 1}), allocations=held)
    assert "queue org-a holds 13 accelerators; its weighted fair share now is 12.0" in result.pending["more-a"].message


def test_a_queue_alone_reads_no_standing() -> None:
    """With no other queue at work the share is the whole fleet: a full fleet is no news about fair share."""
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(16)]
    result = cycle([c], [spec("more-a", gpus=1, queue="org-a")], allocations=held)
    assert "fair share" not in result.pending["more-a"].message
