"""How a client command reaches a federator, and how it says a failed call.

Every call takes a `Target`: a ClientOptions (address and credentials), or just an address, in which case the
credentials come from the environment (FEDERATOR_CERTS_DIR / FEDERATOR_CA, FEDERATOR_CERT, FEDERATOR_KEY,
FEDERATOR_TOKEN, or FEDERATOR_INSECURE=1). Every command that calls a federator takes `--server` and the TLS flags
(`server_arguments`) and says a failed call one way (`fail`): `error: ...`, the exit status by its code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from federator.api.v1 import identity_pb2, identity_pb2_grpc, jobs_pb2_grpc
from federator.cli.certs import add_tls_arguments, client_options
from federator.cli.exit_codes import Exit, for_rpc
from federator.cli.no_leader import gap_note
from federator.listen import server_address
from federator.security.pki import CertsDir
from federator.security.tls import ClientOptions, TlsError, TlsFiles, dial_hint, user_files

DEFAULT_SERVER = os.environ.get("FEDERATOR_SERVER", "127.0.0.1:7070")
Target = str | ClientOptions
CALL_TIMEOUT = 10.0  # seconds one get/cancel call (one page of `get jobs`) may take; they are not retried


def server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s), or a gRPC target such as a list of "
                        "replicas, `ipv4:HOST1:PORT1,HOST2:PORT2` (only the leader answers)")
    add_tls_arguments(p, role="client")


def options_from_env(server: str) -> ClientOptions:
    """Credentials for `server` from FEDERATOR_* environment variables."""
    env = os.environ
    token = env.get("FEDERATOR_TOKEN", "")
    if env.get("FEDERATOR_INSECURE") == "1":
        return ClientOptions(server=server, insecure=True)
    tls: TlsFiles | None = None
    if env.get("FEDERATOR_CERTS_DIR"):
        certs = CertsDir(Path(env["FEDERATOR_CERTS_DIR"]))
        tls = TlsFiles(certs.ca_cert) if token else user_files(certs, env.get("FEDERATOR_USER", "admin"))
    elif env.get("FEDERATOR_CA"):
        cert, key = env.get("FEDERATOR_CERT"), env.get("FEDERATOR_KEY")
        tls = TlsFiles(Path(env["FEDERATOR_CA"]), Path(cert) if cert else None, Path(key) if key else None)
    return ClientOptions(server=server, tls=tls, token=token)


def options(target: Target) -> ClientOptions:
    return target if isinstance(target, ClientOptions) else options_from_env(target)


@contextmanager
def connect(target: Target) -> Iterator[tuple[jobs_pb2_grpc.JobServiceStub, jobs_pb2_grpc.ClusterServiceStub]]:
    with options(target).channel() as channel:
        yield jobs_pb2_grpc.JobServiceStub(channel), jobs_pb2_grpc.ClusterServiceStub(channel)


def features(channel: grpc.Channel) -> frozenset[str]:
    """The federator's API features (IdentityService.WhoAmI, api/features.py); none when it cannot say (a federator
    before WhoAmI, or one that refuses it): a client then uses only what every federator serves."""
    try:
        me = identity_pb2_grpc.IdentityServiceStub(channel).WhoAmI(identity_pb2.WhoAmIRequest(), timeout=CALL_TIMEOUT)
    except grpc.RpcError as err:
        if err.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED):
            return frozenset()
        raise
    return frozenset(me.features)


def setup_hint(err: grpc.RpcError, args: argparse.Namespace | None) -> str:
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    if code is not grpc.StatusCode.UNAVAILABLE or args is None:
        return ""
    try:
        target = client_options(args)
        return dial_hint(detail or "", target.server, tls=not target.insecure,
                         token=bool(target.token) and (target.tls is None or target.tls.cert is None))
    except TlsError:
        return ""


def fail(err: grpc.RpcError | TlsError, args: argparse.Namespace | None = None, *, prefix: str = "",
          seconds: float | None = None, said: Callable[[str], str] = str) -> int:
    """Print a failed call as `error: ...`, its exit status by its code (cli/exit_codes.py), or bad TLS flags
    (exit 2). A call this client gave up on
    after `seconds` (its own deadline, not a status the federator sent) is said as submit says it, `no answer
    from HOST:PORT in N s` (N: `seconds`, default CALL_TIMEOUT): a bare "Deadline Exceeded" named neither the
    address nor the wait (outside QA F13)."""
    if isinstance(err, TlsError):
        print(f"error: {prefix}{err}", file=sys.stderr)
        return Exit.USAGE
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    detail = said(detail) if isinstance(detail, str) else detail  # said: in the words the user wrote
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and detail == "Deadline Exceeded" and args is not None:
        waited = CALL_TIMEOUT if seconds is None else seconds
        print(f"error: {prefix}no answer from {args.server} in {waited:g} s (last: {detail})", file=sys.stderr)
        print(gap_note(detail, args.server, unanswered=True), file=sys.stderr)  # a failover, a standby (no_leader.py)
        return Exit.UNAVAILABLE
    hint = setup_hint(err, args)
    print(f"error: {prefix}{detail} ({code.name if code else 'unknown'})" + (f"; hint: {hint}" if hint else ""),
          file=sys.stderr)
    note = gap_note(detail, args.server) if code is grpc.StatusCode.UNAVAILABLE and args and not hint else ""
    if note:
        print(note, file=sys.stderr)
    return Exit.FAILED if hint else for_rpc(err)  # a hint names a setup mistake (plaintext, a name): no retry cures it


__all__ = ["CALL_TIMEOUT", "DEFAULT_SERVER", "Target", "connect", "fail", "features", "options", "options_from_env",
           "server_arguments", "setup_hint"]
