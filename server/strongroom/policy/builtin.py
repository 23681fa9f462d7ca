"""Built-in policies: ``root``, ``default`` and ``response-wrapping``.

The ``default`` text grants what Vault Community Edition's built-in ``default``
policy grants, path for path; the comments are ours. Like Vault, the store
should write it once at setup and never overwrite an operator's edits.
"""

from __future__ import annotations

from strongroom.policy.model import (
    DEFAULT_POLICY_NAME,
    RESPONSE_WRAPPING_POLICY_NAME,
    Policy,
)
from strongroom.policy.parse import parse_policy

DEFAULT_POLICY_HCL = """\
# Built-in "default" policy: what every token may do to and about itself.
# It may be edited; it may not be deleted.

# Token self-service: inspect, renew and revoke the calling token.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}
path "auth/token/renew-self" {
    capabilities = ["update"]
}
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Ask which capabilities the calling token has on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Read the calling token's own identity entity (applies only to tokens
# with an entity; the placeholders are filled from it).
path "identity/entity/id/{{identity.entity.id}}" {
    capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
    capabilities = ["read"]
}

# The UI's view of the calling token's merged policies.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Renew a lease named in the request body (old and new paths), and look one up.
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# The token's private cubbyhole.
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Response wrapping: wrap data, inspect and unwrap wrapping tokens.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Hashing helper.
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Check on a control group request whose accessor the caller holds.
path "sys/control-group/request" {
    capabilities = ["update"]
}

# The authorization endpoint of any OIDC provider.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"""

# Built-in "response-wrapping" policy, held only by wrapping tokens: enough to store
# and fetch the wrapped response, to unwrap it, and to revoke itself. The text is
# OpenBao's, character for character: sys/policy reads return it.
RESPONSE_WRAPPING_POLICY_HCL = """
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

path "auth/token/revoke-self" {
    capabilities = ["update"]
}
"""

ROOT_POLICY = Policy.root()
DEFAULT_POLICY = parse_policy(DEFAULT_POLICY_NAME, DEFAULT_POLICY_HCL)
RESPONSE_WRAPPING_POLICY = parse_policy(RESPONSE_WRAPPING_POLICY_NAME, RESPONSE_WRAPPING_POLICY_HCL)
