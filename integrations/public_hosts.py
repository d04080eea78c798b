"""Which addresses an address taken from a ledger (a row's `pdf_url`) may reach: hosts on the
public internet only, unless the business lists its own file server's addresses or networks
(ARBOT_ALLOW_PRIVATE_PDF_HOSTS).

A host name is resolved here, and every address it resolves to must pass; the caller then
connects to one of those addresses (not to the name again), so the name cannot resolve to an
internal address between the check and the connection. Loopback, private, link-local, shared
(carrier NAT), multicast, reserved and unspecified addresses are refused, IPv4 written inside
IPv6 (`::ffff:10.0.0.1`, 6to4) as the IPv4 it carries, and the cloud metadata services always,
whatever is allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS, GCP, Azure, OpenStack and others; AWS ECS; Alibaba; Oracle;
# Azure's wire server; AWS over IPv6): they hand out credentials, so they are never reached.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
        "fd00:ec2::254",
    )
)


METADATA_KIND = "a cloud metadata address"


class NotPublic(Exception):
    """`address` is not on the public internet (`kind` says what it is) and is not allowed."""

    def __init__(self, address: Address, kind: str) -> None:
        super().__init__(f"{address} is {kind}")
        self.address = address
        self.kind = kind


def allowed_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """ARBOT_ALLOW_PRIVATE_PDF_HOSTS's addresses and networks (`10.0.0.5`, `10.1.0.0/16`);
    ValueError naming an entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (such as 10.0.0.5 or 10.1.0.0/16)"
            ) from None
    return tuple(networks)


def _carried(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


def kind_of(address: Address) -> str | None:
    """What kind of address that is not on the public internet `address` is; None: public."""
    address = _carried(address)
    if address in METADATA:
        return METADATA_KIND
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a special-purpose address"),
    )
    return next((kind for found, kind in checks if found), None)


def vet(address: Address, allowed: tuple[Network, ...]) -> None:
    """NotPublic unless `address` is public, or allowed (metadata services never are)."""
    kind = kind_of(address)
    if kind is None:
        return
    carried = _carried(address)
    if carried not in METADATA and any(carried in network for network in allowed):
        return
    raise NotPublic(address, kind)


def resolve(host: str, port: int, allowed: tuple[Network, ...]) -> list[Address]:
    """The addresses `host` resolves to, in the resolver's order, each vetted: NotPublic at the
    first that may not be reached; OSError (socket.gaierror) when the name does not resolve."""
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in found:
        vet(address, allowed)
    return found
