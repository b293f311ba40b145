"""Seals of what only the federator may say to an agent: a Launch's placement and a job-ending Cancel.

Why: two words an agent says back were taken as the federator's own. JobUpdate.job_ended ended a job for good and
cancelled its placements on other providers' clusters (server/restored_ends.py), and a Running update of a
placement newer than the store was adopted as the job's placement (server/adoption.py); both exist for a federator
whose store was restored from an older snapshot. A placement id (JOB.gGEN.CLUSTER) and a flag are what any agent
can write: a member ended any job placed on it, and took another tenant's Pending job, billed, past its room, its
regions.allowed and its dependsOn (security QA secqa61, H1 and H2). Only words the federator can prove it said are
taken now: it seals each Launch (over placement id, job id, generation and cluster) and each job-ending Cancel (over
placement id and cluster) with an HMAC-SHA256 under a key derived from its TLS serving key, the agent keeps the seal
with the placement and says it back (agent.proto, Launch.seal, Cancel.seal, JobUpdate.launch_seal, cancel_seal).
The key outlives a restart, a restore of the store and a failover to a replica serving with the same key; it is a
key of its own (another HKDF info than the page tokens', server/paging.py), so no page token is a seal.

--insecure (no identity at all: any agent may say it is any cluster): the seal is under a key of the process, and
not required (`required` False): an agent's word is taken as before 0.20.0, since one that may be any cluster may
end or take any cluster's work anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from federator.api.seals import MAX_SEAL_CHARS, SEALS
from federator.api.v1 import agent_pb2, types_pb2
from federator.model import JobPhase

log = logging.getLogger("federator.server")

_INFO = b"federator.io placement seals v1"
_VERSION = "s1"


class Seals:
    """Makes and checks seals under a key derived (HKDF-SHA256) from a secret, or a random one per process.

    A seal is "s1.", the key's id (8 hex digits of a digest of the key: a seal under a key since replaced is told
    apart in the log, never taken) and the base64url MAC."""

    def __init__(self, secret: bytes | None = None, *, required: bool = False) -> None:
        material = secret if secret is not None else secrets.token_bytes(32)
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)
        self.key_id = hashlib.sha256(b"seal key id\x00" + self._key).hexdigest()[:8]
        self.required = required  # False: --insecure (and an in-process federator): unsealed words are taken

    def _seal(self, *parts: str) -> str:
        text = "\x00".join(parts).encode("utf-8", "replace")
        mac = hmac.new(self._key, text, hashlib.sha256).digest()
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def launch(self, placement_id: str, job_id: str, generation: int, cluster: str) -> str:
        """Launch.seal of this placement sent to `cluster`."""
        return self._seal("launch", placement_id, job_id, str(generation), cluster)

    def cancel(self, placement_id: str, cluster: str) -> str:
        """Cancel.seal of a Cancel that ends the job of `placement_id`, sent to `cluster`."""
        return self._seal("job ended", placement_id, cluster)

    def launched(self, seal: str, placement_id: str, job_id: str, generation: int, cluster: str) -> bool:
        """Whether `seal` is this federator's seal of that very Launch to `cluster` (or seals are not required)."""
        if not self.required:
            return True
        return bool(seal) and hmac.compare_digest(seal.encode("utf-8", "replace"),  # bytes: any str (goagentqa62 H1)
                                                  self.launch(placement_id, job_id, generation, cluster).encode())

    def ended(self, seal: str, placement_id: str, cluster: str) -> bool:
        """Whether `seal` is this federator's seal of a job-ending Cancel of `placement_id` to `cluster` (or seals
        are not required)."""
        if not self.required:
            return True
        return bool(seal) and hmac.compare_digest(seal.encode("utf-8", "replace"),  # bytes: any str (goagentqa62 H1)
                                                  self.cancel(placement_id, cluster).encode())

    def why_not(self, seal: str) -> str:
        """Words for a log line: why a seal that did not prove a word did not."""
        if not seal:
            return "said no seal (an agent before 0.20.0, or one that kept none)"
        if seal.startswith(f"{_VERSION}.") and seal[3:11] != self.key_id:
            return "said a seal under another key (the serving key was replaced since?)"
        return "said a seal this federator did not make for that placement and cluster"


_seals = Seals()


def job_ended(cluster: str, update: agent_pb2.JobUpdate, held: JobPhase | None) -> bool:
    """JobUpdate.job_ended as the federator takes it from `cluster`'s agent: only of a Cancelled update whose
    cancel_seal is this federator's seal of a job-ending Cancel of that placement to that cluster. Else the update
    is a stop the cluster made on its own (re-placed, counted against the cluster: server/federator.py), never the
    job's end, and its other placements run on (secqa61 H1); logged where it would have ended a job: `held`, the
    phase the store holds of the placement current there, is live (else the job has ended, or the placement is not
    current: the word changes nothing, as every cancel's Cancelled update from an agent before 0.20.0)."""
    if not update.job_ended or update.phase != types_pb2.JOB_PHASE_CANCELLED:
        return False
    if _seals.ended(update.cancel_seal, update.placement_id, cluster):
        return True
    if held is None or held.is_terminal:
        return False
    log.warning("cluster %s says placement %s was stopped by a federator's cancel of its job (job_ended), but %s: "
                "not taken as the job's end; read as a stop the cluster made on its own", cluster,
                update.placement_id[:200], _seals.why_not(update.cancel_seal))
    return False


def use_secret(secret: bytes | None, *, required: bool) -> Seals:
    """Seal from now on under a key derived from `secret` (the TLS serving key, at start: server/app.py), or a new
    random one (None: --insecure); `required`: whether an agent's word needs its seal. The seals it replaces are
    returned (tests put them back)."""
    global _seals
    before, _seals = _seals, Seals(secret, required=required)
    return before


def use_seals(seals: Seals) -> None:
    """Put back seals `use_secret` returned."""
    global _seals
    _seals = seals


def current() -> Seals:
    """The seals in use."""
    return _seals


__all__ = ["MAX_SEAL_CHARS", "SEALS", "Seals", "current", "job_ended", "use_seals", "use_secret"]
