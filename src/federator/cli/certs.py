"""`federator certs init | issue | revoke | reinstate | provider | bundle`, and the TLS flags the others share.

A federation's certificates live in one folder (`--dir`, default
$FEDERATOR_CERTS_DIR or ./federator-certs): see `federator.security.pki`.
`serve`, `agent` and the client commands take `--certs-dir` (or explicit
`--ca/--cert/--key`) and use mTLS; plaintext needs an explicit `--insecure`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from federator.security.pki import CertsDir, Identity
    from federator.security.tls import ClientOptions, TlsFiles

DEFAULT_DIR = Path(os.environ.get("FEDERATOR_CERTS_DIR", "federator-certs"))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("certs", help="create the federation's CA and certificates for clusters and users")
    csub = c.add_subparsers(dest="certs_command", required=True, metavar="ACTION")

    i = csub.add_parser("init", help="create the CA, the federator's certificate and an 'admin' user")
    i.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    i.add_argument("--server-name", action="append", default=[], metavar="HOST",
                   help="a DNS name or IP clients use to reach the federator (repeatable; "
                        "localhost and 127.0.0.1 are always included)")
    i.add_argument("--days", type=int, default=3650, help="validity of the CA (default %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an existing CA (every certificate must be re-issued)")
    i.set_defaults(func=_init)

    s = csub.add_parser("issue", help="issue a certificate for a member cluster's agent or a user, or renew the "
                                      "federator's own")
    s.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--cluster", help="member cluster name (its agent's identity)")
    who.add_argument("--user", help="user name (for submit/get/cancel/watch)")
    who.add_argument("--users-from", type=Path, metavar="FILE",
                     help="issue a certificate for every user of FILE at once (an organisation's onboarding): one "
                          "`name` or `name,group,group` a line (# comments), or YAML (.yaml: a list of {name, "
                          "groups}); each pair goes where --user puts it (users/NAME.crt, .key). Every line is "
                          "checked first: any bad one refuses the whole batch, naming the line, before anything "
                          "is written; --group adds groups to every user")
    who.add_argument("--server", action="store_true",
                     help="renew the federator's serving certificate and key (server.crt, server.key) under the "
                          "existing CA; a running federator serves them from the next handshake once it looks "
                          "(--trust-poll-seconds, or at once on SIGHUP)")
    s.add_argument("--host", "--server-name", dest="hosts", action="append", default=[], metavar="HOST",
                   help="with --server: a DNS name or IP clients use to reach the federator (repeatable; localhost "
                        "and 127.0.0.1 are always included); default: the names of the certificate it renews")
    s.add_argument("--provider", metavar="NAME",
                   help="sign a cluster certificate with this provider's CA (providers/NAME/; see certs provider)")
    s.add_argument("--outside-trust", action="store_true",
                   help="with --provider: issue even when trust.yaml in --dir does not bind the cluster to the "
                        "provider (the federator refuses such an agent until trust.yaml is changed to bind it)")
    s.add_argument("--region", default="", metavar="REGION",
                   help="with --cluster: bind the cluster to this region in its certificate (a "
                        "federator://region/REGION SAN URI); the federator refuses its agent's Hello claiming "
                        "another region. Without it the region is what the agent first declares (docs/security.md)")
    s.add_argument("--group", action="append", default=[], metavar="GROUP",
                   help="a group the user is in (the subject's O; repeatable); the policy's tenancy section "
                        "grants queues and job sharing to groups")
    s.add_argument("--renew", action="store_true",
                   help="with --users-from: issue again for users who already have a certificate in --dir (without "
                        "it such a user refuses the batch: a stale file must not replace working keys)")
    s.add_argument("--days", type=int, default=825, help="validity (default %(default)s)")
    s.set_defaults(func=_issue)

    r = csub.add_parser("revoke", help="revoke a cluster, a user or one certificate; the federator reloads the list")
    r.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--cluster", help="refuse every certificate of this cluster")
    what.add_argument("--user", help="refuse every certificate of this user")
    what.add_argument("--serial", help="refuse one certificate, by its hexadecimal serial number")
    r.add_argument("--provider", metavar="NAME",
                   help="write to this provider's revocation list (providers/NAME/revoked.txt): it applies to the "
                        "certificates its CA signed")
    r.set_defaults(func=_revoke)

    rs = csub.add_parser("reinstate", help="re-admit a cluster or user revoked by name under a new key: revoke its "
                                           "old certificate by serial, issue a new one, lift the name")
    rs.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    whom = rs.add_mutually_exclusive_group(required=True)
    whom.add_argument("--cluster", help="member cluster name")
    whom.add_argument("--user", help="user name")
    rs.add_argument("--provider", metavar="NAME",
                    help="a cluster its provider certifies: its folder, CA and revocation list (providers/NAME/)")
    rs.add_argument("--group", action="append", default=[], metavar="GROUP",
                    help="with --user: its groups (default: the groups of the certificate it replaces)")
    rs.add_argument("--days", type=int, default=825, help="validity of the new certificate (default %(default)s)")
    rs.set_defaults(func=_reinstate)

    pv = csub.add_parser("provider", help="create (or import) a provider's CA and bind clusters to it in trust.yaml")
    pv.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    pv.add_argument("--name", required=True, help="provider name (a lower-case DNS label)")
    pv.add_argument("--clusters", action="append", required=True, metavar="PATTERN",
                    help="a cluster name or shell pattern (acme-*) this provider's CA may certify (repeatable)")
    pv.add_argument("--region", action="append", dest="regions", metavar="REGION",
                    help="a region its clusters may claim in their Hello (repeatable); without it, a provider "
                         "new to trust.yaml may claim any region and one already there keeps its regions")
    pv.add_argument("--cluster-region", action="append", dest="cluster_regions", default=[],
                    metavar="CLUSTER=REGION",
                    help="bind one of its clusters to a region (trust.yaml clusterRegions; repeatable): its agent's "
                         "Hello claiming another is refused. Entries already there are kept")
    pv.add_argument("--max-accelerators", type=int, metavar="N",
                    help="the most accelerators one of its clusters may report, over every pool (trust.yaml "
                         "maxAccelerators, in whole-device equivalents); a report claiming more is taken clamped "
                         "to it (the cluster shows OverBound). Without it a provider's clusters may "
                         "claim any room, which draws every tenant's jobs (docs/security.md, \"Capacity\")")
    pv.add_argument("--max-cpu", metavar="QUANTITY",
                    help="the most allocatable CPU one of its clusters may report, e.g. 4096 or 500m (maxCpu)")
    pv.add_argument("--max-memory", metavar="QUANTITY",
                    help="the most allocatable memory one of its clusters may report, e.g. 32Ti (maxMemory)")
    pv.add_argument("--min-price", metavar="PRICE",
                    help="the lowest price per accelerator-hour one of its clusters may claim, e.g. 1.80 (minPrice): "
                         "a lower claim is taken as it, so `spec.prefer: cheapest` cannot be drawn by a claim of 0 "
                         "(docs/security.md, \"Price\")")
    pv.add_argument("--max-price", metavar="PRICE",
                    help="the highest price per accelerator-hour one may claim (maxPrice); equal to --min-price, "
                         "the provider's price, claimed or not")
    pv.add_argument("--ca", type=Path, metavar="FILE",
                    help="the provider's own CA certificate (its key stays with the provider); default: create one "
                         "in providers/NAME/")
    pv.add_argument("--days", type=int, default=3650, help="validity of a created CA (default %(default)s)")
    pv.set_defaults(func=_provider)

    b = csub.add_parser("bundle", help="write trust-bundle.pem: the federation's CA and every provider's CA")
    b.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="certificates folder (default %(default)s)")
    b.set_defaults(func=_bundle)


def _init(args: argparse.Namespace) -> int:
    from federator.security.pki import CertsDir, PkiError, init_ca

    certs = CertsDir(args.dir)
    names = tuple(dict.fromkeys(["localhost", "127.0.0.1", *args.server_name]))
    try:
        init_ca(certs, days=args.days, server_names=names, force=args.force)
    except PkiError as exc:
        print(f"federator certs init: {exc}", file=sys.stderr)
        return 1
    print(f"created the federation CA in {certs.root}: ca.crt, server.crt (for {', '.join(names)}), users/admin.crt")
    print(f"next: federator certs issue --dir {certs.root} --cluster NAME   (one per member cluster)")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, issue

    if args.server:
        return _issue_server(args)
    if args.users_from is not None or args.renew:
        return _issue_users(args)
    if args.hosts:
        print("federator certs issue: --host: names the federator's certificate; it goes with --server",
              file=sys.stderr)
        return 2
    identity = Identity(IdentityKind.CLUSTER, args.cluster) if args.cluster else Identity(IdentityKind.USER, args.user)
    certs = CertsDir(args.dir)
    if args.region and not args.cluster:
        print("federator certs issue: --region: only a cluster certificate binds a region", file=sys.stderr)
        return 2
    if args.provider:
        if not args.cluster:
            print("federator certs issue: --provider: a provider's CA certifies clusters only", file=sys.stderr)
            return 2
        certs = certs.provider(args.provider)
        if not certs.ca_key.exists():
            print(f"federator certs issue: --provider: no CA key in {certs.root} (the provider signs with its own "
                  f"CA: run `federator certs provider --name {args.provider}` or issue on the provider's side)",
                  file=sys.stderr)
            return 1
        unbound = _unbound(CertsDir(args.dir), args.provider, args.cluster)
        if unbound and not args.outside_trust:
            print(f"federator certs issue: --cluster: {unbound}; the federator would refuse its agent. Bind it "
                  f"first (federator certs provider --name {args.provider} --clusters PATTERN, every pattern "
                  "again), or pass --outside-trust to issue it anyway", file=sys.stderr)
            return 1
        outside = _outside_regions(CertsDir(args.dir), args.provider, args.region)
        if outside:
            print(f"federator certs issue: --region: {outside}; the federator would refuse its agent",
                  file=sys.stderr)
            return 1
    elif args.outside_trust:
        print("federator certs issue: --outside-trust: goes with --provider", file=sys.stderr)
        return 2
    banned = _banned(CertsDir(args.dir), certs, identity)
    if banned:
        print(f"federator certs issue: --{identity.kind.value}: {banned}", file=sys.stderr)
        return 1
    try:
        path = issue(certs, identity, days=args.days, groups=tuple(args.group), region=args.region)
    except PkiError as exc:
        print(f"federator certs issue: {exc}", file=sys.stderr)
        return 1
    groups = f" in groups {', '.join(args.group)}" if args.group else ""
    bound = f", bound to region {args.region}" if args.region else ""
    print(f"issued {path} and {certs.key(identity)} for {identity}{groups}{bound} ({identity.uri})")
    return 0


def _issue_users(args: argparse.Namespace) -> int:
    """`--users-from FILE`: every user of the file, or none (cli/user_batch.py)."""
    from federator.cli.user_batch import BatchError, problems_of, read_users
    from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, issue

    if args.users_from is None:
        print("federator certs issue: --renew: goes with --users-from (one --user is re-issued without it)",
              file=sys.stderr)
        return 2
    for flag, given in (("--provider", args.provider), ("--outside-trust", args.outside_trust),
                        ("--host", args.hosts)):
        if given:
            print(f"federator certs issue: {flag}: not with --users-from (user certificates)", file=sys.stderr)
            return 2
    certs = CertsDir(args.dir)
    try:
        users = read_users(args.users_from, extra_groups=args.group)
        problems = problems_of(users, certs, renew=args.renew)
    except BatchError as exc:
        problems = exc.problems
    if problems:
        print(f"federator certs issue: --users-from: nothing issued; {len(problems)} problem"
              f"{'' if len(problems) == 1 else 's'}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    done = 0
    try:
        for user in users:
            issue(certs, Identity(IdentityKind.USER, user.name), days=args.days, groups=user.groups)
            done += 1
    except PkiError as exc:  # the CA (unreadable key, bad --days): met at the first user, before anything is written
        print(f"federator certs issue: {exc}" + (f" (after {done} users issued)" if done else "; nothing issued"),
              file=sys.stderr)
        return 1
    print(f"issued {done} user certificate{'' if done == 1 else 's'} in {certs.root / 'users'} "
          f"({users[0].name}, ...): hand each user NAME.crt, NAME.key and {certs.ca_cert.name}")
    return 0


def _banned(federation: CertsDir, certs: CertsDir, identity: Identity) -> str:
    """Why a new certificate for `identity` would be refused by name ("" when it would not).

    Why: `certs issue` after `certs revoke --cluster` issued without a word, the federator refused the new
    certificate for ever, and nothing said how to re-admit the member (outside DR QA, D5). Replacing the revoked
    certificate would also lose its serial, which reinstating revokes."""
    from federator.security.pki import PkiError
    from federator.security.reinstate import revoked_by_name

    for folder in dict.fromkeys([federation, certs]):
        try:
            if not revoked_by_name(folder, identity):
                continue
        except PkiError as exc:
            return str(exc)
        provider = f" --provider {certs.root.name}" if certs != federation else ""
        return (f"{identity} is revoked by name in {folder.revoked}, so the federator would refuse a new certificate "
                f"too. To re-admit it under a new key (its old certificate stays refused by serial): federator "
                f"certs reinstate --dir {federation.root}{provider} --{identity.kind.value} {identity.name}")
    return ""


def _reinstate(args: argparse.Namespace) -> int:
    from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, check_name
    from federator.security.reinstate import reinstate, revoked_by_name

    kind = IdentityKind.CLUSTER if args.cluster else IdentityKind.USER
    identity = Identity(kind, args.cluster or args.user)
    certs = CertsDir(args.dir)
    try:
        check_name(kind, identity.name)
        if args.provider:
            if kind is not IdentityKind.CLUSTER:
                raise PkiError("--provider: a provider's CA certifies clusters only")
            if revoked_by_name(certs, identity):  # the federation's ban applies to a provider's clusters too
                raise PkiError(f"{identity} is revoked by name in {certs.revoked}, the federation's list: lift "
                               f"that with `federator certs reinstate --dir {certs.root} --{kind.value} "
                               f"{identity.name}` (without --provider)")
            certs = certs.provider(args.provider)
        if args.group and kind is not IdentityKind.USER:
            raise PkiError("--group: only a user certificate carries groups")
        done = reinstate(certs, identity, days=args.days, groups=tuple(args.group))
    except PkiError as exc:
        print(f"federator certs reinstate: {exc}", file=sys.stderr)
        return 1
    old = f"revoked its old certificate by serial {done.old_serial:x}, " if done.old_serial is not None else \
        f"no old certificate of it in {certs.root} (revoke any you know by --serial), "
    print(f"reinstated {identity}: {old}issued {done.cert} and {certs.key(identity)} (serial {done.new_serial:x}), "
          f"lifted `{identity}` in {certs.revoked}; a federator using this list admits the new certificate within "
          "seconds. Give it to its agent (or user) and restart it; revoke by --serial any other copy of an older "
          "certificate of it")
    return 0


def _unbound(certs: CertsDir, provider: str, cluster: str) -> str:
    """Why trust.yaml in the same folder would not let `provider` certify `cluster` ("" when it would, or when
    there is no trust.yaml to ask: a provider issuing on its own side holds only its CA).

    Why: a certificate outside the provider's patterns was issued without a word, and the federator then refused
    its agent at every connect (outside provider QA, F12); the tool that wrote the patterns can say so first."""
    import fnmatch

    from federator.security.trust import TrustError, read_trust_document

    try:
        doc = read_trust_document(certs.trust)
    except TrustError as exc:
        return str(exc)
    if not doc:
        return ""
    entry = doc.get(provider)
    if entry is None:
        return f"{certs.trust} binds no clusters to provider {provider!r}"
    raw = entry.get("clusters")
    patterns = [str(p) for p in raw] if isinstance(raw, list) else []
    if any(fnmatch.fnmatchcase(cluster, p) for p in patterns):
        return ""
    return (f"{cluster!r} matches none of the patterns provider {provider!r} is bound to in {certs.trust} "
            f"({', '.join(patterns) or 'none'})")


def _cluster_regions(given: list[str]) -> dict[str, str]:
    """`--cluster-region NAME=REGION` flags as a mapping (TrustError naming the flag for one without `=`); the
    names and regions are checked as trust.yaml's `clusterRegions` are, when the draft is read."""
    from federator.security.trust import TrustError

    out: dict[str, str] = {}
    for item in given:
        name, eq, region = item.partition("=")
        if not eq or not name or not region:
            raise TrustError(f"--cluster-region: must be CLUSTER=REGION, got {item!r}")
        out[name] = region
    return out


def _outside_regions(certs: CertsDir, provider: str, region: str) -> str:
    """Why trust.yaml in the same folder would refuse a cluster of `provider` bound to `region` ("" when it would
    not, or there is no trust.yaml, or no region): a region outside the provider's `regions`."""
    from federator.security.trust import TrustError, read_trust_document

    if not region:
        return ""
    try:
        doc = read_trust_document(certs.trust)
    except TrustError as exc:
        return str(exc)
    raw = (doc.get(provider) or {}).get("regions")
    regions = [str(r) for r in raw] if isinstance(raw, list) else []
    if not regions or region in regions:
        return ""
    return f"{region!r} is not a region of provider {provider!r} in {certs.trust} ({', '.join(regions)})"


def _issue_server(args: argparse.Namespace) -> int:
    """Renew the federator's serving certificate under the federation's CA. `certs init` would refuse (the CA
    exists) or, with --force, replace the CA and with it every agent's and user's certificate; by hand it takes
    openssl and the SAN URI federator://server/federator."""
    from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, issue, load_cert, server_names_of

    for flag, given in (("--provider", args.provider), ("--group", args.group)):
        if given:
            print(f"federator certs issue: {flag}: not for the federator's certificate (--server)", file=sys.stderr)
            return 2
    certs = CertsDir(args.dir)
    names: tuple[str, ...] = tuple(args.hosts)
    try:
        if not names and certs.server_cert.exists():
            names = server_names_of(load_cert(certs.server_cert))  # a renewal keeps the names clients dial
        names = tuple(dict.fromkeys(["localhost", "127.0.0.1", *names]))
        path = issue(certs, Identity(IdentityKind.SERVER, "federator"), server_names=names, days=args.days,
                     names_flag="--host")
    except PkiError as exc:
        print(f"federator certs issue: {exc}", file=sys.stderr)
        return 1
    until = load_cert(path).not_valid_after_utc.isoformat(timespec="seconds")
    print(f"issued {path} and {certs.server_key} for the federator ({', '.join(names)}), valid until {until}")
    print("a running federator using these files serves them from its next look (--trust-poll-seconds), or at once "
          "on SIGHUP; open connections keep their handshake")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from federator.security.pki import CertsDir, IdentityKind, PkiError, check_name

    certs = CertsDir(args.dir)
    try:
        if args.serial:
            serial = args.serial.replace(":", "").lower()
            int(serial, 16)
            line = f"serial {serial}"
        elif args.cluster:
            check_name(IdentityKind.CLUSTER, args.cluster)
            line = f"cluster {args.cluster}"
        else:
            check_name(IdentityKind.USER, args.user)
            line = f"user {args.user}"
    except ValueError as exc:
        msg = str(exc) if isinstance(exc, PkiError) else f"--serial: not a hexadecimal number: {args.serial!r}"
        print(f"federator certs revoke: {msg}", file=sys.stderr)
        return 2
    if args.provider:
        certs = certs.provider(args.provider)
    certs.root.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with certs.revoked.open("a") as f:
        f.write(f"{line}  # revoked {stamp}\n")
    print(f"revoked {line} in {certs.revoked}; a federator using this list refuses it within seconds")
    if not args.serial:  # a leaked key must not lose the member for good (outside DR QA, D5)
        kind = "cluster" if args.cluster else "user"
        provider = f" --provider {args.provider}" if args.provider else ""
        print(f"to re-admit it later under a new key: federator certs reinstate --dir {args.dir}{provider} "
              f"--{kind} {args.cluster or args.user}")
    return 0


def _provider(args: argparse.Namespace) -> int:
    from federator.security.limits import valid_region
    from federator.security.pki import CertsDir, PkiError, create_ca, load_cert
    from federator.security.trust import TrustError, load_trust, read_trust_document, write_trust

    certs = CertsDir(args.dir)
    mine = certs.provider(args.name)
    try:
        if args.max_accelerators is not None and args.max_accelerators < 0:
            raise TrustError(f"--max-accelerators: must be a whole number of at least 0, got {args.max_accelerators}")
        added = _cluster_regions(args.cluster_regions)  # refused before anything is written, as --region is
        for region in args.regions or ():  # refused before trust.yaml is touched, not after it is written
            if not valid_region(region):
                raise TrustError(f"--region: must be a region name as agents give it (a lower-case DNS name of at "
                                 f"most 63 characters), got {region!r}")
        if not certs.ca_cert.exists():
            raise PkiError(f"{certs.ca_cert}: run `federator certs init` first")
        if args.ca is not None:
            ca = load_cert(args.ca)
            mine.root.mkdir(parents=True, exist_ok=True)
            mine.ca_cert.write_bytes(args.ca.read_bytes())
            made = f"imported the CA {ca.subject.rfc4514_string()}"
        elif mine.ca_cert.exists():
            made = f"kept the CA in {mine.ca_cert}"
        else:
            create_ca(mine, common_name=f"{args.name} provider CA", days=args.days)
            made = f"created the CA {mine.ca_cert} (give {mine.ca_key} to the provider, keep it off the federator)"
        mine.revoked.touch(exist_ok=True)  # the provider's revocation list, empty for now (certs revoke --provider)
        doc = read_trust_document(certs.trust)
        # Re-running `certs provider` (new clusters, an imported CA) must not drop the regions or the capacity
        # bound an operator gave the provider: that would let its clusters claim any region, or any room, again.
        before = doc.get(args.name, {})
        regions = args.regions or before.get("regions")
        kept = before.get("clusterRegions")  # the clusters bound to a region: kept, and --cluster-region added
        cluster_regions = {**(dict(kept) if isinstance(kept, dict) else {}), **added}
        given = {"maxAccelerators": args.max_accelerators, "maxCpu": args.max_cpu, "maxMemory": args.max_memory,
                 "minPrice": args.min_price, "maxPrice": args.max_price}
        bounds = {b: given[b] if given[b] is not None else before.get(b) for b in given}
        doc[args.name] = {"ca": str(mine.ca_cert.relative_to(certs.root)), "clusters": list(args.clusters),
                          "revoked": str(mine.revoked.relative_to(certs.root)),
                          **({"regions": regions} if regions is not None else {}),
                          **({"clusterRegions": cluster_regions} if cluster_regions else {}),
                          **{b: v for b, v in bounds.items() if v is not None}}
        # Written beside it and checked as the federator reads it before it replaces trust.yaml: a bound the
        # federator would refuse (--max-memory lots) must leave the file as it was, not broken.
        draft = certs.trust.with_name(certs.trust.name + ".new")
        write_trust(draft, doc)
        try:
            trust = load_trust(draft, federation_ca=certs.ca_cert)
        except TrustError as exc:
            draft.unlink(missing_ok=True)
            raise TrustError(str(exc).replace(str(draft), str(certs.trust))) from None
        draft.replace(certs.trust)
        (certs.root / "trust-bundle.pem").write_bytes(trust.bundle_pem())
    except (PkiError, TrustError, OSError) as exc:
        print(f"federator certs provider: {exc}", file=sys.stderr)
        return 1
    provider = trust.providers[args.name]
    bound = provider.regions
    most = provider.max_accelerators
    print(f"provider {args.name}: {made}; it certifies clusters {', '.join(args.clusters)}, in "
          f"{'regions ' + ', '.join(bound) if bound else 'any region'}, with "
          f"{f'at most {most} accelerators' if most is not None else 'any number of accelerators'} a cluster "
          f"({certs.trust})")
    if provider.cluster_regions:
        pairs = sorted(provider.cluster_regions.items())
        print("  bound: " + ", ".join(f"{name} in {region}" for name, region in pairs))
    if provider.min_price is not None or provider.max_price is not None:
        low, high = provider.min_price, provider.max_price
        print("  price: " + (f"{low:g}" if low is not None else "any") + " to " +
              (f"{high:g}" if high is not None else "any") + " an accelerator-hour (a claim outside is taken at the "
              "bound)")
    if provider.max_accelerators is None:
        print(f"warning: provider {args.name}'s clusters may report any room, and a cluster claiming much at a low "
              "price draws every tenant's jobs; bound it with --max-accelerators N", file=sys.stderr)
    print(f"next: federator certs issue --dir {certs.root} --provider {args.name} --cluster NAME; a running "
          "federator reading this trust.yaml takes it within --trust-poll-seconds, or at once on SIGHUP")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from federator.security.pki import CertsDir
    from federator.security.trust import Trust, TrustError, load_trust

    certs = CertsDir(args.dir)
    try:
        trust = load_trust(certs.trust, federation_ca=certs.ca_cert) if certs.trust.exists() else Trust()
    except TrustError as exc:
        print(f"federator certs bundle: {exc}", file=sys.stderr)
        return 1
    out = certs.root / "trust-bundle.pem"
    try:  # no CA in --dir, or a bundle that cannot be written: one line, not a traceback
        out.write_bytes(trust.bundle_pem() if trust.providers else certs.ca_cert.read_bytes())
    except OSError as exc:
        print(f"federator certs bundle: {exc.filename or out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}: the federation's CA and {len(trust.providers)} provider CA(s)")
    return 0


# -- the TLS flags of serve, agent and the client commands ------------------


def add_tls_arguments(p: argparse.ArgumentParser, *, role: str) -> None:
    """--certs-dir, --ca, --cert, --key, --insecure (and --user/--token for clients)."""
    g = p.add_argument_group("TLS (mTLS by default)")
    g.add_argument("--certs-dir", type=Path, default=os.environ.get("FEDERATOR_CERTS_DIR"),
                   help="certificates folder made by `federator certs init` (env FEDERATOR_CERTS_DIR)")
    g.add_argument("--ca", type=Path, default=os.environ.get("FEDERATOR_CA"), help="CA certificate (env FEDERATOR_CA)")
    g.add_argument("--cert", type=Path, default=os.environ.get("FEDERATOR_CERT"),
                   help="this process's certificate (env FEDERATOR_CERT)")
    g.add_argument("--key", type=Path, default=os.environ.get("FEDERATOR_KEY"),
                   help="this process's private key (env FEDERATOR_KEY)")
    g.add_argument("--insecure", action="store_true", default=os.environ.get("FEDERATOR_INSECURE") == "1",
                   help="plaintext gRPC, no authentication (env FEDERATOR_INSECURE=1); for trusted test setups only")
    if role == "client":
        g.add_argument("--user", default=os.environ.get("FEDERATOR_USER", "admin"),
                       help="user certificate to use from --certs-dir (default %(default)s)")
        g.add_argument("--token", default=os.environ.get("FEDERATOR_TOKEN", ""),
                       help="bearer token instead of a client certificate (env FEDERATOR_TOKEN)")


def tls_files(args: argparse.Namespace, *, role: str, name: str = "") -> TlsFiles | None:
    """The TlsFiles for a role ('server', 'agent' with name=cluster, 'client'), or None with --insecure."""
    from federator.security.pki import CertsDir
    from federator.security.tls import TlsError, TlsFiles, cluster_files, server_files, user_files

    if args.insecure:
        return None
    if args.certs_dir is not None:
        certs = CertsDir(Path(args.certs_dir))
        if role == "server":
            base = server_files(certs)
        elif role == "agent":
            base = cluster_files(certs.provider(args.provider) if getattr(args, "provider", "") else certs, name)
            base = TlsFiles(certs.ca_cert, base.cert, base.key)  # the federator's certificate is the federation's
        elif getattr(args, "token", ""):
            base = TlsFiles(certs.ca_cert)
        else:
            base = user_files(certs, args.user)
        return TlsFiles(args.ca or base.ca, args.cert or base.cert, args.key or base.key)
    if args.ca is None:
        raise TlsError("TLS is the default: pass --certs-dir (made by `federator certs init`) or --ca/--cert/--key, "
                       "or --insecure for plaintext")
    return TlsFiles(args.ca, args.cert, args.key)


def client_options(args: argparse.Namespace) -> ClientOptions:
    """ClientOptions from --server and the TLS flags."""
    from federator.security.tls import ClientOptions

    files = tls_files(args, role="client")
    return ClientOptions(server=args.server, tls=files, token=getattr(args, "token", ""), insecure=args.insecure)
