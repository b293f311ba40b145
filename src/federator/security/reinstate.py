"""Bringing a cluster (or user) revoked by name back under a new key: `federator certs reinstate`.

`certs revoke --cluster NAME` writes `cluster NAME` to revoked.txt, which
refuses every certificate of NAME, the next one too: after a leaked key the
member was lost for good, and `certs issue` gave it a certificate the
federator then refused at every connect (outside DR QA, D5). Reinstating is
three edits in an order that never admits the leaked key:

1. the certificate the folder holds for NAME (the one revoked: `certs issue`
   refuses to replace it while the name is revoked) is revoked by serial,
   appended to the list while the name ban still stands;
2. a new key and certificate are issued;
3. the `NAME` lines are turned into comments (kept, with when and why), so the
   new certificate is admitted and the old one stays refused by its serial.

A step that fails leaves the list refusing NAME still. Certificates of NAME
the folder no longer holds (an older renewal someone kept) are not known here:
revoke them by `--serial` too (the federator's refusal and audit lines name
serials).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.x509.oid import NameOID

from federator.security.auth import parse_revocations
from federator.security.pki import REGION_URI, CertsDir, Identity, PkiError, issue, load_cert, region_of


@dataclass(frozen=True, slots=True)
class Reinstated:
    """What `reinstate` did: the serial it revoked (None: the folder held no certificate of the identity), the new
    certificate's path and serial, and how many `KIND NAME` lines it lifted."""

    old_serial: int | None
    cert: Path
    new_serial: int
    lifted: int


def revoked_names(certs: CertsDir) -> frozenset[Identity]:
    """The identities the folder's revocation list refuses by name (a list that does not parse: PkiError)."""
    try:
        text = certs.revoked.read_text() if certs.revoked.exists() else ""
        return parse_revocations(text, source=str(certs.revoked)).identities
    except OSError as exc:
        raise PkiError(f"{certs.revoked}: {exc}") from exc
    except ValueError as exc:  # names the file and line already
        raise PkiError(str(exc)) from exc


def revoked_by_name(certs: CertsDir, identity: Identity) -> bool:
    """Whether the folder's revocation list refuses `identity` by name (a list that does not parse: PkiError)."""
    return identity in revoked_names(certs)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _rewrite(path: Path, text: str) -> None:
    """Replace the list whole (a temporary file, then a rename): the federator re-reads it when it changes and
    must never see half of it (a list that does not parse is ignored, but a short one would admit)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reinstate(certs: CertsDir, identity: Identity, *, days: int = 825, groups: tuple[str, ...] = ()) -> Reinstated:
    """Re-admit an identity revoked by name under a new key (see the module docstring); PkiError says why not."""
    if not revoked_by_name(certs, identity):
        raise PkiError(f"{identity} is not revoked by name in {certs.revoked}: nothing to reinstate (a new "
                       f"certificate is `federator certs issue --{identity.kind.value} {identity.name}`)")
    if not certs.ca_key.exists():  # before the list is touched: issuing is what would fail
        raise PkiError(f"{certs.ca_key}: the CA key is not here, so no new certificate can be issued: restore ca.key "
                       "from its offline copy (docs/security.md, \"The CA key\")")
    path = certs.cert(identity)
    before = load_cert(path) if path.exists() else None
    old = before.serial_number if before is not None else None
    region = region_of(before) if before is not None else ""
    if region == "?":  # two regions bind nothing a Hello could match: no new certificate is made to carry that on
        raise PkiError(f"{path} binds {identity} to more than one region ({REGION_URI}...): issue its new "
                       "certificate with `certs issue --region R` after lifting the name's line by hand; nothing was "
                       "changed")
    if before is not None and not groups:  # a user keeps the groups the tenancy policy grants by
        groups = tuple(str(a.value) for a in before.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    known = parse_revocations(certs.revoked.read_text(), source=str(certs.revoked)).serials
    if old is not None and old not in known:
        with certs.revoked.open("a") as f:  # 1: the leaked certificate by serial, the name ban still in force
            f.write(f"serial {old:x}  # {identity}'s certificate, revoked when it was reinstated {_now()}\n")
    # 2: the new certificate binds the region the old one did (C2b): without it the agent could claim any region
    new_path = issue(certs, identity, days=days, groups=groups, region=region)
    new_serial = load_cert(new_path).serial_number
    lines = certs.revoked.read_text().splitlines(keepends=True)
    lifted = 0
    for i, raw in enumerate(lines):  # 3: the name's lines kept as comments, the record of what happened
        entry = raw.split("#", 1)[0].split()
        if entry == [identity.kind.value, identity.name]:
            lines[i] = f"# {raw.rstrip()}; reinstated {_now()} under serial {new_serial:x}\n"
            lifted += 1
    _rewrite(certs.revoked, "".join(lines))
    return Reinstated(old, new_path, new_serial, lifted)


__all__ = ["Reinstated", "reinstate", "revoked_by_name", "revoked_names"]
