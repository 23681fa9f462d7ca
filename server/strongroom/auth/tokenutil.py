"""The token parameters every auth method's roles and users share (Vault's
``sdk/helper/tokenutil``): the ``token_*`` fields, their parsing and error texts,
their rendering on a role or user read, and how they shape a login's ``Auth``.

Also the CIDR helpers methods use for their login-time bindings: Vault keeps bound
CIDRs as go-sockaddr addresses; here they are kept as the text Vault renders
(``10.1.2.3/8``, ``10.0.0.1``, ``fe80::1/64``) and parsed with ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.core.logical import Auth
from strongroom.errors import BadRequestError
from strongroom.framework.fields import Field, FieldData, FieldType

TOKEN_TYPES = ("default", "service", "batch")

TOKEN_FIELDS: dict[str, Field] = {
    # Comma-separated text or a JSON list; parsed here (Vault's TypeCommaStringSlice
    # trims each item but keeps empty ones, which framework LIST fields drop).
    "token_bound_cidrs": Field(FieldType.ANY, description="CIDR blocks allowed to use the token"),
    "token_explicit_max_ttl": Field(FieldType.DURATION, 0),
    "token_max_ttl": Field(FieldType.DURATION, 0),
    # Booleans parsed here for Vault's conversion text (parse_bool).
    "token_no_default_policy": Field(FieldType.ANY, False),
    "token_period": Field(FieldType.DURATION, 0),
    "token_policies": Field(FieldType.ANY, description="Comma-separated list of policies"),
    "token_type": Field(FieldType.STRING, "default-service"),
    "token_ttl": Field(FieldType.DURATION, 0),
    "token_num_uses": Field(FieldType.INT, 0),
    "token_strictly_bind_ip": Field(FieldType.ANY, False),
}

# Vault's deprecated spellings (each method declares the ones it had and maps them
# with ``upgrade``): policies -> token_policies, ttl -> token_ttl, ...
DEPRECATED_FIELDS: dict[str, Field] = {
    "policies": Field(FieldType.ANY),
    "ttl": Field(FieldType.DURATION, 0),
    "max_ttl": Field(FieldType.DURATION, 0),
    "period": Field(FieldType.DURATION, 0),
    "num_uses": Field(FieldType.INT, 0),
    "bound_cidrs": Field(FieldType.ANY),
    "bound_cidr_list": Field(FieldType.ANY),
}


def comma_string_slice(name: str, value: Any) -> list[str]:
    """Vault's TypeCommaStringSlice: "a, b" or ["a", "b"] -> trimmed strings ("" kept)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [] if value == "" else [item.strip() for item in value.split(",")]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, (dict, list)):
                raise BadRequestError(f'error converting input for field "{name}": '
                                      "expected a list of strings")
            out.append((str(item).lower() if isinstance(item, bool) else str(item)).strip())
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    raise BadRequestError(f'error converting input for field "{name}": '
                          "expected a list of strings")


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(name: str, value: Any) -> bool:
    """Vault's TypeBool (parseutil.ParseBool: Go's strconv.ParseBool on text), with
    its conversion error text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise BadRequestError(f'error converting input for field "{name}": \'\' cannot parse '
                          "value as 'bool': strconv.ParseBool: invalid syntax")


def parse_policies(value: Any, name: str = "policies") -> list[str]:
    """Vault's policyutil.ParsePolicies (the deprecated ``policies`` fields): trimmed,
    lowercased, deduplicated and sorted; ``root`` alone if present."""
    cleaned = [p.lower() for p in comma_string_slice(name, value)]
    if "root" in cleaned:
        return ["root"]
    return sorted({p for p in cleaned if p})


def _render(iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    # go-sockaddr renders a full-length mask as the bare address, else address/bits
    # (the address as given, host bits included).
    if iface.network.prefixlen == iface.max_prefixlen:
        return str(iface.ip)
    return f"{iface.ip}/{iface.network.prefixlen}"


def _parse_one(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        # Vault would also take "ip:port" and UNIX socket paths here; neither can
        # match a client's address, so they are refused (fail closed).
        raise BadRequestError(
            f'error parsing address "{text}": Unable to convert "{text}" to an IPv4 or '
            "IPv6 address, or a UNIX Socket") from None


def parse_cidrs(value: Any, name: str = "token_bound_cidrs") -> list[str]:
    """Validated CIDR blocks (or single addresses) in Vault's rendering."""
    return [_render(_parse_one(item)) for item in comma_string_slice(name, value)]


def cidrs_allow(cidrs: list[str], remote_addr: str) -> bool:
    """Whether ``remote_addr`` is inside one of ``cidrs``; an empty list allows any
    address. An unparseable remote address is refused (Vault: permission denied)."""
    if not cidrs:
        return True
    try:
        addr = ipaddress.ip_address(remote_addr.strip("[]"))
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            network = ipaddress.ip_interface(cidr).network
        except ValueError:
            continue  # stored by an older version in a form no longer accepted
        if addr.version == network.version and addr in network:
            return True
        # An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d.
        mapped = getattr(addr, "ipv4_mapped", None)
        if mapped is not None and network.version == 4 and mapped in network:
            return True
    return False


@dataclass
class TokenParams:
    """Vault's ``tokenutil.TokenParams`` (durations in seconds)."""

    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    policies: list[str] = field(default_factory=list)
    bound_cidrs: list[str] = field(default_factory=list)
    num_uses: int = 0
    type: str = "default"
    no_default_policy: bool = False
    strictly_bind_ip: bool = False

    def update_from(self, data: FieldData, create: bool,
                    deprecated: Mapping[str, str] | None = None) -> None:
        """Vault's ParseTokenFields: apply the ``token_*`` fields the request gave.

        ``deprecated`` maps an old field name to its ``token_*`` successor (e.g.
        ``{"policies": "token_policies"}``): the old one is used when the new one is
        absent. ``create`` is accepted for symmetry with the methods' handlers (Vault
        parses a create and an update alike: absent fields keep their values).
        """
        del create
        given, old_policies = _given(data, deprecated or {})
        if "token_bound_cidrs" in given:
            self.bound_cidrs = parse_cidrs(given["token_bound_cidrs"])
        if "token_explicit_max_ttl" in given:
            self.explicit_max_ttl = int(given["token_explicit_max_ttl"])
        if "token_max_ttl" in given:
            self.max_ttl = int(given["token_max_ttl"])
        if self.max_ttl < 0:
            raise BadRequestError("'token_max_ttl' cannot be negative")
        if "token_no_default_policy" in given:
            self.no_default_policy = parse_bool("token_no_default_policy",
                                                given["token_no_default_policy"])
        if "token_period" in given:
            self.period = int(given["token_period"])
        if self.period < 0:
            raise BadRequestError("'token_period' cannot be negative")
        if "token_policies" in given:
            self.policies = (parse_policies(given["token_policies"]) if old_policies
                             else comma_string_slice("token_policies", given["token_policies"]))
        if "token_type" in given:
            kind = str(given["token_type"])
            if kind not in ("", *TOKEN_TYPES):
                raise BadRequestError(f"invalid 'token_type' value \"{kind}\"")
            self.type = kind or "default"
        if "token_num_uses" in given:
            self.num_uses = int(given["token_num_uses"])
        if self.num_uses < 0:
            raise BadRequestError("'token_num_uses' cannot be negative")
        if self.type == "batch":
            if self.period:
                raise BadRequestError("'token_type' cannot be 'batch' or 'default_batch' "
                                      "when set to generate periodic tokens")
            if self.num_uses:
                raise BadRequestError("'token_type' cannot be 'batch' or 'default_batch' "
                                      "when set to generate tokens with limited use count")
        if "token_ttl" in given:
            self.ttl = int(given["token_ttl"])
        if self.ttl < 0:
            raise BadRequestError("'token_ttl' cannot be negative")
        if self.ttl > 0 and self.max_ttl > 0 and self.ttl > self.max_ttl:
            raise BadRequestError("'token_ttl' cannot be greater than 'token_max_ttl'")
        if "token_strictly_bind_ip" in given:
            self.strictly_bind_ip = parse_bool("token_strictly_bind_ip",
                                               given["token_strictly_bind_ip"])
        if self.strictly_bind_ip and self.bound_cidrs:
            raise BadRequestError("'token_strictly_bind_ip' conflicts with "
                                  "'token_bound_cidrs'; set only one")

    def to_data(self) -> dict[str, Any]:
        """Vault's PopulateTokenData: the ``token_*`` fields of a role or user read."""
        return {
            "token_bound_cidrs": list(self.bound_cidrs),
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_max_ttl": self.max_ttl,
            "token_no_default_policy": self.no_default_policy,
            "token_period": self.period,
            "token_policies": list(self.policies),
            "token_type": self.type,
            "token_ttl": self.ttl,
            "token_num_uses": self.num_uses,
            "token_strictly_bind_ip": self.strictly_bind_ip,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl, "max_ttl": self.max_ttl,
            "explicit_max_ttl": self.explicit_max_ttl, "period": self.period,
            "policies": list(self.policies), "bound_cidrs": list(self.bound_cidrs),
            "num_uses": self.num_uses, "type": self.type,
            "no_default_policy": self.no_default_policy,
            "strictly_bind_ip": self.strictly_bind_ip,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> TokenParams:
        doc = doc or {}
        return cls(
            ttl=int(doc.get("ttl", 0)), max_ttl=int(doc.get("max_ttl", 0)),
            explicit_max_ttl=int(doc.get("explicit_max_ttl", 0)),
            period=int(doc.get("period", 0)),
            policies=[str(p) for p in doc.get("policies") or []],
            bound_cidrs=[str(c) for c in doc.get("bound_cidrs") or []],
            num_uses=int(doc.get("num_uses", 0)), type=str(doc.get("type") or "default"),
            no_default_policy=bool(doc.get("no_default_policy", False)),
            strictly_bind_ip=bool(doc.get("strictly_bind_ip", False)),
        )

    def apply(self, auth: Auth, remote_addr: str = "") -> None:
        """Vault's PopulateTokenAuth: the token this role or user issues. The token
        type stays "default" unless set: the login stage resolves it against the
        mount's tuned ``token_type``. ``strictly_bind_ip`` binds the token to the
        login's own address (``remote_addr``)."""
        auth.bound_cidrs = list(self.bound_cidrs)
        auth.explicit_max_ttl = self.explicit_max_ttl
        auth.max_ttl = self.max_ttl
        auth.no_default_policy = self.no_default_policy
        auth.period = self.period
        auth.policies = list(self.policies)
        auth.renewable = True
        auth.token_type = self.type
        auth.ttl = self.ttl
        auth.num_uses = self.num_uses
        if self.strictly_bind_ip:
            auth.bound_cidrs = parse_cidrs(remote_addr)


def _given(data: FieldData, deprecated: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
    """The token fields the request set, a deprecated name standing in for its
    successor when only it was given (Vault's UpgradeValue); and whether the
    policies came from the deprecated ``policies`` (parsed as Vault's ParsePolicies)."""
    given: dict[str, Any] = {name: data.get(name) for name in TOKEN_FIELDS if _has(data, name)}
    old_policies = False
    for old, new in deprecated.items():
        if new not in given and _has(data, old):
            given[new] = data.get(old)
            old_policies = old_policies or new == "token_policies"
    return given, old_policies


def _has(data: FieldData, name: str) -> bool:
    try:
        return data.has(name)
    except KeyError:
        return False


def upgrade(data: FieldData, old_key: str, new_key: str, old_value: Any,
            new_value: Any) -> Any:
    """Vault's UpgradeValue, for a method that stores a deprecated field beside its
    ``token_*`` successor (e.g. userpass's ``policies``): returns the deprecated
    field's new stored value. Only the old name given: it is the new value too
    (``update_from`` with ``deprecated`` did that); both given: the new one wins;
    only the new one: the old field is cleared (``None``: the caller's empty)."""
    if not _has(data, new_key):
        return new_value if _has(data, old_key) else old_value
    return new_value if _has(data, old_key) else None
