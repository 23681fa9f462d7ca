"""`strongroom server`: run a node from HCL/JSON config files, or a dev node in memory.

-config may be given several times; each names a file, or a directory whose *.hcl and
*.json files are read in name order. Later files override top-level settings, listener
stanzas accumulate, and storage, ha_storage and seal may each be defined in one file only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable

from strongroom.config import ConfigError, dev_config, load_config
from strongroom.node.coordinator import LocalCoordinator
from strongroom.serve import serve

_DEV_BANNER = """\
WARNING! dev mode is enabled! In this mode, Strongroom runs entirely in-memory
and starts unsealed with a single unseal key. The root token is already
authenticated to the CLI, so you can immediately begin using Strongroom.

You may need to set the following environment variables:

    $ export VAULT_ADDR='http://{addr}'

The unseal key and root token are displayed below in case you want to
seal/unseal the server or re-authenticate.

Unseal Key: {unseal_key}
Root Token: {root_token}

Development mode should NOT be used in production installations!
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="strongroom server", description=__doc__)
    p.add_argument(
        "-config", "--config", action="append", default=[], metavar="FILE_OR_DIR",
        help="config file, or directory of *.hcl/*.json files; repeat to merge several",
    )
    p.add_argument("-dev", "--dev", action="store_true")
    p.add_argument(
        "-dev-root-token-id", "--dev-root-token-id",
        default=os.environ.get("VAULT_DEV_ROOT_TOKEN_ID", ""),
    )
    p.add_argument(
        "-dev-listen-address", "--dev-listen-address",
        default=os.environ.get("VAULT_DEV_LISTEN_ADDRESS", "127.0.0.1:8200"),
    )
    p.add_argument("-log-level", "--log-level", default=None)
    return p


def _dev_prepare(root_token_id: str, address: str) -> Callable[[LocalCoordinator], None]:
    def prepare(coordinator: LocalCoordinator) -> None:
        result = coordinator.initialize(1, 1, root_token_id or None)
        coordinator.unseal(result["keys_base64"][0])
        sys.stdout.write(
            _DEV_BANNER.format(
                addr=address,
                unseal_key=result["keys_base64"][0],
                root_token=result["root_token"],
            )
        )
        sys.stdout.flush()

    return prepare


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.dev:
        if args.config:
            print("Error: -dev and -config cannot be combined yet", file=sys.stderr)
            return 1
        config = dev_config(args.dev_listen_address)
        token = args.dev_root_token_id or "hvs." + secrets.token_urlsafe(18)
        return serve(config, prepare=_dev_prepare(token, args.dev_listen_address), dev=True)
    if not args.config:
        print("Error: at least one -config=FILE or -config=DIR is required (or -dev)",
              file=sys.stderr)
        return 1
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"Error loading configuration: {exc}", file=sys.stderr)
        return 1
    return serve(config)
