"""Seal: the root key's protection (Shamir unseal keys, auto-unseal)."""
