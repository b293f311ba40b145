"""A cluster's region bound where its trust is issued: by its certificate or by the trust file, not by its Hello.

Why (outside compliance QA, C2b): a provider the trust file binds to `regions: [east, north]` could register a new
cluster in either: its north data centre, registering as east, drew the east-only health data. The cluster's first
Hello fixed its region (server/cluster_regions.py), but that first claim was still the agent's. The region is now
bound per cluster by whoever vouches for the cluster:

- its certificate: `federator certs issue --cluster NAME --region R` puts `federator://region/R` in the SAN
  (security/pki.py `region_of`), signed by the CA that certifies the cluster (the federation's, or its provider's:
  the provider's `regions` still bound what its CA may bind);
- the trust file: the provider's `clusterRegions: {NAME: R}`, or a provider with one region, which binds all its
  clusters to it (security/trust.py `Provider.region_of`).

Both, disagreeing, bind nothing a Hello could meet: every Hello is refused naming both. A Hello claiming another
region than the bound one is refused PERMISSION_DENIED naming both regions and who bound it, audited and counted
(server/cluster_regions.py `refused_bound`). A cluster bound by neither (every certificate issued before 0.15.0 or
without --region, the federation's clusters without a trust entry) keeps working: its first Hello's region is
self-declared, said in a WARNING at its first registration and on its `cluster.register` audit line (`bound_by`
"").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509

from federator.security.pki import region_of

if TYPE_CHECKING:
    from federator.security.trust import Trust

CERTIFICATE = "certificate"
TRUST_FILE = "trust file"


@dataclass(frozen=True, slots=True)
class Binding:
    """The region a cluster is bound to ("" none) and by what (CERTIFICATE, TRUST_FILE, or both joined by " and ");
    `conflict`: the certificate's region and the trust file's differ (or the certificate names two)."""

    region: str = ""
    by: str = ""
    conflict: str = ""

    def problem(self, cluster: str, claimed: str) -> str:
        """"" if a Hello of `cluster` may claim `claimed`, else why not: the field, both regions, who bound it, the
        fix."""
        if self.conflict:
            return f"hello.region: cluster {cluster!r} has no region it may claim: {self.conflict}"
        if not self.region or claimed == self.region:
            return ""
        if TRUST_FILE in self.by:
            fix = (f"if it really is in {claimed[:80]!r}, the operator changes its region in the trust file "
                   f"(clusterRegions, or the provider's regions)")
        else:
            fix = f"if it really is in {claimed[:80]!r}, issue it a certificate with --region {claimed[:80]}"
        return (f"hello.region: cluster {cluster!r} is bound to region {self.region!r} (by its {self.by}), and "
                f"its agent claims {claimed[:80]!r}; start the agent with --region {self.region}, or {fix}")


def binding_of(trust: Trust | None, issuer: str, cluster: str, cert: x509.Certificate | None) -> Binding:
    """The region `cluster` is bound to, by its certificate (None: an insecure federator, which binds nothing)
    and by the trust file (`issuer`: the provider whose CA certified it, "" the federation's)."""
    by_cert = region_of(cert) if cert is not None else ""
    by_trust = trust.bound_region(issuer, cluster) if trust is not None else ""
    if by_cert == "?":
        return Binding(conflict="its certificate names two regions (federator://region/ SAN URIs); issue it one "
                                "with a single --region")
    if by_cert and by_trust and by_cert != by_trust:
        return Binding(conflict=f"its certificate binds region {by_cert!r} and the trust file binds "
                                f"{by_trust!r}; issue it a certificate with --region {by_trust}, or change the trust "
                                "file")
    if by_cert and by_trust:
        return Binding(by_cert, f"{CERTIFICATE} and {TRUST_FILE}")
    if by_cert:
        return Binding(by_cert, CERTIFICATE)
    if by_trust:
        return Binding(by_trust, TRUST_FILE)
    return Binding()


__all__ = ["CERTIFICATE", "TRUST_FILE", "Binding", "binding_of"]
