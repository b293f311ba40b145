"""The trust file kept current while the federator runs: re-read on SIGHUP and when it changes on disk.

Why a module of its own: revoking a provider (a compromised CA, a provider
leaving the network) or granting one a region used to need a restart of the
federator, which drops every agent stream of every provider. Now the running
federator re-reads the file, and whoever holds the trust (the authenticator,
the TLS layer's client-CA bundle, the live agent streams) is handed the new
one (`subscribe`), all or nothing: a holder that refuses it has those told
before it put the old trust back, and the reload is refused, counted and
tried again at the next look (security/watched.py, shared with the policy
file).

A file that does not load is refused with the loader's message (it names the
file, the field and the line) and the federator keeps the last trust that did:
never nothing trusted, never everything. `problem` says why until a good file
replaces it.

Changes are found by content, not by modification time: the trust file, the
federation's CA and the provider CA files it names are hashed at every poll (a
few small files). A Kubernetes Secret or ConfigMap volume is updated by
swapping a symlink (`..data`) to a new folder, whose files need not be newer
than the ones they replace, and a CA file can change while trust.yaml does not.
Provider revocation lists are not part of it: each is re-read by itself when it
changes (security/auth.py `RevocationList`), and a reload keeps the list
objects of providers whose list file did not change, so the audit log is not
told of old revocations again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from federator.security.trust import Provider, Trust, TrustError, load_trust, read_trust_document
from federator.security.watched import Refusal, ReloadResult, Watched, WatchedFile, digest

log = logging.getLogger("federator.security")


Listener = Callable[[Trust, Trust], None]
"""Told (old, new) to put a new trust in force. One that raises must leave what it swapped as it was; the reload is
then refused, and the listeners told before it are told (new, old) to put the old trust back (security/watched.py
`WatchedFile`, as for the policy file)."""


class TrustFile(WatchedFile[Trust]):
    """The trust file and the last trust it gave; `poll` re-reads it if it changed, `reload` in any case."""

    what = "trust"
    log = logging.getLogger("federator.security")

    def __init__(self, path: Path, *, federation_ca: Path,
                 on_revoked: Callable[[str, list[str]], None] | None = None, absent_ok: bool = False) -> None:
        self.federation_ca = federation_ca
        self._on_revoked = on_revoked
        # `absent_ok` (`serve --certs-dir`): a file not there yet is a trust of no providers, watched like any
        # other, so the first `certs provider` needs no restart (outside QA, tenants F6: the file was read only if
        # it existed at start, and the new provider's agent met "Socket closed" for ever). Once a file was read,
        # its disappearance is refused like any bad file (the last good trust stays): a file deleted by mistake
        # must not cut every provider off.
        self._absent_ok = absent_ok and not path.exists()
        self.path = path
        self._seen = self._fingerprint()
        super().__init__(path, load_trust(path, federation_ca=federation_ca, on_revoked=on_revoked,  # TrustError
                                          absent=self._absent_ok))
        if self._absent_ok:
            log.info("trust file %s is not there yet: no providers; it is read once it appears (within "
                     "--trust-poll-seconds, or at once on SIGHUP)", path)
        unbounded = sorted(name for name, p in self.current.providers.items() if p.max_accelerators is None)
        if unbounded:  # said once at start: a reload's log line says what changed
            log.warning("trust file %s: providers %s have no maxAccelerators: their clusters may report any room, "
                        "and one claiming much at a low price draws every tenant's jobs (federator certs provider "
                        "--max-accelerators N; docs/security.md, \"Capacity\")", path, ", ".join(unbounded))

    def _read(self) -> Trust | Refusal:
        try:
            return load_trust(self.path, federation_ca=self.federation_ca, on_revoked=self._on_revoked,
                              previous=self.current, absent=self._absent_ok)
        except TrustError as exc:
            return Refusal(str(exc))

    def _taken(self) -> None:
        self._absent_ok = self._absent_ok and not self.path.exists()  # read once: its disappearance is refused

    def _describe(self, old: Trust, new: Trust) -> str:
        return describe_change(old, new)

    def _summary(self, value: Trust) -> str:
        return _names(value)

    def _fingerprint(self) -> bytes:
        """A digest of the trust file, the federation's CA and the provider CAs it names, as they are now."""
        try:
            doc = read_trust_document(self.path)
        except (TrustError, OSError, ValueError):
            doc = {}
        return digest([self.path, self.federation_ca,
                       *(self.path.parent / str(body["ca"]) for body in doc.values() if "ca" in body)])


def _names(trust: Trust) -> str:
    return f"providers {', '.join(sorted(trust.providers))}" if trust.providers else "no providers"


def describe_change(old: Trust, new: Trust) -> str:
    """What a reload changed, for the log: providers added and removed, and those whose CA, clusters, regions,
    clusterRegions or bounds (maxAccelerators, maxCpu, maxMemory, minPrice, maxPrice) changed."""
    said = [f"added {name}" for name in sorted(set(new.providers) - set(old.providers))]
    said += [f"removed {name}" for name in sorted(set(old.providers) - set(new.providers))]
    said += [f"changed {name}" for name in sorted(_changed(old.providers, new.providers))]
    return "; ".join(said) or f"no change ({_names(new)})"


def _changed(old: Mapping[str, Provider], new: Mapping[str, Provider]) -> set[str]:
    return {name for name in set(old) & set(new)
            if _terms(old[name]) != _terms(new[name])}


def _terms(provider: Provider) -> tuple[object, ...]:
    return (provider.ca, provider.clusters, provider.regions, dict(provider.cluster_regions),
            provider.max_accelerators, provider.max_cpu_milli, provider.max_memory_bytes, provider.min_price,
            provider.max_price)


__all__ = ["Listener", "ReloadResult", "TrustFile", "Watched", "describe_change", "digest"]
