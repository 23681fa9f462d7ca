"""Issue 15 review (attacker side) on a real node with several workers: the login guard
under concurrency (findings F5, F2 in /work/helpers/i15-review.md), the backoff's
wait never holding a worker, and a silent directory holding only LDAP logins (F6).

Each test uses its own loopback source addresses (127.0.4.x...) as its clients.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from strongroom.auth.login_guard import FREE_FAILURES, window
from tests.support.servers import ServerProcess, file_config, strongroom_server

WORKERS = 3
USERS = ("victim", "bystander", "target")


def login(url: str, user: str, password: str, source: str) -> tuple[int, Any, float]:
    """A login on a fresh connection from ``source``: status, body, seconds."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120, source_address=(source, 0))
    start = time.monotonic()
    try:
        conn.request("POST", f"/v1/auth/userpass/login/{user}",
                     body=json.dumps({"password": password}),
                     headers={"Content-Type": "application/json", "Connection": "close"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(raw) if raw else None, time.monotonic() - start


def concurrently(calls: list[tuple[str, str, str]], url: str) -> list[tuple[int, Any, float]]:
    """``(user, password, source)`` logins all at once; answers in the same order."""
    answers: list[Any] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def one(i: int) -> None:
        gate.wait()
        answers[i] = login(url, *calls[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("review_i15")
    with strongroom_server(workdir, file_config(workers=WORKERS)) as srv:
        srv.wait_for_workers(WORKERS)
        init = requests.put(srv.url + "/v1/sys/init",
                            json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
        requests.put(srv.url + "/v1/sys/unseal", json={"key": init["keys"][0]}, timeout=30)
        token = {"X-Vault-Token": init["root_token"]}
        srv.root_token = init["root_token"]  # type: ignore[attr-defined]
        assert requests.post(srv.url + "/v1/sys/auth/userpass", json={"type": "userpass"},
                             headers=token, timeout=30).status_code == 204
        for user in USERS:
            resp = requests.post(srv.url + f"/v1/auth/userpass/users/{user}",
                                 json={"password": f"pw-{user}"}, headers=token, timeout=30)
            assert resp.status_code == 204, resp.text
        yield srv


def test_f5_one_guess_per_window_whatever_the_concurrency(node: ServerProcess) -> None:
    """F5: the window check and the failure record are a bcrypt apart; at a window's
    end every thread of every worker (2 x 3 here) verified one guess each: a burst of
    12 recorded ~6 failures (answers waiting 1, 2, 4, 8, 16, 32 s). Now one guess runs
    at a time once the free failures are spent: the rest wait the next window only."""
    for i in range(FREE_FAILURES):
        status, _, _ = login(node.url, "victim", f"guess{i}", f"127.0.4.{i + 1}")
        assert status == 400
    burst = [("victim", f"burst{i}", f"127.0.5.{i + 1}") for i in range(12)]
    answers = concurrently(burst, node.url)
    assert {(status, tuple(body["errors"])) for status, body, _ in answers} == {
        (400, ("invalid username or password",))}
    took = sorted(seconds for _, _, seconds in answers)
    # One verified guess: its failure earned window(FREE+1); the others were refused
    # with that window. Several verified guesses earn doubling windows (before the
    # fix: 1, 2, 4, 8, 16 and 32 s). The bound leaves room for a loaded machine.
    assert took[-2] < window(FREE_FAILURES + 4), took


def test_f2_targeted_lockout_spares_a_client_that_logged_in_before(node: ServerProcess
                                                                   ) -> None:
    """F2: the per-principal window refused the right password from any client, so one
    wrong guess per window from anywhere kept a known user locked out. A client that
    logged in as the user before is now spared the user's window (a client never seen
    with that user is still refused while it lasts: tests/unit/auth/
    test_login_guard_table.py, where the clock is the test's)."""
    assert login(node.url, "target", "pw-target", "127.0.7.1")[0] == 200
    for i in range(FREE_FAILURES + 2):
        assert login(node.url, "target", f"guess{i}", f"127.0.6.{i + 1}")[0] == 400
    # The next wrong guess opens a window of window(FREE+3) s once verified; the
    # attacker's connection waits it out, the account's owner tries meanwhile.
    attacker = threading.Thread(target=login, args=(node.url, "target", "again", "127.0.6.99"))
    attacker.start()
    time.sleep(1.0)  # the attacker's bcrypt done: its window (4 s) has begun
    owner, _, _ = login(node.url, "target", "pw-target", "127.0.7.1")
    attacker.join()
    assert owner == 200  # before: refused with "invalid username or password"


def test_backoff_waits_hold_no_worker_thread(node: ServerProcess) -> None:
    """30 refused attempts waiting out a client's window (4 s) at once, on 3 workers of
    2 threads: if the wait slept on a thread, another client's login would queue behind
    them for seconds; it is awaited, so the login is answered at once."""
    client = "127.0.8.1"
    baseline = login(node.url, "bystander", "pw-bystander", "127.0.8.3")[2]
    for i in range(FREE_FAILURES + 2):
        # Distinct users: only the client's count grows (answers wait 1 s, then 2 s).
        assert login(node.url, f"nobody{i}", "x", client)[0] == 400
    # The next failure opens a 4 s window once verified (its answer waits it out).
    opener = threading.Thread(target=login, args=(node.url, "nobody-next", "x", client))
    opener.start()
    time.sleep(1.0)  # its bcrypt done: the window has begun
    waiting = threading.Thread(target=concurrently, args=(
        [(f"nobody{i}", "x", client) for i in range(30)], node.url))
    waiting.start()
    time.sleep(0.5)  # the 30 have been refused and are waiting
    status, _, seconds = login(node.url, "bystander", "pw-bystander", "127.0.8.2")
    waiting.join()
    opener.join()
    assert status == 200
    # A wait slept on threads would queue the login behind 30 x ~3 s over 6 threads.
    assert seconds < 2 * baseline + 2.0, (seconds, baseline)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose connections the kernel completes and nobody ever answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def test_f6_a_silent_directory_holds_only_ldap_logins(node: ServerProcess,
                                                       black_hole: int) -> None:
    """F6: auth paths run on a worker's small thread pool (2 threads); a login waiting
    on a silent directory holds its thread for request_timeout, so a dozen
    unauthenticated LDAP logins held every thread of the node and every other login
    and token renewal queued behind them (renew-self answered after 58 s with
    request_timeout=20s; with the default 90 s, minutes). LDAP mounts now have
    threads of their own."""
    root = {"X-Vault-Token": node.root_token}  # type: ignore[attr-defined]
    assert requests.post(node.url + "/v1/sys/auth/ldap-f6", json={"type": "ldap"},
                         headers=root, timeout=30).status_code == 204
    resp = requests.post(node.url + "/v1/auth/ldap-f6/config", headers=root, timeout=30,
                         json={"url": f"ldap://127.0.0.1:{black_hole}", "userattr": "uid",
                               "userdn": "ou=people,dc=example,dc=org",
                               "request_timeout": "8s"})
    assert resp.status_code == 204, resp.text
    status, body, baseline = login(node.url, "bystander", "pw-bystander", "127.0.9.1")
    assert status == 200
    token = body["auth"]["client_token"]
    host, port = node.url.removeprefix("http://").split(":")

    def ldap_login(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120,
                                          source_address=(f"127.0.10.{i + 1}", 0))
        try:
            conn.request("POST", f"/v1/auth/ldap-f6/login/u{i}",
                         body=json.dumps({"password": "p"}),
                         headers={"Content-Type": "application/json"})
            conn.getresponse().read()
        finally:
            conn.close()

    stuck = [threading.Thread(target=ldap_login, args=(i,)) for i in range(8 * WORKERS)]
    for thread in stuck:
        thread.start()
    time.sleep(2.0)  # the LDAP logins are on their threads, waiting on the directory
    renew_took = []
    for _ in range(3):  # fresh connections: whichever workers take them
        started = time.monotonic()
        renew = requests.post(node.url + "/v1/auth/token/renew-self", json={}, timeout=120,
                              headers={"X-Vault-Token": token, "Connection": "close"})
        renew_took.append(time.monotonic() - started)
        assert renew.status_code == 200
    status, _, login_took = login(node.url, "bystander", "pw-bystander", "127.0.9.2")
    for thread in stuck:
        thread.join()
    assert status == 200
    # Before: each queued behind the directory's request_timeout (8 s) or more.
    bound = 2 * baseline + 3.0
    assert max(renew_took) < bound and login_took < bound, (renew_took, login_took, baseline)
