"""After sys/seal no server process still holds key material in its memory (issue #9).

A real node (file storage, several gunicorn workers) is initialised with known
shares, unsealed, rotated and used through every worker, then sealed. The test
rebuilds the root key from the shares and decrypts the keyring from the data
directory to learn every key, then reads /proc/PID/mem of the owner (the key
holder), of the gunicorn arbiter and of every worker and looks for each key raw,
in hex and in base64 (standard and URL-safe, at each of the three alignments
base64 can have inside a longer string), and in the owner the unseal shares and
the root token too. The owner's background work runs every 0.2 s here, so its
own Core holds the keyring while unsealed and must drop it on seal too. The
arbiter, which forks the workers, must hold no key even while unsealed. The
token store's HMAC salt (a barrier entry the test decrypts with that keyring)
and the batch-token key derived from it are keys too: whoever holds them
computes token storage keys and forges batch tokens that work after the next
unseal. Nothing may be found.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from strongroom.barrier.barrier import AESGCMBarrier
from strongroom.core.bootstrap import TOKEN_STORE_PREFIX
from strongroom.physical.file import FileBackend
from strongroom.seal import shamir
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
# Seconds the processes get to drop their keys after the seal answered: idle
# workers are told at once, but they are separate processes scheduled by the kernel.
WIPE_BUDGET = 10.0
_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    monkeypatch.setenv("STRONGROOM_MOUNT_PERIODIC_INTERVAL", "0.2")
    with strongroom_server(tmp_path, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        yield srv


def encodings(key: bytes) -> dict[str, bytes]:
    """Every form of ``key`` worth looking for, each at least 32 bytes long."""
    forms = {"raw": key, "hex": key.hex().encode(), "HEX": key.hex().upper().encode()}
    for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
        for offset in range(3):
            # Inside a longer string the key may start at any byte offset modulo 3;
            # keep only the base64 groups made of key bytes alone.
            encoded = encode(b"\0" * offset + key)
            first = -(-offset // 3)  # first group that starts at or after the key
            last = (offset + len(key)) // 3  # groups that end within the key
            forms[f"{name}+{offset}"] = encoded[first * 4:last * 4]
    return forms


def readable_regions(pid: int) -> Iterator[tuple[int, int, str]]:
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps:
        for line in maps:
            match = _MAPS_LINE.match(line)
            if match is None:
                continue
            start, end, perms, name = match.groups()
            # Read-only file mappings are library code and data, never written at run time.
            if perms[0] != "r" or name in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            if "w" not in perms and name.startswith("/"):
                continue
            yield int(start, 16), int(end, 16), name


def scan(pid: int, needles: dict[str, bytes]) -> list[str]:
    """Names of the needles found anywhere in the writable memory of ``pid``."""
    found: list[str] = []
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, name in readable_regions(pid):
            try:
                mem.seek(start)
                blob = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue  # unmapped since /proc/PID/maps was read, or a guard page
            for label, needle in needles.items():
                if needle in blob:
                    found.append(f"{label} in {name or 'anon'}@{start:x}")
    return found


def every_worker_serves(server: ServerProcess, path: str, token: str) -> set[int]:
    """Send ``path`` on fresh connections until every worker has answered it with 200."""
    workers = server.wait_for_workers(WORKERS)
    served: set[int] = set()
    deadline = time.monotonic() + 30
    while served != workers:
        assert time.monotonic() < deadline, f"workers never served: {workers - served}"
        resp = requests.get(server.url + path, timeout=5,
                            headers={"X-Vault-Token": token, "Connection": "close"})
        assert resp.status_code == 200, resp.text
        served.add(int(resp.headers["X-Strongroom-Worker"]))
    return workers


def test_no_key_in_any_process_memory_after_seal(server: ServerProcess, tmp_path: Path) -> None:
    url = server.url + "/v1/"
    init = requests.put(url + "sys/init", json={"secret_shares": 3, "secret_threshold": 2},
                        timeout=10).json()
    shares: list[str] = init["keys"]
    token: str = init["root_token"]
    for share in shares[:2]:
        assert requests.put(url + "sys/unseal", json={"key": share}, timeout=10,
                            headers={"Connection": "close"}).status_code == 200
    headers = {"X-Vault-Token": token}
    assert requests.post(url + "sys/mounts/secret", json={"type": "kv-v2"}, headers=headers,
                         timeout=5).status_code == 204
    # A second term, so the keyring has an old key and an active one.
    assert requests.put(url + "sys/rotate", headers=headers, timeout=5).status_code == 204
    for i in range(5):
        assert requests.post(url + f"secret/data/s{i}", json={"data": {"v": i}},
                             headers=headers, timeout=5).status_code == 200
    workers = every_worker_serves(server, "/v1/secret/data/s0", token)
    # A batch token used in every worker: each derives the batch key and opens it.
    batch = requests.post(url + "auth/token/create", headers=headers, timeout=5,
                          json={"type": "batch", "ttl": "1h", "policies": ["default"]})
    assert batch.status_code == 200, batch.text
    every_worker_serves(server, "/v1/auth/token/lookup-self", batch.json()["auth"]["client_token"])

    root_key = shamir.combine([bytes.fromhex(s) for s in shares[:2]])
    ring = AESGCMBarrier(FileBackend(tmp_path / "data")).load_keyring(root_key)
    assert len(ring.terms) == 2
    needles = {f"root key {form}": value for form, value in encodings(bytes(root_key)).items()}
    opened = AESGCMBarrier(FileBackend(tmp_path / "data"))
    opened.install(ring.copy())
    salt = opened.get(TOKEN_STORE_PREFIX + "salt")
    assert salt is not None and len(salt) == 32
    batch_key = hmac.new(salt, b"batch-token-key", hashlib.sha256).digest()
    needles.update({f"token salt {form}": value for form, value in encodings(salt).items()})
    needles.update({f"batch key {form}": value for form, value in encodings(batch_key).items()})
    for term in ring.terms:
        needles.update({f"term {term.term} key {form}": value
                        for form, value in encodings(bytes(term.key)).items()})
    # The unseal shares too, in the owner, which received them as text (the init
    # answer, unseal requests); threshold of them rebuild the root key. (A worker's
    # HTTP layer may still hold the text of a request body it parsed: not checked.)
    owner_needles = dict(needles)
    # And the root token, which the owner made at init and has no use for since.
    owner_needles["root token"] = token.encode()
    for i, share in enumerate(shares):
        owner_needles.update({f"share {i} {form}": value
                              for form, value in encodings(bytes.fromhex(share)).items()})
    arbiter = server.arbiter_pid()
    assert arbiter is not None
    pids = {"owner": server.proc.pid, "arbiter": arbiter,
            **{f"worker {pid}": pid for pid in workers}}

    # Sanity check of the scanner: while unsealed, the keys are there to be found.
    assert scan(server.proc.pid, {"term 2 key raw": bytes(ring.terms[1].key)})
    assert all(scan(pid, {"term 2 key raw": bytes(ring.terms[1].key)}) for pid in workers)
    assert all(scan(pid, {"token salt raw": salt}) for pid in workers)
    # The arbiter forked every worker and never held a key, even unsealed.
    assert scan(arbiter, owner_needles) == []

    assert requests.put(url + "sys/seal", headers=headers, timeout=5).status_code == 204
    # No request reaches the workers after the seal: idle ones must drop their keys too.
    deadline = time.monotonic() + WIPE_BUDGET
    while True:
        leftovers = {who: hits for who, pid in pids.items()
                     if (hits := scan(pid, owner_needles if who == "owner" else needles))}
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert leftovers == {}
    assert server.worker_pids() == workers, "a worker died: its memory was not checked"
