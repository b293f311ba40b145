"""Which pods a Kubernetes agent reads for `federator logs`, and how much (backends/kube/pod_logs.py).

The API server's answer to `pods/NAME/log` is played by `LogServer` with its documented semantics (tailLines: the
last lines; limitBytes: the first bytes of those): the real API server's own answer on the test bed's kwok nodes
is tests/kube/test_kube_pod_logs_testbed.py's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import KubeError
from federator.backends.kube.pod_logs import container_of, numbered, own_pods, read_logs
from federator.podtemplates import AGENT_NAMESPACE_ANNOTATION, CLUSTER_ANNOTATION

ME = AgentIdentity("east-1", "federator-workloads", "fed:7070")


def pod(name: str, *, index: int | None = None, cluster: str = "east-1", created: str = "2026-01-01T00:00:00Z",
        containers: tuple[str, ...] = ("main", "side")) -> dict[str, Any]:
    annotations = {"federator.io/placement-id": "j.g1.east-1"}
    if cluster:
        annotations |= {CLUSTER_ANNOTATION: cluster, AGENT_NAMESPACE_ANNOTATION: "federator-workloads"}
    if index is not None:
        annotations["batch.kubernetes.io/job-completion-index"] = str(index)
    return {"metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
            "spec": {"containers": [{"name": c} for c in containers]}}


class LogServer:
    """`pod_log` as the API server answers it; `calls` records each (pod, container, tailLines, limitBytes)."""

    def __init__(self, logs: dict[str, str], fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.logs = logs
        self.fail = fail
        self.calls: list[tuple[str, str, int, int]] = []

    def pod_log(self, namespace: str, name: str, *, container: str, tail_lines: int, limit_bytes: int) -> bytes:
        self.calls.append((name, container, tail_lines, limit_bytes))
        if name in self.fail:
            raise KubeError(500, "Get \"https://10.0.0.1:10250/containerLogs/...\": dial tcp: connection refused")
        lines = self.logs[name].encode().splitlines(keepends=True)
        return b"".join(lines[-tail_lines:])[:limit_bytes]


def test_only_this_agents_pods_of_the_placement_are_read() -> None:
    pods = [pod("j-0", index=0), pod("j-1", index=1, cluster="west-9"), pod("j-2", index=2, cluster=""),
            {**pod("other-0"), "metadata": {**pod("other-0")["metadata"], "annotations": {}}}]
    mine, others = own_pods(pods, "j.g1.east-1", ME,
                            lambda p: p["metadata"]["annotations"].get("federator.io/placement-id", ""))
    assert [p["metadata"]["name"] for p in mine] == ["j-0"]
    assert others == 2  # another agent's, and one without an identity; "other-0" is not the placement's


def test_a_trainjobs_pods_go_by_their_trainjobs_identity() -> None:
    """A TrainJob's pods carry neither the placement's annotation nor an agent's identity (Trainer v2 labels the
    JobSet only): they are this agent's when their TrainJob is, and another agent's when it is not."""
    bare = {"metadata": {"name": "tune-node-0-0", "annotations": {},
                         "labels": {"jobset.sigs.k8s.io/jobset-name": "tune"}}}
    trainjobs = {"mine": pod("tune"), "theirs": pod("tune", cluster="west-9")}
    for whose, kept in (("mine", 1), ("theirs", 0)):
        mine, others = own_pods([bare], "j.g1.east-1", ME, lambda p: "j.g1.east-1",
                                lambda p: trainjobs[whose])  # noqa: B023 (called at once)
        assert (len(mine), others) == (kept, 1 - kept)
    assert own_pods([bare], "j.g1.east-1", ME, lambda p: "j.g1.east-1") == ([], 1)  # the pod alone says nothing


def test_replicas_are_completion_indexes_newest_pod_first_else_name_order() -> None:
    old, new = pod("j-1-aaaaa", index=1), pod("j-1-bbbbb", index=1, created="2026-01-02T00:00:00Z")
    assert [(i, p["metadata"]["name"]) for i, p in numbered([new, pod("j-0", index=0), old])] == \
        [(0, "j-0"), (1, "j-1-bbbbb")]
    assert [(i, p["metadata"]["name"]) for i, p in numbered([pod("web-b"), pod("web-a")])] == \
        [(0, "web-a"), (1, "web-b")]


def test_the_newest_lines_are_kept_within_the_share_though_the_server_keeps_the_start() -> None:
    text = "".join(f"step {i:05d} loss 0.{i:04d}\n" for i in range(1000))  # 23 bytes a line
    server = LogServer({"j-0": text, "j-1": text})
    got = asyncio.run(read_logs(server, "ns", [pod("j-0", index=0), pod("j-1", index=1)], replica=-1,  # type: ignore[arg-type]
                                container="", tail_lines=500, limit_bytes=1000))
    assert isinstance(got, list)
    for out in got:
        assert out.container == "main" and out.truncated
        assert len(out.text.encode()) <= 500  # the share: 1000 bytes among two replicas
        assert out.text.endswith("step 00999 loss 0.0999\n")  # the newest line, not the start of the tail
    # read once with 4 x the share (2000 bytes came back full: the newest lines missing), then with fewer lines
    assert server.calls[:2] == [("j-0", "main", 500, 2000), ("j-0", "main", 21, 2000)]  # 86 lines came: 21 fit


def test_one_replica_a_named_container_and_errors_per_replica() -> None:
    server = LogServer({"j-0": "a\nb\n", "j-1": "c\n"}, fail={"j-1"})
    pods = [pod("j-0", index=0), pod("j-1", index=1)]
    (only,) = asyncio.run(read_logs(server, "ns", pods, replica=0, container="side", tail_lines=10,  # type: ignore[arg-type]
                                    limit_bytes=100))
    assert (only.replica, only.pod, only.container, only.text, only.truncated) == (0, "j-0", "side", "a\nb\n", False)
    got = asyncio.run(read_logs(server, "ns", pods, replica=-1, container="", tail_lines=1, limit_bytes=100))  # type: ignore[arg-type]
    assert isinstance(got, list)
    assert (got[0].text, got[0].truncated) == ("b\n", True)
    assert got[1].error.startswith("reading its log: HTTP 500") and got[1].text == ""
    (missing,) = asyncio.run(read_logs(server, "ns", pods, replica=0, container="gpu", tail_lines=1,  # type: ignore[arg-type]
                                       limit_bytes=100))
    assert missing.error == "container 'gpu': not in this pod (it has main, side)"
    assert asyncio.run(read_logs(server, "ns", pods, replica=5, container="", tail_lines=1,  # type: ignore[arg-type]
                                 limit_bytes=100)) == "no pod of replica 5"


def test_bytes_that_are_not_utf8_are_replaced() -> None:
    class Raw(LogServer):
        def pod_log(self, namespace: str, name: str, **_: Any) -> bytes:
            return b"ok \xff\xfe done\n"

    (out,) = asyncio.run(read_logs(Raw({}), "ns", [pod("j-0", index=0)], replica=-1, container="",  # type: ignore[arg-type]
                                   tail_lines=10, limit_bytes=100))
    assert out.text == "ok \ufffd\ufffd done\n"


def test_a_follows_read_asks_the_api_server_from_its_second_with_each_line_dated() -> None:
    """sinceTime and timestamps=true (agent.proto LogsRequest.since_time/timestamps) as the API server documents
    them: only the lines from that second on, each begun with its RFC 3339 time."""
    class Dated(LogServer):
        def __init__(self) -> None:
            super().__init__({})
            self.asked: list[tuple[str, bool]] = []

        def pod_log(self, namespace: str, name: str, *, container: str, tail_lines: int, limit_bytes: int,
                    since_time: str = "", timestamps: bool = False) -> bytes:
            self.asked.append((since_time, timestamps))
            lines = [("2026-12-06T10:00:04.5Z", "a"), ("2026-12-06T10:00:05.1Z", "b"), ("2026-12-06T10:00:06Z", "c")]
            kept = [(t, x) for t, x in lines if not since_time or t[:19] >= since_time[:19]]
            return "".join(f"{t + ' ' if timestamps else ''}{x}\n" for t, x in kept).encode()[:limit_bytes]

    server = Dated()
    (got,) = asyncio.run(read_logs(server, "ns", [pod("j-0", index=0)], replica=0, container="",  # type: ignore[arg-type]
                                   tail_lines=10_000, limit_bytes=1000, since_time="2026-12-06T10:00:05Z",
                                   timestamps=True))
    assert got.text == "2026-12-06T10:00:05.1Z b\n2026-12-06T10:00:06Z c\n"
    assert server.asked == [("2026-12-06T10:00:05Z", True)]
    asyncio.run(read_logs(server, "ns", [pod("j-0", index=0)], replica=0, container="", tail_lines=1,  # type: ignore[arg-type]
                          limit_bytes=1000))
    assert server.asked[-1] == ("", False)  # a plain tail asks neither


def test_by_default_the_accelerator_container_is_read_not_the_first() -> None:
    """Outside pretraining QA P4: a template `[logshipper, trainer]` annotated federator.io/accelerator-container:
    trainer (docs/kubernetes.md) printed the log shipper's output; what a failed rank said needed --container."""
    shipped = {"metadata": {"name": "j-0", "annotations": {"federator.io/accelerator-container": "trainer"}},
               "spec": {"containers": [{"name": "logshipper"}, {"name": "trainer"}]}}
    assert container_of(shipped, "") == ("trainer", "")
    assert container_of(shipped, "logshipper") == ("logshipper", "")
    stale = {**shipped, "metadata": {"name": "j-0", "annotations": {"federator.io/accelerator-container": "gone"}}}
    assert container_of(stale, "") == ("logshipper", "")  # an annotation naming no container: the first, as before
