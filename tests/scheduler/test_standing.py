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
    assert over.endswith("; queue org-a holds 10 to 19 accelerators; its weighted fair share now is 5 to 9; "
                         "queues further under their share go first")
    # under its share it goes first already; with nothing its to stop, it reads why it waits all the same
    assert "its weighted fair share now is" not in result.pending["more-b"].message
    assert "queue org-b holds 2 to 4 accelerators, under its weighted fair share of 5 to 9" in \
        result.pending["more-b"].message


def test_the_share_follows_the_weights() -> None:
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(13)]
    held += [running(spec(f"b{i}", gpus=1, queue="org-b"), "c") for i in range(3)]
    result = cycle([c], [spec("more-a", gpus=1, queue="org-a")],
                   config=with_queues(**{"org-a": 3, "org-b": 1}), allocations=held)
    assert "queue org-a holds 10 to 19 accelerators; its weighted fair share now is 10 to 19" in \
        result.pending["more-a"].message


def test_the_standing_note_keeps_its_words_while_the_queue_starts_another_job() -> None:
    """Told as ranges (scheduler/told_counts.py; kubescaleqa62 H1, M2): org-a holding 12 or 13 of its share of 8
    reads the same words, so a job it starts rewrites none of its waiting jobs' stored reasons."""
    def said(a_holds: int) -> str:
        c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
        held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(a_holds)]
        held += [running(spec(f"b{i}", gpus=1, queue="org-b"), "c") for i in range(16 - a_holds)]
        return cycle([c], [spec("more-a", gpus=1, queue="org-a"), spec("more-b", gpus=1, queue="org-b")],
                     config=with_queues(**{"org-a": 1, "org-b": 1}), allocations=held).pending["more-a"].message

    assert said(12) == said(13)
    assert "queue org-a holds 10 to 19 accelerators; its weighted fair share now is 5 to 9" in said(12)


def test_a_queue_alone_reads_no_standing() -> None:
    """With no other queue at work the share is the whole fleet: a full fleet is no news about fair share."""
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(16)]
    result = cycle([c], [spec("more-a", gpus=1, queue="org-a")], allocations=held)
    assert "fair share" not in result.pending["more-a"].message


def test_an_under_share_queue_behind_only_non_preemptible_work_says_why_nothing_is_preempted() -> None:
    """Outside re-test, F2's remainder: org-b (weight 3, holding nothing) waited behind org-a's non-preemptible
    flood with the bare "no node with 1 free" reason, the words an over-share queue reads too."""
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))  # 16 accelerators, all held by org-a
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(16)]
    result = cycle([c], [spec("more-b", gpus=1, queue="org-b")],
                   config=with_queues(**{"org-a": 1, "org-b": 3}), allocations=held)
    assert not result.preemptions
    assert result.pending["more-b"].message.endswith(
        "; queue org-b holds 0 accelerators, under its weighted fair share of 10 to 19; not preempting: the work in "
        "its way is not preemptible (or is of a higher priority)")


def test_the_under_share_note_is_also_said_when_the_preemptible_work_is_not_its_to_stop() -> None:
    """Preemptible work of a higher priority is running: none of it is a victim for org-b's job either."""
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a", priority=50, preemptible=True), "c") for i in range(16)]
    result = cycle([c], [spec("more-b", gpus=1, queue="org-b")],
                   config=with_queues(**{"org-a": 1, "org-b": 1}), allocations=held)
    assert not result.preemptions
    assert "queue org-b holds 0 accelerators, under its weighted fair share of 5 to 9; not preempting" in \
        result.pending["more-b"].message


def test_a_job_waiting_on_its_own_quota_reads_no_under_share_note() -> None:
    """Its quota, not the work in its way, is why it waits: the note would send the tenant to the wrong cause."""
    from dataclasses import replace

    from federator.scheduler import QueueConfig, Quota
    c = cluster("c", "r", pool(H100, nodes=0, extra={0: 2}))
    held = [running(spec(f"a{i}", gpus=1, queue="org-a"), "c") for i in range(16)]
    config = with_queues(**{"org-a": 1, "org-b": 1})
    config = replace(config, queues={**config.queues, "org-b": QueueConfig(quota=Quota(accelerator_milli={H100: 0}))})
    result = cycle([c], [spec("more-b", gpus=1, queue="org-b")], config=config, allocations=held)
    assert "fair share" not in result.pending["more-b"].message
