"""A wrapping token is single use across every worker of a file-storage node.

Many threads race to unwrap (or rewrap) one token through a 2-worker server,
each on its own connection so the kernel spreads them over both workers:
exactly one may get the wrapped response (or a new token); every other one is
told the token is not valid, and nothing is left behind that unwraps again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 2
RACERS = 16
# The unguarded race is narrow (a lookup, a read and a delete): before the fix about one
# round in ten let two racers through, so enough rounds make a regression show.
ROUNDS = 40
INVALID = ["wrapping token is not valid or does not exist"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    workdir: Path = tmp_path_factory.mktemp("wrapping-multiworker")
    with strongroom_server(workdir, file_config(workers=WORKERS)) as server:
        server.wait_for_workers(WORKERS)
        init = requests.put(server.url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=10)
        assert init.status_code == 200, init.text
        doc = init.json()
        unsealed = requests.put(server.url + "/v1/sys/unseal", json={"key": doc["keys"][0]},
                                headers={"Connection": "close"}, timeout=10)
        assert unsealed.status_code == 200, unsealed.text
        _until_every_worker_serves(server, doc["root_token"])
        yield server, doc["root_token"]


def _until_every_worker_serves(server: ServerProcess, root: str) -> None:
    """Each worker learns of the unseal on its next request: wait until all have."""
    ready: set[str] = set()
    for _attempt in range(200):
        resp = requests.get(server.url + "/v1/auth/token/lookup-self", timeout=10,
                            headers={"X-Vault-Token": root, "Connection": "close"})
        if resp.status_code == 200:
            ready.add(resp.headers["X-Strongroom-Worker"])
        if len(ready) == WORKERS:
            return
    raise AssertionError(f"only workers {ready} came up unsealed")


def _post(url: str, token: str | None, body: dict[str, Any] | None = None,
          wrap_ttl: str | None = None) -> requests.Response:
    headers = {"Connection": "close"}  # a fresh connection: any worker may take it
    if token:
        headers["X-Vault-Token"] = token
    if wrap_ttl:
        headers["X-Vault-Wrap-TTL"] = wrap_ttl
    return requests.post(url, json=body, headers=headers, timeout=30)


def _wrap(server: ServerProcess, root: str, payload: dict[str, Any]) -> str:
    resp = _post(server.url + "/v1/sys/wrapping/wrap", root, payload, wrap_ttl="300")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["wrap_info"]["token"])


def _race(calls: Sequence[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run every call at once (released together by a barrier); their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def _workers(answers: list[requests.Response]) -> set[str]:
    return {a.headers.get("X-Strongroom-Worker", "") for a in answers}


def test_concurrent_unwraps_of_a_body_token_succeed_once(
        node: tuple[ServerProcess, str]) -> None:
    server, root = node
    url = server.url + "/v1/sys/wrapping/unwrap"
    seen: set[str] = set()
    for _round in range(ROUNDS):
        token = _wrap(server, root, {"secret": "only-once"})
        answers = _race([partial(_post, url, root, {"token": token})] * RACERS)
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1, [(a.status_code, a.text) for a in answers]
        assert won[0].json()["data"] == {"secret": "only-once"}
        lost = [a for a in answers if a.status_code != 200]
        assert {(a.status_code, tuple(a.json()["errors"])) for a in lost} == {
            (400, tuple(INVALID))}
        seen |= _workers(answers)
        assert _post(url, root, {"token": token}).status_code == 400
    assert len(seen) == WORKERS  # both workers really took part


def test_concurrent_rewraps_and_unwraps_leave_one_valid_token(
        node: tuple[ServerProcess, str]) -> None:
    server, root = node
    rewrap, unwrap = (server.url + "/v1/sys/wrapping/" + op for op in ("rewrap", "unwrap"))
    for _round in range(ROUNDS // 2):
        token = _wrap(server, root, {"secret": "moved"})
        calls = [partial(_post, u, root, {"token": token})
                 for u in [rewrap, unwrap] * (RACERS // 2)]
        answers = _race(calls)
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1, [(a.status_code, a.text) for a in answers]
        assert all(a.status_code == 400 and a.json()["errors"] == INVALID
                   for a in answers if a.status_code != 200)
        body = won[0].json()
        if body["wrap_info"] is not None:  # the rewrap won: its token is the one valid
            fresh = body["wrap_info"]["token"]
            out = _post(unwrap, root, {"token": fresh})
            assert out.status_code == 200 and out.json()["data"] == {"secret": "moved"}
        else:
            assert body["data"] == {"secret": "moved"}
        assert _post(unwrap, root, {"token": token}).status_code == 400


def test_concurrent_self_unwraps_succeed_once(node: tuple[ServerProcess, str]) -> None:
    """The wrapping token as X-Vault-Token: its single use is the single unwrap."""
    server, root = node
    url = server.url + "/v1/sys/wrapping/unwrap"
    for _round in range(ROUNDS // 4):
        token = _wrap(server, root, {"secret": "self"})
        answers = _race([partial(_post, url, token)] * RACERS)
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1 and won[0].json()["data"] == {"secret": "self"}
        # As OpenBao: a spent wrapping token is "not valid", not a permission problem.
        assert all(a.status_code == 400 and a.json()["errors"] == INVALID
                   for a in answers if a.status_code != 200), [(a.status_code, a.text)
                                                                for a in answers]
