"""CIDR checks as Vault's cidrutil makes them for AppRole: blocks must be written as
CIDRs (Go's ``net.ParseCIDR``: an address alone is refused), a SecretID's blocks must
lie inside its role's, the login's source address is checked with tokenutil.cidrs_allow."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(block: str) -> Network:
    text = block.strip()
    if "/" not in text:
        raise ValueError(text)
    return ipaddress.ip_network(text, strict=False)


def first_invalid(blocks: list[str]) -> str | None:
    """The first block Go's ParseCIDR would refuse, or None when all parse."""
    for block in blocks:
        try:
            _network(block)
        except ValueError:
            return block.strip()
    return None


def is_subset(outer: list[str], inner: list[str]) -> bool:
    """Every block of ``inner`` lies inside some block of ``outer`` (an empty ``outer``
    allows anything, as Vault's verifyCIDRRoleSecretIDSubset). A role's legacy bare
    addresses count as /32."""
    if not inner or not outer:
        return True
    try:
        # A bare address (a legacy role's, or a token CIDR rendered as Vault does)
        # is its own /32 or /128.
        outers = [ipaddress.ip_network(b.strip(), strict=False) for b in outer]
        for block in inner:
            net = _network(block)
            if not any(net.version == o.version and net.subnet_of(o)  # type: ignore[arg-type]
                       for o in outers):
                return False
    except ValueError:
        return False
    return True

