"""Fail closed on a real full disk: a file device on a 64 KiB tmpfs. While the file
system is full every request is refused (500) and nothing it asked for happens; once
there is room again requests are served, and every line in the log parses (a line cut
short by the full disk was taken back)."""

from __future__ import annotations

from pathlib import Path

from tests.support.audit import entries, fill, tiny_tmpfs
from tests.support.nodes import dev_node


def test_full_file_system_refuses_requests_and_does_nothing() -> None:
    d = dev_node()
    with tiny_tmpfs("64k") as mnt:
        log = mnt / "audit" / "audit.log"  # the parent is made by the device
        resp = d.call("PUT", "sys/audit/file", json={
            "type": "file", "options": {"file_path": str(log)}})
        assert resp.status_code == 204, resp.text
        assert d.call("PUT", "secret/data/k", json={"data": {"v": "1"}}).status_code == 200
        token = d.call("POST", "auth/token/create", json={"policies": ["default"]}
                       ).json["auth"]["client_token"]
        filler = fill(mnt)
        # The log's last page may still hold a line or two: those are recorded (and
        # served); once it is full, requests are refused. Until not even a small
        # request line fits (a request whose entry fit but whose answer did not was
        # carried out, as in Vault: the client got a 500 instead of the answer).
        statuses = []
        while True:
            before = log.stat().st_size
            statuses.append(d.call("GET", "secret/data/k").status_code)
            if statuses[-1] == 500 and log.stat().st_size == before:
                break
            assert len(statuses) < 50
        assert set(statuses) <= {200, 500} and statuses == sorted(statuses)
        refused = d.call("PUT", "secret/data/k", json={"data": {"v": "2"}})
        assert refused.status_code == 500 and refused.json["errors"] == ["internal error"]
        assert d.call("GET", "secret/data/k").status_code == 500
        assert d.call("POST", "auth/token/revoke", json={"token": token}).status_code == 500
        filler.unlink()
        read = d.call("GET", "secret/data/k")
        assert read.status_code == 200
        assert read.json["data"]["data"] == {"v": "1"}  # the refused write never happened
        assert read.json["data"]["metadata"]["version"] == 1
        # The refused revocation did not happen either.
        assert d.call("GET", "auth/token/lookup-self", token=token).status_code == 200
        lines = entries(log)  # every line parses: no fragment was left behind
        paths = [e["request"]["path"] for e in lines if e["type"] == "request"]
        # The first write, the reads recorded while the disk filled, the last read.
        assert paths.count("secret/data/k") == 2 + len(statuses) - 1
        assert "auth/token/revoke" not in paths


def test_enable_on_a_full_file_system_is_refused(tmp_path: Path) -> None:
    d = dev_node()
    with tiny_tmpfs("64k") as mnt:
        fill(mnt)
        resp = d.call("PUT", "sys/audit/file", json={
            "type": "file", "options": {"file_path": str(mnt / "audit.log")}})
        assert resp.status_code == 400
        assert resp.json["errors"][0].startswith("audit backend failed test message: ")
        assert d.call("GET", "sys/audit").json["data"] == {}
