"""sys/audit end to end on an in-process node with real devices: a file, a TCP
collector, a syslog datagram socket. Enable, list, hash, disable, the entries written,
and what never reaches them in clear. Error answers are OpenBao 2.7's (compared with
``bao`` in tests/compat/test_audit_vs_bao.py)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import registry
from strongroom.audit import syslog_factory
from tests.support.audit import Collector, entries, tcp_collector
from tests.support.nodes import DevNode, dev_node


@pytest.fixture
def d() -> DevNode:
    return dev_node()


def enable_file(d: DevNode, path: Path, name: str = "file", **options: str) -> None:
    resp = d.call("PUT", f"sys/audit/{name}", json={
        "type": "file", "options": {"file_path": str(path), **options}})
    assert resp.status_code == 204, resp.text


def test_enable_list_hash_disable(d: DevNode, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    resp = d.call("PUT", "sys/audit/file", json={
        "type": "file", "description": "main", "local": True,
        "options": {"file_path": str(log), "hmac_accessor": "false"}})
    assert resp.status_code == 204, resp.text
    listed = d.call("GET", "sys/audit").json
    expected = {"file/": {"path": "file/", "type": "file", "description": "main",
                          "options": {"file_path": str(log), "hmac_accessor": "false"},
                          "local": True}}
    assert listed["data"] == expected and listed["file/"] == expected["file/"]
    # The test probe, then the enable's own answer (the request came before the device).
    first, second = entries(log)[:2]
    assert first["type"] == "request" and first["request"]["path"] == "sys/audit/test"
    assert second["type"] == "response" and second["request"]["path"] == "sys/audit/file"
    hashed = d.call("POST", "sys/audit-hash/file", json={"input": "hunter2"})
    assert hashed.status_code == 200
    value = hashed.json["data"]["hash"]
    assert value.startswith("hmac-sha256:") and len(value) == len("hmac-sha256:") + 64
    # The same HMAC from the salt every process reads (stored once, in the barrier).
    assert d.call("POST", "sys/audit-hash/file/", json={"input": "hunter2"}
                  ).json["data"]["hash"] == value
    assert d.call("DELETE", "sys/audit/file").status_code == 204
    assert d.call("GET", "sys/audit").json["data"] == {}
    # Disabling the last device is itself recorded (the request, before it went).
    last = entries(log)[-1]
    assert last["type"] == "request" and last["request"]["operation"] == "delete"
    assert last["request"]["path"] == "sys/audit/file"
    count = len(entries(log))
    assert d.call("GET", "sys/audit").status_code == 200
    assert len(entries(log)) == count  # nothing more once disabled
    assert d.call("DELETE", "sys/audit/file").status_code == 204  # not there: fine


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"type": "nope"}, 400, 'unknown backend type: "nope"'),
    ({}, 400, 'unknown backend type: ""'),
    ({"type": "file"}, 400, "file_path is required"),
    ({"type": "file", "options": {"file_path": "/proc/nope/x"}}, 400,
     'sanity check failed; unable to open "/proc/nope/x" for writing: '),
    ({"type": "file", "options": {"file_path": "X", "hmac_accessor": "maybe"}}, 400,
     'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ({"type": "file", "options": {"file_path": "X", "log_raw": "x"}}, 400,
     'strconv.ParseBool: parsing "x": invalid syntax'),
    ({"type": "file", "options": {"file_path": "X", "format": "yaml"}}, 400,
     'unknown format type "yaml"'),
    ({"type": "file", "options": {"file_path": "X", "mode": "abc"}}, 400,
     'strconv.ParseUint: parsing "abc": invalid syntax'),
    ({"type": "socket", "options": {}}, 400, "address is required"),
    ({"type": "socket", "options": {"address": "127.0.0.1:1"}}, 400,
     "audit backend failed test message: "),
    ({"type": "socket", "options": {"address": "127.0.0.1:1", "write_timeout": "xx"}}, 400,
     'time: invalid duration "xx"'),
    ({"type": "syslog", "options": {"facility": "NOPE"}}, 400,
     "invalid syslog facility: NOPE"),
])
def test_bad_enables_are_400_and_enable_nothing(d: DevNode, tmp_path: Path, body: dict,
                                                status: int, error: str) -> None:
    options = body.get("options")
    if isinstance(options, dict) and options.get("file_path") == "X":
        options["file_path"] = str(tmp_path / "x.log")
    resp = d.call("PUT", "sys/audit/zz", json=body)
    assert resp.status_code == status
    assert resp.json["errors"][0].startswith(error), resp.json
    assert d.call("GET", "sys/audit").json["data"] == {}
    # Nothing enabled: requests are served as before.
    assert d.call("GET", "sys/mounts").status_code == 200


def test_path_in_use_and_sudo(d: DevNode, tmp_path: Path) -> None:
    enable_file(d, tmp_path / "a.log")
    for path in ("file", "file/sub"):
        resp = d.call("PUT", f"sys/audit/{path}", json={
            "type": "file", "options": {"file_path": str(tmp_path / "b.log")}})
        assert resp.status_code == 400 and resp.json["errors"] == ["path already in use"]
    missing = d.call("POST", "sys/audit-hash/nope", json={"input": "x"})
    assert missing.status_code == 400
    assert missing.json["errors"] == ['unknown audit backend "nope/"']
    empty = d.call("POST", "sys/audit-hash/file", json={})
    assert empty.json["errors"] == ['the "input" parameter is empty']
    # Without sudo (a policy granting every capability but sudo): denied.
    d.call("PUT", "sys/policies/acl/nosudo", json={
        "policy": 'path "sys/*" { capabilities = ["create","read","update","delete","list"] }'})
    token = d.call("POST", "auth/token/create", json={"policies": ["nosudo"]}
                   ).json["auth"]["client_token"]
    for method, path in (("GET", "sys/audit"), ("PUT", "sys/audit/other"),
                         ("DELETE", "sys/audit/file")):
        assert d.call(method, path, token=token, json={"type": "file"}).status_code == 403


def test_no_secret_in_clear_and_hash_matches(tmp_path: Path) -> None:
    d = dev_node(root_token_id="hvs.R00tT0kenUnderTest1234")
    log = tmp_path / "audit.log"
    enable_file(d, log)
    password = "correct-horse-battery-staple"  # noqa: S105 - the value under test
    assert d.call("PUT", "secret/data/app", json={"data": {"password": password}}
                  ).status_code == 200
    read = d.call("GET", "secret/data/app")
    assert read.json["data"]["data"]["password"] == password
    child = d.call("POST", "auth/token/create", json={"policies": ["default"], "num_uses": 3}
                   ).json["auth"]
    assert d.call("GET", "auth/token/lookup-self", token=child["client_token"]
                  ).status_code == 200
    wrapped = d.call("POST", "sys/wrapping/wrap", json={"k": password},
                     headers={"X-Vault-Wrap-TTL": "60"}).json["wrap_info"]
    text = log.read_text()
    for secret in (password, d.root_token, child["client_token"], child["accessor"],
                   wrapped["token"]):
        assert secret not in text
    def h(value: str) -> str:
        return d.call("POST", "sys/audit-hash/file", json={"input": value}).json["data"]["hash"]
    assert h(password) in text and h(d.root_token) in text
    assert h(child["client_token"]) in text and h(wrapped["token"]) in text
    lines = entries(log)
    # The limited-use token's entries show its uses left before this request.
    (used,) = [e for e in lines if e["type"] == "request"
               and e["request"]["path"] == "auth/token/lookup-self"]
    assert used["auth"]["remaining_uses"] == 3
    assert used["auth"]["client_token"] == h(child["client_token"])
    assert used["auth"]["policies"] == ["default"] and used["auth"]["token_type"] == "service"
    write = next(e for e in lines if e["type"] == "response"
                 and e["request"]["path"] == "secret/data/app"
                 and e["request"]["operation"] == "create")
    assert write["request"]["mount_type"] == "kv" and write["request"]["mount_point"] == "secret/"
    assert write["request"]["data"]["data"]["password"] == h(password)
    assert write["response"]["mount_type"] == "kv"
    # Times are left in clear, as Vault does.
    assert write["response"]["data"]["created_time"].endswith("Z")
    assert write["request"]["namespace"] == {"id": "root"}
    created = next(e for e in lines if e["type"] == "response"
                   and e["request"]["path"] == "auth/token/create")
    assert created["response"]["auth"]["client_token"] == h(child["client_token"])
    assert created["response"]["auth"]["accessor"] == h(child["accessor"])


def test_refused_requests_are_recorded_with_their_error(d: DevNode, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    enable_file(d, log)
    assert d.call("GET", "secret/data/app", token="hvs.bogus").status_code == 403
    refused, answer = entries(log)[-2:]
    assert refused["type"] == "request" and refused["error"] == "permission denied"
    assert refused["request"]["client_token"] != "hvs.bogus"
    assert refused["request"]["client_token"].startswith("hmac-sha256:")
    # Then its answer, the error (HMAC'd in data, in clear as the entry's error).
    assert answer["type"] == "response" and answer["error"] == "permission denied"
    assert answer["request"]["id"] == refused["request"]["id"]
    assert answer["response"]["data"]["error"].startswith("hmac-sha256:")


def test_options_log_raw_prefix_elide(d: DevNode, tmp_path: Path) -> None:
    raw, pre = tmp_path / "raw.log", tmp_path / "pre.log"
    enable_file(d, raw, "raw", log_raw="true", elide_list_responses="true")
    enable_file(d, pre, "pre", prefix="AUDIT: ")
    d.call("PUT", "secret/data/a", json={"data": {"k": "v"}})
    d.call("PUT", "secret/data/b", json={"data": {"k": "v"}})
    assert d.call("LIST", "secret/metadata/").status_code == 200
    listing = [e for e in entries(raw) if e["type"] == "response"
               and e["request"]["operation"] == "list"][-1]
    assert listing["response"]["data"] == {"keys": 2}
    assert listing["auth"]["client_token"] == d.root_token  # log_raw: nothing HMAC'd
    lines = pre.read_text().splitlines()
    assert lines and all(line.startswith("AUDIT: {") for line in lines)
    json.loads(lines[-1][len("AUDIT: "):])


def test_fail_closed_socket_peer_gone(d: DevNode) -> None:
    """A TCP collector that goes away: requests are refused (500), nothing is done; once
    a collector listens again, they are served and the refused write never happened."""
    with tcp_collector() as (collector, address):
        resp = d.call("PUT", "sys/audit/sock", json={
            "type": "socket", "options": {"address": address, "write_timeout": "1s"}})
        assert resp.status_code == 204, resp.text
        assert d.call("PUT", "secret/data/k", json={"data": {"v": "1"}}).status_code == 200
        lines = collector.wait_for(4)
        assert all(json.loads(line)["type"] in ("request", "response") for line in lines)
        collector.close()
        refused = d.call("PUT", "secret/data/k", json={"data": {"v": "2"}})
        assert refused.status_code == 500 and refused.json["errors"] == ["internal error"]
        # Reads are refused too while no device records them.
        assert d.call("GET", "secret/data/k").status_code == 500
        host, port = address.rsplit(":", 1)
        again = socket.socket()
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind((host, int(port)))
        again.listen(16)
        back = Collector(again)
        try:
            # Served again once the device dials anew (it waits RECONNECT_PAUSE after
            # a failed connect).
            deadline = time.monotonic() + 10
            while (read := d.call("GET", "secret/data/k")).status_code != 200:
                assert time.monotonic() < deadline, read.text
            assert read.status_code == 200
            assert read.json["data"]["data"] == {"v": "1"}  # the refused write did nothing
            assert read.json["data"]["metadata"]["version"] == 1
            assert len(back.wait_for(2)) >= 2
        finally:
            back.close()


def test_one_device_recording_is_enough(d: DevNode, tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    enable_file(d, log)
    with tcp_collector() as (collector, address):
        assert d.call("PUT", "sys/audit/sock", json={
            "type": "socket", "options": {"address": address}}).status_code == 204
        collector.close()
        assert d.call("PUT", "secret/data/k", json={"data": {"v": "1"}}).status_code == 200
        assert any(e["request"].get("path") == "secret/data/k" for e in entries(log))


def test_limited_use_token_not_spent_when_audit_fails(d: DevNode) -> None:
    token = d.call("POST", "auth/token/create", json={"num_uses": 2, "policies": ["default"]}
                   ).json["auth"]
    with tcp_collector() as (collector, address):
        assert d.call("PUT", "sys/audit/sock", json={
            "type": "socket", "options": {"address": address}}).status_code == 204
        collector.close()
        assert d.call("GET", "auth/token/lookup-self", token=token["client_token"]
                      ).status_code == 500
        # With every device failing even the operator is refused, as in Vault.
        assert d.call("DELETE", "sys/audit/sock").status_code == 500
    # The refused request spent no use: two uses are left, and then none.
    d.node.core.mounts.audit.disable("sock/")  # the operator's way out: storage
    assert not d.node.core.audit.enabled()
    for _ in range(2):
        assert d.call("GET", "auth/token/lookup-self", token=token["client_token"]
                      ).status_code == 200
    assert d.call("GET", "auth/token/lookup-self", token=token["client_token"]
                  ).status_code == 403


@pytest.fixture
def syslog_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setitem(registry.AUDIT_DEVICES, "syslog", syslog_factory([path]))
    try:
        yield sock
    finally:
        sock.close()


def test_syslog_device(syslog_socket: socket.socket) -> None:
    d = dev_node()
    resp = d.call("PUT", "sys/audit/syslog", json={
        "type": "syslog", "options": {"facility": "local3", "tag": "strongroom"}})
    assert resp.status_code == 204, resp.text
    probe = syslog_socket.recv(65536)
    # <PRI> = LOCAL3 (19) * 8 + INFO (6) = 158; then the stamp, tag[pid]: entry.
    assert probe.startswith(b"<158>")
    head, _, body = probe.partition(b"]: ")
    assert b" strongroom[" in head
    assert json.loads(body)["request"]["path"] == "sys/audit/test"
    d.call("GET", "sys/mounts")
    messages = [syslog_socket.recv(65536) for _ in range(3)]
    paths = [json.loads(m.partition(b"]: ")[2])["request"]["path"] for m in messages]
    assert paths == ["sys/audit/syslog", "sys/mounts", "sys/mounts"]
    syslog_socket.close()  # syslogd gone: fail closed
    assert d.call("GET", "sys/mounts").status_code == 500


def test_syslog_absent_is_a_400() -> None:
    d = dev_node()
    registry_factory = registry.AUDIT_DEVICES["syslog"]
    assert registry_factory is not None
    resp = d.call("PUT", "sys/audit/syslog", json={"type": "syslog"})
    if resp.status_code == 204:
        pytest.skip("this machine has a local syslog socket")
    assert resp.status_code == 400 and resp.json["errors"] == ["Unix syslog delivery error"]


def test_jsonx_discard_and_stdout(d: DevNode, tmp_path: Path,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "audit.xml"
    enable_file(d, xml, "xml", format="jsonx", mode="0640")
    assert d.call("PUT", "sys/audit/nowhere", json={
        "type": "file", "options": {"file_path": "DISCARD"}}).status_code == 204
    assert d.call("PUT", "sys/audit/out", json={
        "type": "file", "options": {"file_path": "stdout"}}).status_code == 204
    capfd.readouterr()
    assert d.call("GET", "sys/mounts").status_code == 200
    lines = xml.read_text().splitlines()
    assert all(line.startswith('<?xml version="1.0" encoding="UTF-8"?><json:object')
               for line in lines)
    assert '<json:string name="path">sys/mounts</json:string>' in lines[-1]
    assert oct(xml.stat().st_mode & 0o777) == "0o640"
    out = capfd.readouterr().out.splitlines()
    assert [json.loads(line)["type"] for line in out] == ["request", "response"]
    listed = d.call("GET", "sys/audit").json["data"]
    assert listed["nowhere/"]["options"] == {"file_path": "DISCARD"}


def test_mount_tune_keeps_named_keys_in_clear(d: DevNode, tmp_path: Path) -> None:
    """``audit_non_hmac_request_keys``/``..._response_keys`` (a mount's tune): values
    under those keys are logged in clear, everything else stays HMAC'd."""
    log = tmp_path / "audit.log"
    enable_file(d, log)
    assert d.call("POST", "sys/mounts/secret/tune", json={
        "audit_non_hmac_request_keys": ["username"],
        "audit_non_hmac_response_keys": ["username", "version"]}).status_code == 204
    tuned = d.call("GET", "sys/mounts/secret/tune").json["data"]
    assert tuned["audit_non_hmac_request_keys"] == ["username"]
    assert tuned["audit_non_hmac_response_keys"] == ["username", "version"]
    config = d.call("GET", "sys/mounts").json["data"]["secret/"]["config"]
    assert config["audit_non_hmac_request_keys"] == ["username"]
    d.call("PUT", "secret/data/app", json={"data": {"username": "alice", "password": "pw1"}})
    read = d.call("GET", "secret/data/app")
    assert read.status_code == 200
    lines = entries(log)
    write = next(e for e in lines if e["type"] == "request"
                 and e["request"].get("path") == "secret/data/app")
    assert write["request"]["data"]["data"]["username"] == "alice"
    assert write["request"]["data"]["data"]["password"].startswith("hmac-sha256:")
    answer = lines[-1]
    assert answer["response"]["data"]["data"]["username"] == "alice"
    assert answer["response"]["data"]["data"]["password"].startswith("hmac-sha256:")
    # Cleared again: an empty list.
    assert d.call("POST", "sys/mounts/secret/tune", json={
        "audit_non_hmac_request_keys": []}).status_code == 204
    assert "audit_non_hmac_request_keys" not in d.call(
        "GET", "sys/mounts/secret/tune").json["data"]
