"""The method's ``config`` entry (Vault's ``ldaputil.ConfigEntry`` plus token fields)."""

from __future__ import annotations

import json
import ssl
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cryptography import x509

from strongroom.auth.tokenutil import TokenParams
from strongroom.framework.fields import Field, FieldData, FieldType

DEFAULT_GROUP_FILTER = "(|(memberUid={{.Username}})(member={{.UserDN}})(uniqueMember={{.UserDN}}))"
DEFAULT_USER_FILTER = "({{.UserAttr}}={{.Username}})"

_S, _B = Field(FieldType.STRING), Field(FieldType.BOOL)
CONFIG_FIELDS: dict[str, Field] = {
    "url": Field(FieldType.STRING, "ldap://127.0.0.1"), "userdn": _S, "binddn": _S,
    "bindpass": _S, "groupdn": _S, "groupfilter": Field(FieldType.STRING, DEFAULT_GROUP_FILTER),
    "groupattr": Field(FieldType.STRING, "cn"),
    "userfilter": Field(FieldType.STRING, DEFAULT_USER_FILTER), "upndomain": _S,
    "username_as_alias": _B, "userattr": Field(FieldType.STRING, "cn"), "certificate": _S,
    "client_tls_cert": _S, "client_tls_key": _S, "discoverdn": _B, "insecure_tls": _B,
    "starttls": _B, "tls_min_version": Field(FieldType.STRING, "tls12"),
    "tls_max_version": Field(FieldType.STRING, "tls12"),
    "deny_null_bind": Field(FieldType.BOOL, True), "case_sensitive_names": _B,
    "use_token_groups": _B, "use_pre111_group_cn_behavior": _B,
    "anonymous_group_search": _B,
    "request_timeout": Field(FieldType.DURATION, 90),
    "connection_timeout": Field(FieldType.DURATION, 30),
    "dereference_aliases": Field(FieldType.STRING, "never"),
    "max_page_size": Field(FieldType.INT, 0),
}
# What a config read shows (Vault's PasswordlessMap): never bindpass nor the client key.
_SHOWN = ("url", "userdn", "groupdn", "groupfilter", "groupattr", "userfilter", "upndomain",
          "userattr", "certificate", "insecure_tls", "starttls", "binddn", "deny_null_bind",
          "discoverdn", "tls_min_version", "tls_max_version", "use_token_groups",
          "anonymous_group_search", "request_timeout", "connection_timeout",
          "username_as_alias", "dereference_aliases", "max_page_size",
          "case_sensitive_names", "use_pre111_group_cn_behavior")
_LOWERED = ("url", "userattr")


class ConfigError(ValueError):
    """A config value Vault refuses; the message is Vault's."""


@dataclass
class LdapConfig:
    url: str = "ldap://127.0.0.1"
    userdn: str = ""
    binddn: str = ""
    bindpass: str = field(default="", repr=False)
    groupdn: str = ""
    groupfilter: str = DEFAULT_GROUP_FILTER
    groupattr: str = "cn"
    userfilter: str = DEFAULT_USER_FILTER
    upndomain: str = ""
    username_as_alias: bool = False
    userattr: str = "cn"
    certificate: str = ""
    client_tls_cert: str = ""
    client_tls_key: str = field(default="", repr=False)
    discoverdn: bool = False
    insecure_tls: bool = False
    starttls: bool = False
    tls_min_version: str = "tls12"
    tls_max_version: str = "tls12"
    deny_null_bind: bool = True
    # A new config is case-insensitive and uses the post-1.1.1 group CN rule (Vault
    # sets both when it first writes one).
    case_sensitive_names: bool = False
    use_token_groups: bool = False
    use_pre111_group_cn_behavior: bool = False
    anonymous_group_search: bool = False
    request_timeout: int = 90
    connection_timeout: int = 30
    dereference_aliases: str = "never"
    max_page_size: int = 0
    token: TokenParams = field(default_factory=TokenParams)

    # -- storage ---------------------------------------------------------------------

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["token"] = self.token.to_json()
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> LdapConfig:
        doc = json.loads(raw)
        known = {f.name for f in fields(cls)} - {"token"}
        cfg = cls(**{k: v for k, v in doc.items() if k in known})
        cfg.token = TokenParams.from_json(doc.get("token") or {})
        return cfg

    # -- the API ---------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _SHOWN}
        data.update(self.token.to_data())
        return data

    def update_from(self, data: FieldData, create: bool) -> None:
        """Vault's NewConfigEntry: a field given, or every field on first write."""
        from .client import check_template  # the template rules live with rendering

        for name in CONFIG_FIELDS:
            if not (create or data.has(name)) or name == "use_pre111_group_cn_behavior":
                continue
            value = data.get(name)
            if name in _LOWERED:
                value = str(value).lower()
            if name in ("userfilter", "groupfilter") and value:
                try:
                    check_template(value)
                except ValueError as exc:
                    raise ConfigError(f"invalid {name}: {exc}") from None
            if name == "certificate" and value:
                _check_certificate(value)
            setattr(self, name, value)
        if data.has("use_pre111_group_cn_behavior"):
            self.use_pre111_group_cn_behavior = bool(data.get("use_pre111_group_cn_behavior"))
        if self.client_tls_cert and self.client_tls_key:
            _check_pair(self.client_tls_cert, self.client_tls_key)
        elif self.client_tls_cert or self.client_tls_key:
            raise ConfigError("both client_tls_cert and client_tls_key must be set")
        for name in ("tls_min_version", "tls_max_version"):
            if (create or data.has(name)) and getattr(self, name) not in (
                    "tls10", "tls11", "tls12", "tls13"):
                raise ConfigError(f"invalid '{name}'")
        # Vault compares the names as strings ("tls10" < "tls12"), which orders them.
        if self.tls_max_version < self.tls_min_version:
            raise ConfigError("'tls_max_version' must be greater than or equal to "
                              "'tls_min_version'")


def _check_certificate(pem: str) -> None:
    text = pem.strip()
    if not text.startswith("-----BEGIN CERTIFICATE-----"):
        raise ConfigError("failed to parse server tls cert: failed to decode PEM block in "
                          "the certificate")
    try:
        x509.load_pem_x509_certificate(text.encode())
    except ValueError as exc:
        raise ConfigError(f"failed to parse server tls cert: failed to parse certificate "
                          f"{exc}") from None


def _check_pair(cert: str, key: str) -> None:
    from .client import load_client_pair

    try:
        load_client_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"failed to parse client X509 key pair: {exc}") from None
