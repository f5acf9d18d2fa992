"""Rate limits per client: what each one allows, how a setting writes it, and
which address a request is counted under. Pure: no I/O (the counting itself
is service.web.limits, in Redis).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a client address may do, one limit each. Every one has a setting
# (LIMIT_<NAME> in the environment) and a row in the README's table.
ACTIONS = (
    "book",  # a booking form or POST /api/v1/bookings
    "verify",  # a code typed
    "resend",  # a code asked for again
    "reschedule",
    "cancel",
    "manage",  # a manage link opened (its token tried)
    "availability",  # a week of times, a booking form, the API's availability
)

_RATE_RE = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{0,6})\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OFF = ("off", "0", "none")
# An IPv6 client holds a /64 at least: counted per /64, or it would get 2**64
# addresses for free.
IPV6_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period`, and at most `count` at once."""

    count: int
    period: timedelta

    @property
    def interval(self) -> timedelta:
        return self.period / self.count

    def __str__(self) -> str:
        seconds = int(self.period.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"{self.count}/{seconds // size}{unit}"
        return f"{self.count}/{seconds}s"


def parse_rate(text: str) -> Rate | None:
    """ "12/1h", "120/1m", "8/24h" or "12/h"; None for "off". ValueError otherwise."""
    if text.strip().lower() in OFF:
        return None
    found = _RATE_RE.match(text.lower())
    if found is None:
        raise ValueError(f"{text!r} is not a rate like 12/1h or off")
    count, amount, unit = int(found[1]), int(found[2] or 1), found[3]
    if count < 1 or amount < 1:
        raise ValueError(f"{text!r} must allow at least one request per period")
    return Rate(count, timedelta(seconds=amount * _UNITS[unit]))


def parse_networks(text: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses or networks (TRUSTED_PROXIES);
    ValueError on anything else."""
    networks: list[Network] = []
    for item in text.split(","):
        item = item.strip()
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]
) -> bool:
    return any(address in network for network in proxies)


def client_address(peer: str | None, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str:
    """The address a request is counted under.

    The peer, unless it is one of our reverse proxies: then X-Forwarded-For,
    read from the right (each proxy appends the address it saw), and the
    first address that is not a trusted proxy is the client. Anything a
    client wrote further left is its own claim and ignored; a header from an
    untrusted peer is ignored altogether. IPv6 clients count per /64.
    """
    current = _address(peer or "")
    if current is None:
        return "unknown"
    if _trusted(current, proxies):
        hops = [h for header in forwarded_for for h in header.split(",")]
        for hop in reversed(hops):
            found = _address(hop)
            if found is None:
                break  # a garbled entry: trust nothing further left
            current = found
            if not _trusted(found, proxies):
                break
    if isinstance(current, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((current, IPV6_PREFIX), strict=False))
    return str(current)
