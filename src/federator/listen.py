"""Listen addresses as the command lines take them: checked before anything binds, named by their flag.

`federator serve` and `federator agent` both take HOST:PORT flags. A bad one must be a
one-line error that names the flag, not a traceback from int() or from the socket layer, and
not a port that wraps: grpcio reads `:99999` as port 34463.
"""

from __future__ import annotations

import argparse


class ListenError(ValueError):
    """A listen flag whose value is not HOST:PORT, or whose address cannot be bound."""


def parse_listen(value: str, flag: str = "--metrics-listen") -> tuple[str, int]:
    """HOST:PORT (HOST may be empty for every address, or [v6]) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"{flag}: expected HOST:PORT with a port 0-65535, got {value[:80]!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def check_grpc_listen(value: str, flag: str) -> None:
    """A gRPC listen address: HOST:PORT as `parse_listen` reads it, or a `unix:` socket path."""
    if value.startswith(("unix:", "unix-abstract:")):
        return
    parse_listen(value, flag)


# gRPC target schemes whose part after the colon is not a port (unix:/path, unix-abstract:name, ...).
_SCHEMES = frozenset({"dns", "unix", "unix-abstract", "vsock", "ipv4", "ipv6", "xds", "google-c2p"})


def server_address(value: str) -> str:
    """A `--server` value as argparse's `type`: any gRPC target, but a HOST:PORT's port must be 0-65535.

    A DNS name that does not resolve yet is left to the dialler, which retries (a Service may come
    up later); a port past 65535 never will, and grpcio would dial it wrapped. Nor will a port that is
    not a number (`federator:707O`): the dialler retried it for seconds, then failed to parse it. Nor will a URL
    (`http://host:7070`): gRPC read `http` as a scheme and said "Misformatted domain name"."""
    scheme, sep, rest = value.partition("://")
    if sep and scheme.lower() in ("http", "https", "grpc", "grpcs", "tcp"):
        host = rest.split("/", 1)[0]
        raise argparse.ArgumentTypeError(f"give HOST:PORT, not a URL: {value[:80]!r} (did you mean {host[:80]!r}?)")
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and int(port) > 65535:
        raise argparse.ArgumentTypeError(f"port {port} of {value[:80]!r} is not 0-65535")
    plain = host and "/" not in value and ":" not in host and host not in _SCHEMES
    if sep and plain and not port.isdigit():
        raise argparse.ArgumentTypeError(f"port {port[:20]!r} of {value[:80]!r} is not a number 0-65535")
    return value


__all__ = ["ListenError", "check_grpc_listen", "parse_listen", "server_address"]
