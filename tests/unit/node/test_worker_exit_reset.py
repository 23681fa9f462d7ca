"""A worker's exit makes every process of the node forget its cached storage reads.

A worker killed after its storage write but before that write's ring record leaves
the other processes unaware of it; the arbiter's ``child_exit`` hook publishes a
RESET so no process keeps serving the value the dead worker replaced.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from strongroom.config import parse_config
from strongroom.physical.chain import build_chain
from strongroom.serve import StrongroomServer


def test_a_worker_exit_drops_every_cached_read(tmp_path: Path) -> None:
    config = parse_config(
        f'storage "file" {{\n  path = "{tmp_path}/data"\n}}\n'
        'listener "tcp" {\n  address = "127.0.0.1:18299"\n  tls_disable = true\n}\n'
        "disable_mlock = true\nworkers = 2\n")
    server = StrongroomServer(config)
    survivor = build_chain(config, server._changes)  # another worker's storage stack
    dead = build_chain(config, server._changes)
    assert survivor.cache is not None, "file storage of one node is cached"
    survivor.top.put("logical/x/k", b"old")
    assert survivor.top.get("logical/x/k") == b"old"  # now cached

    # The dying worker's write reaches the disk, its ring record never does.
    dead.physical.put("logical/x/k", b"new")
    assert survivor.top.get("logical/x/k") == b"old"  # the gap this hook closes

    server._child_exit(None, SimpleNamespace(pid=424242))
    assert survivor.top.get("logical/x/k") == b"new"
