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

Since 0.21.0 the key comes from `--seal-key-file` (security/seal_keys.py) when it is given: the serving key is
replaced at each renewal of a cert-manager certificate (`rotationPolicy: Always`), and with it every seal an agent
kept stopped proving anything, so a restore after a renewal adopted nothing. The file's first key seals; each of its
keys verifies, and so does the serving key's derivation (seals handed out by 0.20.0, or before the flag was given,
verify while the serving key is the one they were made under). Each seal names its key by id, so it is checked under
that key alone.

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
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from federator.api.seals import MAX_SEAL_CHARS, SEALS
from federator.api.v1 import agent_pb2, types_pb2
from federator.model import JobPhase
from federator.security.seal_keys import SealKeys, secrets_of
from federator.server import paging

if TYPE_CHECKING:
    from federator.metrics import Metrics

log = logging.getLogger("federator.server")

_INFO = b"federator.io placement seals v1"
_VERSION = "s1"


def _derive(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"seal key id\x00" + key).hexdigest()[:8]


UNSEALED, OTHER_KEY, WRONG = "unsealed", "other_key", "wrong"
"""Why a seal did not prove a word (federator_agent_unproven_words_total's reason): none said; one under a key this
federator does not hold (the serving key was replaced, a key left the seal key file); one this federator did not make
for that word (forged, or another placement's or cluster's)."""


class Seals:
    """Makes and checks seals under a key derived (HKDF-SHA256) from a secret, or a random one per process.

    A seal is "s1.", the key's id (8 hex digits of a digest of the key: a seal under a key since replaced is told
    apart in the log, never taken) and the base64url MAC. `also`: secrets whose keys verify seals but make none (the
    older keys of a seal key file, and the serving key's: security/seal_keys.py)."""

    def __init__(self, secret: bytes | None = None, *, required: bool = False, also: Sequence[bytes] = ()) -> None:
        self._key = _derive(secret if secret is not None else secrets.token_bytes(32))
        self.key_id = _key_id(self._key)
        self._verifying = {self.key_id: self._key}
        for material in also:
            key = _derive(material)
            self._verifying.setdefault(_key_id(key), key)
        self.required = required  # False: --insecure (and an in-process federator): unsealed words are taken

    def _seal(self, *parts: str, key: bytes | None = None, key_id: str = "") -> str:
        text = "\x00".join(parts).encode("utf-8", "replace")
        mac = hmac.new(key or self._key, text, hashlib.sha256).digest()
        return f"{_VERSION}.{key_id or self.key_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def _named_key(self, seal: str) -> tuple[str, bytes | None] | None:
        """The key id `seal` names and this federator's key of that id (None: one it does not hold); None for a
        seal of no version this federator makes. The one reading of a seal's key id, for `_proves` and `reason`
        alike: a seal is told OTHER_KEY exactly when it is not checked for want of its key."""
        if not seal.startswith(f"{_VERSION}."):
            return None
        key_id = seal[len(_VERSION) + 1:][:8]  # "s1." and 8 hex digits (`_key_id`)
        return key_id, self._verifying.get(key_id)

    def _proves(self, seal: str, *parts: str) -> bool:
        """Whether `seal` is this federator's seal of `parts` under the key it names, one this federator holds."""
        named = self._named_key(seal)
        if named is None:
            return False
        key_id, key = named
        if key is None:
            return False
        expected = self._seal(*parts, key=key, key_id=key_id).encode()
        return hmac.compare_digest(seal.encode("utf-8", "replace"), expected)  # bytes: any str (goagentqa62 H1)

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
        return self._proves(seal, "launch", placement_id, job_id, str(generation), cluster)

    def ended(self, seal: str, placement_id: str, cluster: str) -> bool:
        """Whether `seal` is this federator's seal of a job-ending Cancel of `placement_id` to `cluster` (or seals
        are not required)."""
        if not self.required:
            return True
        return self._proves(seal, "job ended", placement_id, cluster)

    def reason(self, seal: str) -> str:
        """UNSEALED, OTHER_KEY or WRONG: why a seal that did not prove a word did not."""
        if not seal:
            return UNSEALED
        named = self._named_key(seal)
        if named is not None and named[1] is None:
            return OTHER_KEY
        return WRONG

    def why_not(self, seal: str) -> str:
        """Words for a log line: why a seal that did not prove a word did not."""
        return {UNSEALED: "said no seal (an agent before 0.20.0, or one that kept none)",
                OTHER_KEY: "said a seal under another key, one this federator does not hold (the serving key "
                           "replaced since, without --seal-key-file, or a key gone from that file?)",
                WRONG: "said a seal this federator did not make for that placement and cluster"}[self.reason(seal)]


_seals = Seals()


def job_ended(cluster: str, update: agent_pb2.JobUpdate, held: JobPhase | None,
              metrics: Metrics | None = None) -> bool:
    """JobUpdate.job_ended as the federator takes it from `cluster`'s agent: only of a Cancelled update whose
    cancel_seal is this federator's seal of a job-ending Cancel of that placement to that cluster. Else the update
    is a stop the cluster made on its own (re-placed, counted against the cluster: server/federator.py), never the
    job's end, and its other placements run on (secqa61 H1); logged where it would have ended a job: `held`, the
    phase the store holds of the placement current there, is live (else the job has ended, or the placement is not
    current: the word changes nothing, as every cancel's Cancelled update from an agent before 0.20.0) and counted
    in `metrics` (federator_agent_unproven_words_total) there."""
    if not update.job_ended or update.phase != types_pb2.JOB_PHASE_CANCELLED:
        return False
    if _seals.ended(update.cancel_seal, update.placement_id, cluster):
        return True
    if held is None or held.is_terminal:
        return False
    if metrics is not None:
        metrics.agent_unproven_words.labels(cluster, "job_ended", _seals.reason(update.cancel_seal)).inc()
    log.warning("cluster %s says placement %s was stopped by a federator's cancel of its job (job_ended), but %s: "
                "not taken as the job's end; read as a stop the cluster made on its own", cluster,
                update.placement_id[:200], _seals.why_not(update.cancel_seal))
    return False


def use_secret(secret: bytes | None, *, required: bool, also: Sequence[bytes] = ()) -> Seals:
    """Seal from now on under a key derived from `secret` (the seal key file's first key, or the TLS serving key, at
    start: server/app.py), or a new random one (None: --insecure); `also`: secrets whose keys verify too;
    `required`: whether an agent's word needs its seal. The seals it replaces are returned (tests put them back)."""
    global _seals
    before, _seals = _seals, Seals(secret, required=required, also=also)
    return before


def use_keys(keys: SealKeys | None, serving_key: bytes | None, *, required: bool) -> None:
    """At start (server/app.py): seals, and page tokens (server/paging.py), under the seal key file's first key and
    verified under each of its keys and the serving key's (security/seal_keys.py, `secrets_of`), or, without a file,
    under the serving key's alone (None too: --insecure, random keys of the process, the page tokens' kept)."""
    sealing, verifying = secrets_of(keys, serving_key)
    if sealing is not None:
        paging.use_secret(sealing, also=verifying)
    use_secret(sealing, required=required, also=verifying)


def use_seals(seals: Seals) -> None:
    """Put back seals `use_secret` returned."""
    global _seals
    _seals = seals


def current() -> Seals:
    """The seals in use."""
    return _seals


__all__ = ["MAX_SEAL_CHARS", "OTHER_KEY", "SEALS", "UNSEALED", "WRONG", "Seals", "current", "job_ended", "use_keys",
           "use_seals", "use_secret"]
