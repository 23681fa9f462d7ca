"""The ldap auth method on a real node (file storage, several gunicorn workers) against a
real slapd (tests/support/slapd.py), through hvac's ``auth.ldap``.

- a login's token carries the directory groups' policies, and only them: a
  least-privilege policy reads one secret and nothing else;
- a config or group change made through one worker is what every worker logs in with;
- an unknown user and a wrong password are indistinguishable: the same status and
  text, and the same directory operations with the same results (read from slapd's
  own log: service bind, search, a bind refused with invalidCredentials), so the same
  timing shape;
- passwords appear in no log: neither the server's nor the audit device's;
- a login waiting on a directory that does not answer holds neither its worker's
  event loop (other requests are answered meanwhile) nor the client beyond
  ``request_timeout``.
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.support.servers import (
    ServerProcess,
    file_config,
    strongroom_dev_server,
    strongroom_server,
)
from tests.support.slapd import (
    ADMIN_DN,
    ADMIN_PW,
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PW,
    Slapd,
    password,
    running_slapd,
)

WORKERS = 2
BIND_FAILED = ["ldap operation failed: failed to bind as user"]
APP_POLICY = 'path "secret/data/app" { capabilities = ["read"] }'


class _FromAddress(HTTPAdapter):
    """Connections from one loopback source address: the login guard counts failures
    per client, and some tests here fail on purpose."""

    def __init__(self, address: str) -> None:
        self._source = (address, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


_addresses = iter(range(2, 250))


def session_from_new_address() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(f"127.0.1.{next(_addresses)}"))
    return session


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    workdir = tmp_path_factory.mktemp("node")
    with strongroom_server(workdir, file_config(workers=WORKERS)) as server:
        init = requests.put(server.url + "/v1/sys/init", timeout=30,
                            json={"secret_shares": 1, "secret_threshold": 1}).json()
        reply = requests.put(server.url + "/v1/sys/unseal", timeout=30,
                             json={"key": init["keys_base64"][0]})
        assert reply.json()["sealed"] is False
        server.wait_for_workers(WORKERS)
        yield server, init["root_token"]


@pytest.fixture(scope="module")
def root(node: tuple[ServerProcess, str], slapd: Slapd) -> hvac.Client:
    server, token = node
    client = hvac.Client(url=server.url, token=token)
    client.sys.enable_audit_device("file", options={
        "file_path": str(server.workdir / "audit.log")})
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret("app", {"k": "v"}, mount_point="secret")
    client.secrets.kv.v2.create_or_update_secret("other", {"k": "v"}, mount_point="secret")
    client.sys.create_or_update_policy("app-read", APP_POLICY)
    client.sys.enable_auth_method("ldap")
    client.auth.ldap.configure(url=slapd.ldap_url, binddn=SERVICE_DN, bindpass=SERVICE_PW,
                               userdn=PEOPLE, userattr="uid", groupdn=GROUPS,
                               starttls=True, certificate=slapd.ca_pem)
    client.auth.ldap.create_or_update_group("admins", ["app-read"])
    return client


def login(url: str, user: str, pw: str) -> dict[str, Any]:
    client = hvac.Client(url=url, session=session_from_new_address())
    return client.auth.ldap.login(user, pw, use_token=False)  # type: ignore[no-any-return]


def test_group_policy_is_all_the_token_gets(node: tuple[ServerProcess, str],
                                            root: hvac.Client) -> None:
    server, _ = node
    auth = login(server.url, "alice", password("alice"))["auth"]
    assert auth["policies"] == ["app-read", "default"] and auth["entity_id"]
    alice = hvac.Client(url=server.url, token=auth["client_token"])
    assert alice.secrets.kv.v2.read_secret_version(
        "app", mount_point="secret", raise_on_deleted_version=True)["data"]["data"] == {"k": "v"}
    with pytest.raises(hvac.exceptions.Forbidden):
        alice.secrets.kv.v2.read_secret_version("other", mount_point="secret",
                                                raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        alice.secrets.kv.v2.create_or_update_secret("app", {"k": "x"}, mount_point="secret")
    me = alice.auth.token.lookup_self()["data"]
    assert me["meta"] == {"username": "alice"} and me["display_name"] == "ldap-alice"
    # One entity per directory user, the same on every login (the alias: uid's value).
    again = login(server.url, "Alice", password("alice"))["auth"]
    assert me["entity_id"] == auth["entity_id"] == again["entity_id"]
    # bob is in no group mapped to a policy: default only, the secret is out of reach.
    bob = hvac.Client(url=server.url, token=login(server.url, "bob", password("bob"))[
        "auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        bob.secrets.kv.v2.read_secret_version("app", mount_point="secret",
                                              raise_on_deleted_version=True)


def _policies_per_worker(url: str, user: str) -> dict[int, list[str]]:
    """Log in on fresh connections until every worker has answered once."""
    seen: dict[int, list[str]] = {}
    deadline = time.monotonic() + 30
    while len(seen) < WORKERS:
        assert time.monotonic() < deadline, seen
        resp = requests.post(f"{url}/v1/auth/ldap/login/{user}", timeout=30,
                             json={"password": password(user)},
                             headers={"Connection": "close"})
        worker = int(resp.headers["X-Strongroom-Worker"])
        seen[worker] = (resp.json()["auth"]["policies"] if resp.status_code == 200
                        else resp.json()["errors"])
    return seen


def test_every_worker_logs_in_with_the_latest_config(node: tuple[ServerProcess, str],
                                                    root: hvac.Client, slapd: Slapd) -> None:
    server, _ = node
    assert set(map(tuple, _policies_per_worker(server.url, "bob").values())) == {
        ("default",)}
    root.auth.ldap.create_or_update_group("devs", ["dev-pol"])
    assert set(map(tuple, _policies_per_worker(server.url, "bob").values())) == {
        ("default", "dev-pol")}
    # The config is cached per process: a change reaches every worker (invalidate).
    root.auth.ldap.configure(url=f"ldap://127.0.0.1:{_closed_port()}", connection_timeout=2)
    try:
        answers = _policies_per_worker(server.url, "bob")
        assert all("error connecting to host" in a[0] for a in answers.values()), answers
    finally:
        root.auth.ldap.configure(url=slapd.ldap_url)
    assert set(map(tuple, _policies_per_worker(server.url, "bob").values())) == {
        ("default", "dev-pol")}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_OP = re.compile(r"conn=(\d+) op=(\d+) (STARTTLS|BIND|SRCH|UNBIND)\b")
_RESULT = re.compile(r"conn=(\d+) op=(\d+) (?:SEARCH )?RESULT (?:tag=\d+|oid=\S*) err=(\d+)")


def directory_steps(log: str) -> list[list[str]]:
    """Per connection, in order: each operation's kind and result code (no DNs)."""
    steps: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for line in log.splitlines():
        if (m := _OP.search(line)) and (m[1], m[2]) not in seen:
            seen.add((m[1], m[2]))
            steps.setdefault(m[1], []).append(m[3])
        elif m := _RESULT.search(line):
            steps.setdefault(m[1], []).append(f"err={m[3]}")
    return list(steps.values())


def test_unknown_user_and_wrong_password_look_the_same(
        node: tuple[ServerProcess, str], root: hvac.Client, slapd: Slapd) -> None:
    """The issue's rule (and Vault's ldap text): no status, text or step difference."""
    server, _ = node
    log = slapd.workdir / "slapd.log"
    answers: dict[str, list[tuple[int, Any]]] = {"wrong": [], "unknown": []}
    seconds: dict[str, list[float]] = {"wrong": [], "unknown": []}
    steps: dict[str, list[list[str]]] = {"wrong": [], "unknown": []}
    # Three of each (the guard's free failures per user), interleaved, each from its
    # own address: neither kind meets a backoff the other does not.
    for _ in range(3):
        for kind, user in (("wrong", "carol"), ("unknown", "nobody")):
            mark = log.stat().st_size
            session = session_from_new_address()
            started = time.monotonic()
            resp = session.post(f"{server.url}/v1/auth/ldap/login/{user}",
                                json={"password": "not-the-password"}, timeout=30)
            seconds[kind].append(time.monotonic() - started)
            answers[kind].append((resp.status_code, resp.json()))
            _wait_for_unbind(log, mark)
            with log.open() as f:
                f.seek(mark)
                steps[kind].extend(directory_steps(f.read()))
    assert answers["wrong"] == answers["unknown"] == [(400, {"errors": BIND_FAILED})] * 3
    # Each login: StartTLS, service bind, search, the user's bind refused (49), unbind.
    expected = ["STARTTLS", "err=0", "BIND", "err=0", "SRCH", "err=0", "BIND", "err=49",
                "UNBIND"]
    assert steps["wrong"] == steps["unknown"] == [expected] * 3, steps
    # The same work takes the same time, give or take a busy machine's noise.
    wrong, unknown = statistics.median(seconds["wrong"]), statistics.median(seconds["unknown"])
    assert max(wrong, unknown) < 3 * min(wrong, unknown) + 0.05, seconds


def _wait_for_unbind(log: Path, mark: int) -> None:
    """slapd logs a connection's end after answering: wait for it (no sleep-and-hope)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with log.open() as f:
            f.seek(mark)
            if " closed" in f.read():
                return
        time.sleep(0.01)
    raise TimeoutError("slapd logged no closed connection")


def test_passwords_are_in_no_log(node: tuple[ServerProcess, str], root: hvac.Client) -> None:
    server, _ = node
    login(server.url, "alice", password("alice"))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        login(server.url, "alice", "wrong-secret-pw")
    audit = (server.workdir / "audit.log").read_text()
    assert "auth/ldap/login/alice" in audit  # the logins were audited...
    for text in (audit, (server.workdir / "server.log").read_text()):
        # ...with the passwords (and the service account's) only as HMACs.
        for secret in (password("alice"), "wrong-secret-pw", SERVICE_PW):
            assert secret not in text


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose connections the kernel completes and nobody ever answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_a_silent_directory_holds_neither_the_loop_nor_the_client(
        tmp_path: Path, black_hole: int) -> None:
    # The dev server has one worker: every request below meets the same event loop.
    with strongroom_dev_server(tmp_path) as server:
        root = hvac.Client(url=server.url, token="root")
        root.sys.enable_auth_method("ldap")
        root.auth.ldap.configure(url=f"ldap://127.0.0.1:{black_hole}", userdn=PEOPLE,
                                 userattr="uid", request_timeout=3)
        done: dict[str, Any] = {}

        def slow_login() -> None:
            started = time.monotonic()
            resp = requests.post(f"{server.url}/v1/auth/ldap/login/alice", timeout=60,
                                 json={"password": password("alice")})
            done.update(status=resp.status_code, body=resp.json(),
                        seconds=time.monotonic() - started)

        worker = threading.Thread(target=slow_login)
        worker.start()
        latencies = []
        while worker.is_alive():
            sent = time.monotonic()
            requests.get(server.url + "/v1/sys/health", timeout=60).raise_for_status()
            latencies.append(time.monotonic() - sent)
        worker.join()
    # The directory never answered: the login fails after request_timeout (3 s), not
    # 90 s (Vault's default) nor never; meanwhile health was answered at once.
    assert done["status"] == 400, done
    assert 2.5 < done["seconds"] < 15, done
    assert len(latencies) >= 5 and max(latencies) < 1.0, latencies


def test_renewal_asks_the_directory(node: tuple[ServerProcess, str], root: hvac.Client,
                                    slapd: Slapd) -> None:
    """Vault's AuthRenew: a renewal re-reads the user's groups; once the policies they
    map to changed, the token is not renewed (Vault's 500 text)."""
    server, _ = node
    root.auth.ldap.create_or_update_group("admins", ["app-read"])
    auth = login(server.url, "alice", password("alice"))["auth"]
    alice = hvac.Client(url=server.url, token=auth["client_token"])
    renewed = alice.auth.token.renew_self()["auth"]
    assert renewed["client_token"] == auth["client_token"] and renewed["lease_duration"] > 0
    root.auth.ldap.create_or_update_group("admins", ["app-read", "more"])
    try:
        with pytest.raises(hvac.exceptions.InternalServerError) as info:
            alice.auth.token.renew_self()
        assert info.value.errors == [
            "1 error occurred:\n\t* failed to renew entry: policies have changed, not "
            "renewing\n\n"]
    finally:
        root.auth.ldap.create_or_update_group("admins", ["app-read"])


def _set_password(slapd: Slapd, user: str, new: str) -> None:
    """Change ``user``'s password in the directory, as its administrator."""
    import ldap3

    with ldap3.Connection(ldap3.Server(slapd.ldap_url), ADMIN_DN, ADMIN_PW,
                          auto_bind=True) as admin:
        assert admin.modify(f"uid={user},{PEOPLE}",
                            {"userPassword": [(ldap3.MODIFY_REPLACE, [new])]}), admin.result


def test_renewal_binds_again_with_the_login_password(node: tuple[ServerProcess, str],
                                                     root: hvac.Client, slapd: Slapd) -> None:
    """Vault's AuthRenew logs in again with the password kept with the token: once the
    directory no longer accepts it (changed, or an account locked), the token stops
    renewing (400 "failed to renew entry: invalid credentials", as Vault's
    ErrInvalidCredentials). The kept password is never shown nor stored in clear."""
    server, _ = node
    root.auth.ldap.create_or_update_user("bob", policies=["app-read"])
    auth = login(server.url, "bob", password("bob"))["auth"]
    bob = hvac.Client(url=server.url, token=auth["client_token"])
    assert bob.auth.token.renew_self()["auth"]["client_token"] == auth["client_token"]
    lookup = bob.auth.token.lookup_self()
    assert password("bob") not in json.dumps(lookup)
    _set_password(slapd, "bob", "bob-new-pw")
    try:
        with pytest.raises(hvac.exceptions.InvalidRequest) as info:
            bob.auth.token.renew_self()
        assert info.value.errors == [
            "1 error occurred:\n\t* failed to renew entry: invalid credentials\n\n"]
        # Refused, not revoked: the token still works until its TTL ends (Vault).
        assert bob.secrets.kv.v2.read_secret_version("app", mount_point="secret",
                                                     raise_on_deleted_version=True)
        # A new login with the new password renews again.
        fresh = login(server.url, "bob", "bob-new-pw")["auth"]
        renewed = hvac.Client(url=server.url, token=fresh["client_token"]).auth.token
        assert renewed.renew_self()["auth"]["lease_duration"] > 0
    finally:
        _set_password(slapd, "bob", password("bob"))
        root.auth.ldap.delete_user("bob")
    # The token entry (with the password) is behind the barrier, like everything stored.
    for path in server.workdir.rglob("*"):
        if path.is_file() and path.suffix != ".log":
            assert password("bob").encode() not in path.read_bytes(), path


def test_renewals_on_a_silent_directory_hold_no_login(node: tuple[ServerProcess, str],
                                                      root: hvac.Client, slapd: Slapd,
                                                      black_hole: int) -> None:
    """An ldap token's renewal binds to the directory again: a silent directory holds it
    for request_timeout. Renewals run on threads of their own, so a dozen of them held
    neither the logins of other methods nor the other requests of the shared pool
    (before: 2 threads a worker, a userpass login waited behind them)."""
    server, _ = node
    root.sys.enable_auth_method("ldap", path="ldap-silent")
    config = {"binddn": SERVICE_DN, "bindpass": SERVICE_PW, "userdn": PEOPLE,
              "userattr": "uid", "groupdn": GROUPS, "request_timeout": "6s"}
    root.auth.ldap.configure(url=slapd.ldap_url, mount_point="ldap-silent", **config)
    root.sys.enable_auth_method("userpass", path="up-bystander")
    root.write("auth/up-bystander/users/carol", password="pw-carol")
    token = hvac.Client(url=server.url, session=session_from_new_address()).auth.ldap.login(
        "alice", password("alice"), mount_point="ldap-silent",
        use_token=False)["auth"]["client_token"]

    def userpass_login() -> float:
        started = time.monotonic()
        resp = session_from_new_address().post(
            f"{server.url}/v1/auth/up-bystander/login/carol", json={"password": "pw-carol"},
            timeout=60, headers={"Connection": "close"})
        assert resp.status_code == 200, resp.text
        return time.monotonic() - started

    baseline = userpass_login()
    root.auth.ldap.configure(url=f"ldap://127.0.0.1:{black_hole}", mount_point="ldap-silent",
                             **config)
    renewed: list[int] = []

    def renew() -> None:
        resp = requests.post(f"{server.url}/v1/auth/token/renew-self", json={}, timeout=60,
                             headers={"X-Vault-Token": token, "Connection": "close"})
        renewed.append(resp.status_code)

    stuck = [threading.Thread(target=renew) for _ in range(6 * WORKERS)]
    for thread in stuck:
        thread.start()
    # Every worker has its renewals waiting on the directory once the slapd-less
    # config is what they renew with; a login meanwhile is answered at once.
    time.sleep(1.0)
    took = [userpass_login() for _ in range(3)]
    for thread in stuck:
        thread.join()
    assert renewed and set(renewed) == {400}, renewed  # the directory never answered
    assert max(took) < 2 * baseline + 3.0, (took, baseline)
