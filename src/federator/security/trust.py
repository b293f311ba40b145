"""Trust across providers: one CA per provider, each bound to the clusters it may certify.

Each provider of a federation runs its own PKI. Its CA signs the certificates
of its own clusters' agents, and the federator accepts them — but only for
the clusters the trust file binds to that provider, so provider A's CA cannot
mint an identity for provider B's cluster (nor for a user: user certificates
come from the federation's CA only). A cluster no provider claims must hold a
certificate from the federation's CA.

The trust file (`trust.yaml` in the certs folder, or `federator serve
--trust FILE`); paths are relative to the file::

    providers:
      acme:
        ca: providers/acme/ca.crt          # the provider's CA certificate (its key stays with the provider)
        clusters: ["acme-*", "edge-7"]     # names or shell patterns of the clusters it certifies
        revoked: providers/acme/revoked.txt  # its own revocation list (optional)
        regions: [east, north]             # the regions its clusters may claim (optional; default any)
        clusterRegions: {acme-north-1: north}  # the region each named cluster is in (optional; see below)
        maxAccelerators: 512               # the most accelerators one of its clusters may report (optional)
        maxCpu: 4096                       # the most CPU (allocatable, a quantity) one may report (optional)
        maxMemory: 32Ti                    # the most memory (allocatable, a quantity) one may report (optional)
        minPrice: 1.80                     # the lowest price per accelerator-hour one may claim (optional)
        maxPrice: 4.10                     # the highest (optional; minPrice = maxPrice: the price, claimed or not)

A cluster name matching two providers' patterns is refused (ambiguous). The
region is the agent's claim (its Hello), and the scheduler places
latency-sensitive jobs by it, so a provider bound to `regions` has a Hello
claiming any other refused (`Trust.region_problem`): its clusters cannot
attract the jobs meant for clusters near users elsewhere. Within its regions a
cluster is bound to one by `clusterRegions` (its exact name to a region of
`regions`), or by a provider with a single region (all its clusters are there),
or by its certificate (`federator://region/R`, security/pki.py `region_of`):
a Hello claiming another is refused (security/region_binding.py), so a provider's
north data centre cannot register as east. A provider bound to
`maxAccelerators` has a capacity report of one of its clusters claiming more
accelerators in all (total, over every pool, in whole-device equivalents)
clamped to the bound (`Trust.accelerator_bound`, server/over_bound.py): its
agent could otherwise claim any room, at any price, and draw every tenant's
work (the operator knows what each provider contracted to supply). `maxCpu` and
`maxMemory` bound its allocatable CPU and memory, a report over them refused: CPU-only work
and the host room beside accelerators are drawn by them as accelerator work is
by accelerators. `minPrice` and `maxPrice` bound the price its clusters claim
(the Hello label federator.io/price-per-accelerator-hour, which `spec.prefer:
cheapest` sorts by and the Price score weighs): a claim outside them is taken at
the bound (`Trust.priced_labels`), so a provider claiming 0.01 draws no job
cheaper than the operator's floor, and the claim is kept beside it in the label
CLAIMED_PRICE_LABEL for `get clusters -o wide` to show. The
federator verifies client certificates against the federation's CA and every
provider's CA (`bundle_pem`), then `Trust.check` decides whose it is.
`federator certs provider` creates a provider CA (or imports one) and adds it
to the trust file.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from federator.model.cluster import CLAIMED_PRICE_LABEL, PRICE_LABEL, PRICE_LABELS, ClusterCapacity, parse_price
from federator.model.resources import QuantityError, parse_quantity
from federator.security.auth import RevocationList
from federator.security.limits import valid_region
from federator.security.pki import Identity, IdentityKind, PkiError, load_cert
from federator.yamltext import YamlFileError, load_yaml_file

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_FIELDS = ("ca", "clusters", "revoked", "regions", "clusterRegions", "maxAccelerators", "maxCpu", "maxMemory",
           "minPrice", "maxPrice")
FEDERATION = ""  # the issuer name of the federation's own CA
# A member cluster's provider: the label an agent sets (`federator agent --provider`), overridden by the
# provider the trust file binds the cluster to. Accounting groups usage by it.
PROVIDER_LABEL = "federator.io/provider"


class TrustError(ValueError):
    """A trust file that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    ca: x509.Certificate
    clusters: tuple[str, ...]
    revocations: RevocationList | None = None
    regions: tuple[str, ...] = ()  # the regions its clusters may claim; () = any (a file without `regions`)
    max_accelerators: int | None = None  # the most one of its clusters may report in all; None = no bound
    max_cpu_milli: int | None = None  # the most allocatable CPU one of its clusters may report; None = no bound
    max_memory_bytes: int | None = None  # the most allocatable memory one of its clusters may report; None = none
    cluster_regions: Mapping[str, str] = field(default_factory=dict)  # cluster name -> the region it is in
    min_price: float | None = None  # the lowest price per accelerator-hour one of its clusters may claim; None = 0
    max_price: float | None = None  # the highest; None = no bound

    def claims(self, cluster: str) -> bool:
        return any(fnmatch.fnmatchcase(cluster, pattern) for pattern in self.clusters)

    def region_of(self, cluster: str) -> str:
        """The region the trust file binds `cluster` to: its `clusterRegions` entry, else the provider's one region
        if it has exactly one; "" if neither (the cluster may claim any of the provider's regions)."""
        return self.cluster_regions.get(cluster) or (self.regions[0] if len(self.regions) == 1 else "")


@dataclass(frozen=True, slots=True)
class Trust:
    """The federation's CA and the providers' CAs, with the clusters each may certify."""

    federation_ca: x509.Certificate | None = None
    providers: Mapping[str, Provider] = field(default_factory=dict)
    # The other CAs of a --ca bundle, the federation's too: during a CA rollover (docs/security.md, "Rolling the
    # federation CA") --ca holds the old CA and the new one, and a certificate of either is the federation's.
    # Only the first was read (outside QA F10): a trust file turned a rollover into refusing every new-CA agent.
    rollover_cas: tuple[x509.Certificate, ...] = ()

    def issuer_of(self, cert: x509.Certificate) -> str | None:
        """Which CA signed this certificate: FEDERATION, a provider's name, or None (none of ours)."""
        candidates: list[tuple[str, x509.Certificate]] = []
        if self.federation_ca is not None:
            candidates.append((FEDERATION, self.federation_ca))
        candidates.extend((FEDERATION, ca) for ca in self.rollover_cas)
        candidates.extend((p.name, p.ca) for p in self.providers.values())
        for name, ca in candidates:
            if cert.issuer != ca.subject:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends: not this CA
                continue
            return name
        return None

    def provider_for(self, cluster: str) -> tuple[str | None, str]:
        """(the provider that certifies this cluster, or None for the federation's CA; a problem if ambiguous)."""
        owners = [p.name for p in self.providers.values() if p.claims(cluster)]
        if len(owners) > 1:
            return None, f"cluster {cluster!r} matches the patterns of providers {', '.join(owners)} in the trust file"
        return (owners[0] if owners else None), ""

    def check(self, identity: Identity, cert: x509.Certificate) -> tuple[str, str]:
        """(issuer, problem): whether this CA may certify this identity; problem "" when it may.

        The issuer is found even with no provider in the file: the TLS layer checked a connection's certificate
        against the CAs of its day, and a connection outlives a reload that removes its provider."""
        issuer = self.issuer_of(cert)
        if issuer is None:
            return "", "the certificate was signed by no CA of the trust file"
        if identity.kind is not IdentityKind.CLUSTER:
            if issuer != FEDERATION:
                return issuer, (f"{identity} holds a certificate from provider {issuer!r}'s CA; only the "
                                "federation's CA certifies users")
            return issuer, ""
        owner, problem = self.provider_for(identity.name)
        if problem:
            return issuer, problem
        if owner is None and issuer != FEDERATION:
            return issuer, (f"cluster {identity.name!r} is not bound to provider {issuer!r} in the trust file "
                            "(no provider claims it: its certificate must come from the federation's CA)")
        if owner is not None and issuer != owner:
            by = "the federation's CA" if issuer == FEDERATION else f"provider {issuer!r}'s CA"
            return issuer, (f"cluster {identity.name!r} is bound to provider {owner!r}, but its certificate was "
                            f"signed by {by}")
        return issuer, ""

    def region_problem(self, issuer: str, region: str) -> str:
        """"" if a cluster certified by `issuer` (a provider's name, or FEDERATION) may claim `region`, else why
        not, naming the field, the region claimed and the provider's regions. The federation's own clusters and
        providers without `regions` may claim any."""
        provider = self.providers.get(issuer) if issuer else None
        if provider is None or not provider.regions or region in provider.regions:
            return ""
        return (f"hello.region: {region[:80]!r} is not a region of provider {provider.name!r}; the trust file "
                f"binds its clusters to regions {', '.join(provider.regions)}")

    def bound_region(self, issuer: str, cluster: str) -> str:
        """The region the trust file binds a cluster certified by `issuer` to ("" none: the federation's own
        clusters, a provider of several regions without a `clusterRegions` entry for it)."""
        provider = self.providers.get(issuer) if issuer else None
        return provider.region_of(cluster) if provider is not None else ""

    def accelerator_bound(self, issuer: str) -> tuple[str, int] | None:
        """(provider, maxAccelerators) of the provider that certified a cluster, or None (the federation's own
        clusters, a provider without the bound). A report over it is clamped to it (server/over_bound.py),
        counted in whole-device equivalents as every total people read (a MIG partition as its share)."""
        provider = self.providers.get(issuer) if issuer else None
        if provider is None or provider.max_accelerators is None:
            return None
        return provider.name, provider.max_accelerators

    def capacity_problem(self, issuer: str, capacity: ClusterCapacity) -> str:
        """"" if a cluster certified by `issuer` may report `capacity`, else why not, naming the field and the
        bound: its allocatable CPU within `maxCpu`, its allocatable memory within `maxMemory`. The federation's own
        clusters and providers without a bound may report any. Accelerators over `maxAccelerators` are not refused
        but clamped (`accelerator_bound`): a refusal froze the cluster's whole capacity view while one node too
        many was in it (outside provider QA F4)."""
        provider = self.providers.get(issuer) if issuer else None
        if provider is None:
            return ""
        whose = f"the most the trust file lets one cluster of provider {provider.name!r} report"
        cpu = capacity.cpu_milli_allocatable
        if provider.max_cpu_milli is not None and cpu > provider.max_cpu_milli:
            return (f"capacity.cpu_milli_allocatable: {cpu / 1000:g} CPUs are more than maxCpu "
                    f"{provider.max_cpu_milli / 1000:g}, {whose}")
        memory = capacity.memory_bytes_allocatable
        if provider.max_memory_bytes is not None and memory > provider.max_memory_bytes:
            return (f"capacity.memory_bytes_allocatable: {memory} bytes are more than maxMemory "
                    f"{provider.max_memory_bytes} bytes, {whose}")
        return ""

    def priced_labels(self, issuer: str, labels: Mapping[str, str]) -> dict[str, str]:
        """A Hello's labels with the price bounded by the provider's `minPrice`/`maxPrice` (secqa61 M1).

        Why: `spec.prefer: cheapest` sorts by the price alone, so a provider claiming 0.01 drew every such job of
        every tenant, and nothing but the provider's word set it. A claim below `minPrice` is taken as `minPrice`,
        one above `maxPrice` as `maxPrice`; a cluster claiming none is left unpriced (it sorts after every priced
        one) unless the two are equal, the price the operator set. When the price used is not the one claimed, the
        claim is kept in CLAIMED_PRICE_LABEL; one an agent sends itself is dropped. The federation's own clusters
        and providers without the bounds keep their claim."""
        out = {k: v for k, v in labels.items() if k != CLAIMED_PRICE_LABEL}
        provider = self.providers.get(issuer) if issuer else None
        if provider is None or (provider.min_price is None and provider.max_price is None):
            return out
        key = next((k for k in PRICE_LABELS if k in out), None)
        claimed = parse_price(out[key]) if key is not None else None
        low, high = provider.min_price, provider.max_price
        if claimed is None:
            if low is None or low != high:
                return out
            used = low
        else:
            used = max(claimed, low) if low is not None else claimed
            used = min(used, high) if high is not None else used
            if used == claimed:
                return out
        for k in PRICE_LABELS:
            out.pop(k, None)
        out[PRICE_LABEL] = f"{used:g}"
        out[CLAIMED_PRICE_LABEL] = labels[key] if key is not None else "none"
        return out

    def provider_label_problem(self, issuer: str, cluster: str, labels: Mapping[str, str]) -> str:
        """"" if a Hello's PROVIDER_LABEL (if it gives one) names the provider whose CA certified the cluster, else
        why not, naming the field. Accounting groups usage by that label: a cluster of one provider (or of the
        federation's CA) naming another would have its usage accounted to it. A label naming no provider of the
        trust file is the federation's own clusters' business (their operator's name for who runs them)."""
        claimed = labels.get(PROVIDER_LABEL, "")
        field = f"hello.labels[{PROVIDER_LABEL}]"
        if not claimed or claimed == issuer:
            return ""
        if issuer:
            return (f"{field}: {claimed[:80]!r} is not the provider of cluster {cluster!r}: its certificate comes "
                    f"from provider {issuer!r}'s CA (leave the label out, or give --provider {issuer})")
        if claimed in self.providers:
            return (f"{field}: cluster {cluster!r} holds a certificate from the federation's CA, so its label "
                    f"{PROVIDER_LABEL} may not name provider {claimed!r} (that provider's clusters hold certificates "
                    "from its own CA)")
        return ""

    def admits(self, identity: Identity, cert: x509.Certificate, *, region: str,
               labels: Mapping[str, str]) -> tuple[str, str]:
        """(issuer, problem) for an agent stream as this trust sees it: its certificate (`check`), the provider's
        revocations, its Hello's region and provider label. A reload asks it of every live stream."""
        issuer, problem = self.check(identity, cert)
        if problem:
            return issuer, problem
        if self.revoked(issuer, identity, cert.serial_number):
            return issuer, f"provider {issuer!r} revoked the certificate of {identity} (serial {cert.serial_number:x})"
        from federator.security.region_binding import binding_of  # it reads this module's Trust

        bound = binding_of(self, issuer, identity.name, cert)
        return issuer, (self.region_problem(issuer, region) or bound.problem(identity.name, region) or
                        self.provider_label_problem(issuer, identity.name, labels))

    def revoked(self, issuer: str, identity: Identity, serial: int) -> bool:
        provider = self.providers.get(issuer)
        return provider is not None and provider.revocations is not None and \
            provider.revocations.revoked(identity, serial)

    def bundle_pem(self) -> bytes:
        """Every CA a client certificate may chain to: the federation's, then each provider's."""
        cas = ([self.federation_ca] if self.federation_ca is not None else []) + list(self.rollover_cas) + \
            [p.ca for p in self.providers.values()]
        return b"".join(ca.public_bytes(serialization.Encoding.PEM) for ca in cas)


def _rest_of(bundle: Path) -> tuple[x509.Certificate, ...]:
    """The CAs of a --ca file after its first (already read, so readable): a rollover's second CA."""
    try:
        return tuple(x509.load_pem_x509_certificates(bundle.read_bytes())[1:])
    except (OSError, ValueError) as exc:
        raise TrustError(f"{bundle}: cannot read its CA certificates: {exc}") from exc


def load_trust(path: Path, *, federation_ca: Path,
               on_revoked: Callable[[str, list[str]], None] | None = None, previous: Trust | None = None,
               absent: bool = False) -> Trust:
    """Read the trust file; TrustError names the bad field. `on_revoked(provider, entries)`: see RevocationList.

    `previous`: the trust this one replaces (a reload): a provider whose revocation list is the same file keeps
    its RevocationList, which re-reads itself when the file changes, so `on_revoked` is not told its old
    entries again. `absent`: a missing file is a trust of no providers (`serve --certs-dir` before the first
    `certs provider`), not an error."""
    try:
        doc = {} if absent and not path.exists() else load_yaml_file(path) or {}
    except YamlFileError as exc:
        raise TrustError(f"{path}: {exc}") from exc
    try:
        fed_ca = load_cert(federation_ca)
    except PkiError as exc:
        raise TrustError(str(exc)) from exc
    if not isinstance(doc, Mapping) or set(doc) - {"providers"}:
        raise TrustError(f"{path}: must be a mapping with one field, providers")
    raw = doc.get("providers") or {}
    if not isinstance(raw, Mapping):
        raise TrustError(f"{path}: providers: must map provider names to {{{', '.join(_FIELDS)}}}")
    providers: dict[str, Provider] = {}
    for name, body in raw.items():
        where = f"{path}: providers.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise TrustError(f"{where}: a provider name must be a lower-case DNS label")
        if not isinstance(body, Mapping) or set(body) - set(_FIELDS) or "ca" not in body:
            raise TrustError(f"{where}: must be a mapping {{{', '.join(_FIELDS)}}} with ca")
        clusters = body.get("clusters") or []
        if not isinstance(clusters, list) or not clusters or not all(isinstance(c, str) and c for c in clusters):
            raise TrustError(f"{where}.clusters: must list the cluster names or patterns it certifies")
        try:
            ca = load_cert(path.parent / str(body["ca"]))
        except PkiError as exc:
            raise TrustError(f"{where}.ca: {exc}") from exc
        hook = (lambda entries, provider=name: on_revoked(provider, entries)) if on_revoked else None
        before = previous.providers.get(name) if previous is not None else None
        try:
            if not body.get("revoked"):
                revoked = None
            elif before is not None and before.revocations is not None and \
                    before.revocations.path == path.parent / str(body["revoked"]):
                revoked = before.revocations
            else:
                revoked = RevocationList(path.parent / str(body["revoked"]), on_revoked=hook)
        except ValueError as exc:
            raise TrustError(f"{where}.revoked: {exc}") from exc
        regions = _regions(body.get("regions"), where=f"{where}.regions")
        providers[name] = Provider(name, ca, tuple(clusters), revoked, regions=regions,
                                   cluster_regions=_cluster_regions(body.get("clusterRegions"), regions=regions,
                                                                    clusters=tuple(clusters),
                                                                    where=f"{where}.clusterRegions"),
                                   max_accelerators=_bound(body.get("maxAccelerators"),
                                                           where=f"{where}.maxAccelerators"),
                                   max_cpu_milli=_quantity_bound(body.get("maxCpu"), where=f"{where}.maxCpu",
                                                                 scale=1000, what="CPU"),
                                   max_memory_bytes=_quantity_bound(body.get("maxMemory"), where=f"{where}.maxMemory",
                                                                    scale=1, what="memory"),
                                   **_prices(body, where=where))
    return Trust(fed_ca, providers, _rest_of(federation_ca))


def _regions(raw: object, *, where: str) -> tuple[str, ...]:
    """A provider's `regions`: None (absent) allows any; otherwise a non-empty list of region names as a Hello
    spells them (an entry no Hello could match would only hide a typo)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise TrustError(f"{where}: must list the regions its clusters may claim (leave regions out to allow any), "
                         f"got {raw!r}")
    for i, region in enumerate(raw):
        if not isinstance(region, str) or not valid_region(region):
            raise TrustError(f"{where}[{i}]: must be a region name as agents give it (a lower-case DNS name of at "
                             f"most 63 characters), got {region!r}")
    return tuple(dict.fromkeys(raw))


def _cluster_regions(raw: object, *, regions: tuple[str, ...], clusters: tuple[str, ...],
                     where: str) -> dict[str, str]:
    """A provider's `clusterRegions`: None (absent) binds no cluster by name; otherwise a mapping of cluster names
    (each one the provider certifies: an entry for another provider's cluster would bind nothing) to a region (one
    of the provider's `regions`, when it lists them: the two would contradict)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not raw:
        raise TrustError(f"{where}: must map cluster names to the region each is in (leave clusterRegions out to "
                         f"bind none), got {raw!r}")
    out: dict[str, str] = {}
    for cluster, region in raw.items():
        if not isinstance(cluster, str) or not any(fnmatch.fnmatchcase(cluster, p) for p in clusters):
            raise TrustError(f"{where}.{cluster}: is not a cluster of this provider (its clusters: "
                             f"{', '.join(clusters)})")
        if not isinstance(region, str) or not valid_region(region):
            raise TrustError(f"{where}.{cluster}: must be a region name as agents give it (a lower-case DNS name of "
                             f"at most 63 characters), got {region!r}")
        if regions and region not in regions:
            raise TrustError(f"{where}.{cluster}: {region!r} is not one of the provider's regions "
                             f"({', '.join(regions)})")
        out[cluster] = region
    return out


def _bound(raw: object, *, where: str) -> int | None:
    """A provider's `maxAccelerators`: None (absent) bounds nothing; otherwise a whole number of at least 0 (YAML's
    `true` is not one, nor is `512.0` or `"512"`: a bound the operator did not write as a count is a typo)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise TrustError(f"{where}: must be a whole number of at least 0, the most accelerators one of its clusters "
                         f"may report (leave it out for no bound), got {raw!r}")
    return raw


def _quantity_bound(raw: object, *, where: str, scale: int, what: str) -> int | None:
    """A provider's `maxCpu` (cores, as "4096" or "500m") or `maxMemory` (bytes, as "32Ti"): None (absent) bounds
    nothing; otherwise a Kubernetes quantity, in milli-CPUs or bytes (`scale`)."""
    if raw is None:
        return None
    try:
        return int(parse_quantity(raw) * scale)
    except QuantityError as exc:
        raise TrustError(f"{where}: must be a quantity, the most allocatable {what} one of its clusters may report "
                         f"(leave it out for no bound): {exc}") from exc


def _price(raw: object, *, where: str) -> float | None:
    """One of a provider's `minPrice`/`maxPrice`: None (absent) bounds nothing; otherwise a price as the label says
    one, a finite decimal of at least 0 (`1.80`, `"1.80"`; YAML's `true` is not one)."""
    if raw is None:
        return None
    price = None if isinstance(raw, bool) or not isinstance(raw, (int, float, str)) else parse_price(str(raw))
    if price is None:
        raise TrustError(f"{where}: must be a price per accelerator-hour, a decimal number of at least 0 (such as "
                         f"1.80; leave it out for no bound), got {raw!r}")
    return price


def _prices(body: Mapping[str, object], *, where: str) -> dict[str, float | None]:
    """A provider's `minPrice` and `maxPrice` (Provider.min_price, max_price), the first not above the second."""
    low = _price(body.get("minPrice"), where=f"{where}.minPrice")
    high = _price(body.get("maxPrice"), where=f"{where}.maxPrice")
    if low is not None and high is not None and low > high:
        raise TrustError(f"{where}.minPrice: {low:g} is above maxPrice {high:g} (equal ones set the price)")
    return {"min_price": low, "max_price": high}


def write_trust(path: Path, providers: Mapping[str, Mapping[str, object]]) -> None:
    path.write_text("# Provider CAs, the clusters each may certify and the regions they may claim "
                    "(federator certs provider; docs/security.md)\n"
                    + yaml.safe_dump({"providers": {k: dict(v) for k, v in providers.items()}}, sort_keys=True))


def read_trust_document(path: Path) -> dict[str, dict[str, object]]:
    """The providers of a trust file as written, for `certs provider` to add one (TrustError if it is not one)."""
    if not path.exists():
        return {}
    try:
        doc = load_yaml_file(path) or {}
    except YamlFileError as exc:
        raise TrustError(f"{path}: {exc}") from exc
    providers = doc.get("providers") if isinstance(doc, Mapping) else None
    if not isinstance(providers or {}, Mapping) or not all(isinstance(v, Mapping) for v in (providers or {}).values()):
        raise TrustError(f"{path}: must be a mapping with one field, providers, of provider names to "
                         f"{{{', '.join(_FIELDS)}}}")
    return {str(k): dict(v) for k, v in (providers or {}).items()}


__all__ = ["FEDERATION", "PROVIDER_LABEL", "Provider", "Trust", "TrustError", "load_trust", "read_trust_document",
           "write_trust"]
