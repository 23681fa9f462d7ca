"""Strongroom: a secrets-management server speaking HashiCorp Vault's HTTP API."""

__version__ = "0.1.0"
BUILD_DATE = "2026-11-28T00:00:00Z"
