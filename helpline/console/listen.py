"""``[console] listen``: host:port, IPv6 in brackets (``[::1]:8081``)."""

from __future__ import annotations

from helpline.digits import is_number
from helpline.netaddr import is_loopback


def parse_listen(value: str) -> tuple[str, int]:
    """(host, port) of ``host:port``, or ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not is_number(port) or not 0 <= int(port) <= 65535:
        raise ValueError(f"'{value}' is not host:port (like 127.0.0.1:8081)")
    return host.removeprefix("[").removesuffix("]"), int(port)


__all__ = ["is_loopback", "parse_listen"]
