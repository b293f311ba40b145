"""The tail of a placement's pods' output, read for `federator logs` (agent.proto, LogsRequest).

Why a module of its own: the user has no credentials to this member; the agent reads its own pods' logs with the
API server (`GET pods/NAME/log`, RBAC `get pods/log` in its workload namespaces) and sends them on its stream.
Which pods, and how much, is decided here:

* Only the agent's own: pods carrying the placement (its label and annotation) and this agent's identity
  (backends/kube/agent_identity.py), never another agent's on the same member, nor one made before 0.12.0
  (which carries no identity: it is not read, said as the replica's error).
* A replica is a pod's `batch.kubernetes.io/job-completion-index` (an indexed Job's pods, each index's newest
  pod when the Job replaced one); where the pods carry none (a Deployment's), their place in name order.
* Bounds: the API server's limitBytes keeps the *start* of what it sends, while a tail wants the end. So each pod
  is read with tailLines and READ_FACTOR times its byte share; when that came back full (the newest lines cut
  off), it is read again with as few lines as should fit the share, and its end is kept. The reply never holds
  more than the share (agent/logs.py holds the whole reply to limit_bytes again).
* Bytes that are not UTF-8 are written U+FFFD.
* A follow (agent.proto, LogsRequest.timestamps and since_time) reads with the API's timestamps=true and
  sinceTime: the kubelet dates each line and keeps only those from that second on; the federator cuts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from federator.agent.backend import ReplicaOutput
from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import KubeApi, KubeError
from federator.backends.kube.workloads.rendezvous import COMPLETION_INDEX_ANNOTATION
from federator.template_accelerators import ACCELERATOR_CONTAINER_ANNOTATION

READ_FACTOR = 4
MAX_READ_BYTES = 2 * 1024 * 1024
READS_AT_ONCE = 8

Pod = Mapping[str, Any]


def _meta(pod: Pod) -> Mapping[str, Any]:
    return pod.get("metadata") or {}


def _index(pod: Pod) -> int | None:
    raw = (_meta(pod).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION) or \
        (_meta(pod).get("labels") or {}).get(COMPLETION_INDEX_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def own_pods(pods: Sequence[Pod], placement_id: str, identity: AgentIdentity, placement_of: Callable[[Pod], str],
             bearer: Callable[[Pod], Pod] = lambda pod: pod) -> tuple[list[Pod], int]:
    """The placement's pods this agent made, and how many of its pods were left out as not this agent's. `bearer`
    gives the object whose identity a pod goes by: the pod itself, or for a TrainJob's pod its TrainJob."""
    mine, others = [], 0
    for pod in pods:
        if placement_of(pod) != placement_id:
            continue
        if identity.owns(bearer(pod)) is True:
            mine.append(pod)
        else:
            others += 1
    return mine, others


def numbered(pods: Sequence[Pod]) -> list[tuple[int, Pod]]:
    """Each replica's pod, in replica order (see the module): by completion index where every pod has one (the
    newest pod of an index), else by name."""
    indexed = [(_index(p), p) for p in pods]
    if indexed and all(i is not None for i, _ in indexed):
        newest: dict[int, Pod] = {}
        for i, pod in indexed:
            assert i is not None
            kept = newest.get(i)
            if kept is None or str(_meta(pod).get("creationTimestamp") or "") >= \
                    str(_meta(kept).get("creationTimestamp") or ""):
                newest[i] = pod
        return sorted(newest.items(), key=lambda item: item[0])
    return list(enumerate(sorted(pods, key=lambda p: str(_meta(p).get("name") or ""))))


def container_of(pod: Pod, asked: str) -> tuple[str, str]:
    """(the container to read, "") or ("", why not): the one asked, else the accelerator container (the pod's
    annotation federator.io/accelerator-container, from the job's template, when it names one of the pod's), else
    the pod's first. The first of a template `[logshipper, trainer]` is the log shipper: what a failed rank printed
    needed `--container trainer` (outside pretraining QA, P4)."""
    names = [str(c.get("name") or "") for c in (pod.get("spec") or {}).get("containers") or []]
    if asked:
        return (asked, "") if asked in names else ("", f"container {asked!r}: not in this pod (it has "
                                                       f"{', '.join(names) or 'none'})")
    main = str(((pod.get("metadata") or {}).get("annotations") or {}).get(ACCELERATOR_CONTAINER_ANNOTATION) or "")
    if main in names:
        return main, ""
    return (names[0], "") if names else ("", "the pod has no containers")


def _tail(raw: bytes, limit: int) -> tuple[bytes, bool]:
    return (raw, False) if len(raw) <= limit else (raw[len(raw) - limit:], True)


def read_one(api: KubeApi, namespace: str, replica: int, pod: Pod, container: str, tail_lines: int,
             share: int, dated: tuple[str, bool] = ("", False)) -> ReplicaOutput:
    """One pod's tail within `share` bytes (blocking: run in a thread); `dated`: (sinceTime, timestamps)."""
    name = str(_meta(pod).get("name") or "")
    read, why = container_of(pod, container)
    if why:
        return ReplicaOutput(replica, name, container, "", error=why)
    limit = max(1, min(share * READ_FACTOR, MAX_READ_BYTES))
    try:
        since_time, timestamps = dated
        extra: dict[str, Any] = {"since_time": since_time, "timestamps": timestamps} if any(dated) else {}
        raw = api.pod_log(namespace, name, container=read, tail_lines=tail_lines, limit_bytes=limit, **extra)
        cut = len(raw) >= limit
        if cut:  # the server kept the start of the tail: ask for as few lines as should fit, keep their end
            fewer = max(1, min(tail_lines - 1, raw.count(b"\n") * share // max(1, len(raw))))
            raw = api.pod_log(namespace, name, container=read, tail_lines=fewer, limit_bytes=limit, **extra)
    except KubeError as exc:
        return ReplicaOutput(replica, name, read, "", error=f"reading its log: {exc}")
    kept, over = _tail(raw, share)
    text = kept.decode("utf-8", errors="replace")
    if over and text.startswith("\ufffd"):  # a character cut in two at the share's edge
        text = text.lstrip("\ufffd")
    return ReplicaOutput(replica, name, read, text,
                         truncated=cut or over or raw.count(b"\n") >= tail_lines)


async def read_logs(api: KubeApi, namespace: str, pods: Sequence[Pod], *, replica: int, container: str,
                    tail_lines: int, limit_bytes: int, since_time: str = "",
                    timestamps: bool = False) -> list[ReplicaOutput] | str:
    """Each asked replica's tail, `limit_bytes` shared evenly among them, read in threads (READS_AT_ONCE); a
    follow's with `since_time` (RFC 3339) and `timestamps`."""
    chosen = [(i, p) for i, p in numbered(pods) if replica in (-1, i)]
    if not chosen:
        return f"no pod of replica {replica}" if replica >= 0 else "no pods (not started yet, or deleted)"
    share = max(1, limit_bytes // len(chosen))
    slots = asyncio.Semaphore(READS_AT_ONCE)

    async def one(i: int, pod: Pod) -> ReplicaOutput:
        async with slots:
            return await asyncio.to_thread(read_one, api, namespace, i, pod, container, tail_lines, share,
                                           (since_time, timestamps))

    return list(await asyncio.gather(*(one(i, p) for i, p in chosen)))


__all__ = ["container_of", "numbered", "own_pods", "read_logs", "read_one"]
