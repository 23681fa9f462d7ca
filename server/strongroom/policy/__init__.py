"""Vault-compatible ACL policies: parsing, merging and checking; no storage.

Typical use::

    policies = [DEFAULT_POLICY, parse_policy("dev", text)]
    acl = ACL(policies)                       # build once per token/policy set
    decision = acl.allowed_operation(Operation.READ, "secret/data/app", data)
"""

from strongroom.policy.acl import ACL, Decision
from strongroom.policy.builtin import (
    DEFAULT_POLICY,
    DEFAULT_POLICY_HCL,
    RESPONSE_WRAPPING_POLICY,
    RESPONSE_WRAPPING_POLICY_HCL,
    ROOT_POLICY,
)
from strongroom.policy.model import (
    CAPABILITIES,
    DEFAULT_POLICY_NAME,
    IMMUTABLE_POLICY_NAMES,
    RESPONSE_WRAPPING_POLICY_NAME,
    ROOT_POLICY_NAME,
    UNDELETABLE_POLICY_NAMES,
    PathRule,
    Policy,
    PolicyError,
)
from strongroom.policy.parse import decode_policy_body, normalize_policy_name, parse_policy

__all__ = [
    "ACL",
    "CAPABILITIES",
    "DEFAULT_POLICY",
    "DEFAULT_POLICY_HCL",
    "DEFAULT_POLICY_NAME",
    "IMMUTABLE_POLICY_NAMES",
    "RESPONSE_WRAPPING_POLICY",
    "RESPONSE_WRAPPING_POLICY_HCL",
    "RESPONSE_WRAPPING_POLICY_NAME",
    "ROOT_POLICY",
    "ROOT_POLICY_NAME",
    "UNDELETABLE_POLICY_NAMES",
    "Decision",
    "PathRule",
    "Policy",
    "PolicyError",
    "decode_policy_body",
    "normalize_policy_name",
    "parse_policy",
]
