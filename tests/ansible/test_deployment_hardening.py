"""Issue #10 hardening of the deployment: ansible.cfg, the unit's hooks, the config staging.

Rendering tests run the role's own templates and tasks with ansible-playbook on the
controller (connection local); nothing here needs a test host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.runbook_support import (
    ansible_env,
    render_templates,
    run_playbook,
    vault_password_file,
)
from tests.support import requires
from tests.support.servers import REPO

requires.module("ansible")

pytestmark = pytest.mark.timeout(240)

ANSIBLE_BIN = Path(sys.executable).parent
ROLE = REPO / "roles" / "strongroom"


def local_inventory(directory: Path) -> Path:
    path = directory / "hosts.yml"
    path.write_text(json.dumps({"all": {"hosts": {"node": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


def test_ansible_cfg_checks_ssh_host_keys(tmp_path: Path) -> None:
    """The repository's ansible.cfg leaves host key checking on (Ansible's default)."""
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    out = subprocess.run([str(ANSIBLE_BIN / "ansible-config"), "dump", "--only-changed"],
                         capture_output=True, text=True, env=env, cwd=REPO, check=True).stdout
    assert "HOST_KEY_CHECKING" not in out, out
    full = subprocess.run([str(ANSIBLE_BIN / "ansible-config"), "dump"], capture_output=True,
                          text=True, env=env, cwd=REPO, check=True).stdout
    line = next(x for x in full.splitlines() if x.startswith("HOST_KEY_CHECKING"))
    assert line.endswith("= True"), line


RENDER = """\
- name: Render the strongroom role's unit
  hosts: node
  gather_facts: false
  tasks:
    - name: Role defaults
      ansible.builtin.include_vars: {role}/defaults/main.yml
    - name: Unit
      ansible.builtin.template:
        src: {role}/templates/strongroom.service.j2
        dest: "{{{{ out }}}}/strongroom.service"
        mode: "0644"
"""


def render(tmp_path: Path, extra: dict[str, object]) -> Path:
    return render_templates(tmp_path, RENDER.format(role=ROLE), local_inventory(tmp_path), extra)


def unit_lines(out: Path) -> list[str]:
    return (out / "strongroom.service").read_text().splitlines()


def test_unit_without_hooks_keeps_private_devices(tmp_path: Path) -> None:
    lines = unit_lines(render(tmp_path, {}))
    assert "PrivateDevices=yes" in lines
    assert not [x for x in lines if x.startswith(("EnvironmentFile=", "DeviceAllow=",
                                                  "DevicePolicy="))]
    assert "ReadWritePaths=/var/lib/strongroom" in lines


def test_unit_hooks_for_an_hsm(tmp_path: Path) -> None:
    """EnvironmentFile, DeviceAllow and extra ReadWritePaths (the seal stanza and its PIN
    file: tests/ansible/test_seal_deployment.py)."""
    out = render(tmp_path, {
        "strongroom_environment_file": "/etc/strongroom/hsm.env",
        "strongroom_device_allow": ["/dev/bus/usb rw", "char-usb_device rw"],
        "strongroom_extra_read_write_paths": ["/var/lib/softhsm/tokens"],
    })
    lines = unit_lines(out)
    assert "EnvironmentFile=/etc/strongroom/hsm.env" in lines
    assert "DevicePolicy=closed" in lines
    assert "DeviceAllow=/dev/bus/usb rw" in lines
    assert "DeviceAllow=char-usb_device rw" in lines
    assert "PrivateDevices=yes" not in lines
    assert "ReadWritePaths=/var/lib/strongroom /var/lib/softhsm/tokens" in lines


CONFIG = """\
- name: The strongroom role's configuration tasks
  hosts: node
  gather_facts: false
  tasks:
    - name: Configuration
      ansible.builtin.include_role:
        name: strongroom
        tasks_from: config.yml
"""

GOOD_FILES = {
    "10-storage.hcl": 'storage "file" {\n  path = "/var/lib/strongroom"\n}\n',
    "20-listener.hcl": 'listener "tcp" {\n  address = "0.0.0.0:8200"\n'
                       '  tls_cert_file = "/a.pem"\n  tls_key_file = "/a-key.pem"\n}\n',
    "40-server.hcl": "workers = 2\n",
}


def test_a_config_the_server_refuses_never_reaches_config_d(tmp_path: Path) -> None:
    """Rendered into a staging directory and loaded there; config.d keeps the good files."""
    config_dir = tmp_path / "etc"
    config_d = config_dir / "config.d"
    config_d.mkdir(parents=True)
    for name, text in GOOD_FILES.items():
        (config_d / name).write_text(text)
    play = tmp_path / "config.yml"
    play.write_text(CONFIG)
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    run = run_playbook(play, local_inventory(tmp_path), env, {
        "strongroom_config_dir": str(config_dir),
        "strongroom_user": "root", "strongroom_group": "root",
        "strongroom_venv_dir": str(REPO / ".venv"),
        "strongroom_workers": 2,
        # Valid for the role's asserts, refused by the server's loader.
        "strongroom_extra_config": {"default_lease_ttl": "forever"},
    })
    assert run.returncode != 0, run.output[-4000:]
    said = " ".join(run.output.split())
    assert "does not load" in said and "invalid duration 'forever'" in said, said[-3000:]
    # config.d is untouched: same files, same content, no 90-extra.json.
    assert sorted(p.name for p in config_d.iterdir()) == sorted(GOOD_FILES)
    for name, text in GOOD_FILES.items():
        assert (config_d / name).read_text() == text
    staged = config_dir / "config.d.staging"
    assert (staged / "90-extra.json").exists()
