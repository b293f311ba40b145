"""The region an agent gives in its Hello: the one its own certificate binds, when it binds one.

Why (0.16.0): since 0.15.0 a cluster certificate may bind its cluster's region (`federator certs issue --cluster NAME
--region R` writes the SAN URI `federator://region/R`; security/region_binding.py), and the federator refuses a Hello
claiming another. Yet the agent still had to be told the same region again by `--region`, and a contradicting one
was found only by the federator, which refused the agent at every reconnect, for ever, in a log line on each side.
The agent now reads its certificate when it starts:

- no `--region`: the region the certificate binds, else the fallback (a simulated cluster's fleet file; nothing for
  a Kubernetes member, which then needs `--region`);
- `--region` the certificate's region: as before;
- `--region` another region, or a certificate naming two: the agent stops at start, in one line naming both.

A certificate that binds no region (issued without `--region`, or before 0.15.0) changes nothing. The trust file's
`clusterRegions` may bind the cluster too: that file is the federator's, which an agent does not read, so such a
binding is still checked by the federator alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from federator.security.pki import REGION_URI, PkiError, load_cert, region_of

REGION_FLAG = "--region"
CERTIFICATE = "certificate"


@dataclass(frozen=True, slots=True)
class AgentRegion:
    """The region the agent's Hello gives ("" none known), where it came from (REGION_FLAG, CERTIFICATE or the
    fallback's name), and `problem`: why the agent may not start ("" none), one line naming the flag."""

    region: str
    source: str
    problem: str = ""


def certificate_region(cert: Path | None) -> str:
    """The region the certificate file `cert` binds ("" none, "?" two); PkiError when it cannot be read."""
    return region_of(load_cert(cert)) if cert is not None else ""


def agent_region(*, flag: str, cert: Path | None, fallback: str = "", fallback_source: str = "") -> AgentRegion:
    """The region of the Hello from `--region` (`flag`, "" not given), the agent's certificate file (None: plaintext)
    and a fallback used when neither gives one (a fleet file's region)."""
    try:
        bound = certificate_region(cert)
    except PkiError as exc:
        return AgentRegion("", "", f"--cert: {exc}")
    if bound == "?":
        return AgentRegion("", "", f"--cert: {cert} binds two regions ({REGION_URI} SAN URIs), so the federator "
                                   "would refuse every Hello; issue it a certificate with a single --region")
    if flag and bound and flag != bound:
        return AgentRegion("", "", f"--region: {flag[:80]!r} is not the region {bound!r} the agent's certificate "
                                   f"{cert} binds, and the federator would refuse every Hello; leave --region out "
                                   f"(the certificate's is taken), or if the cluster really is in {flag[:80]!r}, "
                                   f"issue it a certificate with --region {flag[:80]}")
    if flag:
        return AgentRegion(flag, REGION_FLAG)
    if bound:
        return AgentRegion(bound, CERTIFICATE)
    return AgentRegion(fallback, fallback_source if fallback else "")


__all__ = ["CERTIFICATE", "REGION_FLAG", "AgentRegion", "agent_region", "certificate_region"]
