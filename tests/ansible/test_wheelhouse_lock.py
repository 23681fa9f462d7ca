"""The controller-built wheelhouse comes from a hashed lock (roles/strongroom/files/...).

The lock is roles/strongroom/files/wheelhouse.lock.
Runs the role's module, strongroom_wheelhouse, through ansible-playbook on the controller
with this repository as the source. Needs the package index (the dependencies' wheels), as
the Molecule scenarios do.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ansible.runbook_support import ansible_env, run_playbook, vault_password_file
from tests.support import requires
from tests.support.servers import REPO

requires.module("ansible")

pytestmark = pytest.mark.timeout(600)

LOCK = REPO / "roles" / "strongroom" / "files" / "wheelhouse.lock"

PLAY = """\
- name: Build a wheelhouse from a lock
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Wheelhouse
      strongroom_wheelhouse:
        source: "{{ source }}"
        dest: "{{ dest }}"
        python: "{{ ansible_playbook_python }}"
        lock: "{{ lock }}"
      register: result
      failed_when: false
    - name: Result
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def build(tmp_path: Path, lock: Path, name: str) -> dict[str, Any]:
    play = tmp_path / "wheelhouse.yml"
    play.write_text(PLAY)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    env["ANSIBLE_LIBRARY"] = str(REPO / "roles" / "strongroom" / "library")
    out = tmp_path / f"{name}.json"
    run = run_playbook(play, inventory, env, {
        "source": str(REPO), "dest": str(tmp_path / name), "lock": str(lock), "out": str(out)},
        timeout=540)
    assert run.returncode == 0, run.output[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def lock_names(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([a-z0-9-]+)==", text, re.M)}


def canonical(wheel: str) -> str:
    return wheel.split("-")[0].replace("_", "-").lower()


def test_every_dependency_comes_from_the_lock(tmp_path: Path) -> None:
    good = build(tmp_path, LOCK, "good")
    assert "wheels" in good, good
    names = {canonical(w) for w in good["wheels"]}
    assert names == lock_names(LOCK.read_text()) | {"strongroom"}

    # A lock that differs (even by a comment) is another wheelhouse: rebuilt, new fingerprint.
    edited = tmp_path / "edited.lock"
    edited.write_text(LOCK.read_text() + "# reviewed\n")
    again = build(tmp_path, edited, "good")
    assert again["changed"] is True and again["fingerprint"] != good["fingerprint"]


def test_a_hash_mismatch_or_an_unpinned_dependency_stops_the_build(tmp_path: Path) -> None:
    text = LOCK.read_text()
    tampered = tmp_path / "tampered.lock"
    first = re.search(r"--hash=sha256:([0-9a-f]{64})", text)
    assert first
    tampered.write_text(text.replace(first.group(1), "0" * 64))
    bad = build(tmp_path, tampered, "tampered")
    assert bad["msg"] == "pip wheel failed", bad
    assert "DO NOT MATCH THE HASHES" in bad["stderr"], bad
    assert not (tmp_path / "tampered").exists()

    # h11 (a direct requirement of Strongroom) left out of the lock.
    partial = tmp_path / "partial.lock"
    partial.write_text(re.sub(r"^h11==.*\n.*\n", "", text, flags=re.M))
    missing = build(tmp_path, partial, "partial")
    assert "requires h11, which the lock" in missing["msg"], missing
    assert "does not pin" in missing["msg"], missing
