"""The ``strongroom`` command-line client, modelled on the ``vault`` CLI.

It talks to a server only through the Vault-compatible HTTP API; see
:mod:`strongroom.cli.main` for the dispatcher and command registry.
"""
