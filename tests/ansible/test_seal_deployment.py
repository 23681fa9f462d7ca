"""Issue 13: the pkcs11 seal in the strongroom role (config.d stanza, PIN EnvironmentFile,
unit) and its checks. Rendering runs the role's own templates and tasks with
ansible-playbook on the controller (connection local); the rendered stanza is loaded
with the server's own configuration loader.
"""

from __future__ import annotations

import json
import os
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

ROLE = REPO / "roles" / "strongroom"
PIN_A, PIN_B = "pin-a-0451", "pin-b-9183"
PARTITIONS = [
    {"name": "hsm_b", "priority": 2, "token_label": "sr-b", "pin": PIN_B},
    {"name": "hsm_a", "priority": 1, "token_label": "sr-a", "pin": PIN_A},
]

RENDER = """\
- name: Render the strongroom role's seal files
  hosts: node
  gather_facts: false
  tasks:
    - name: Role defaults
      ansible.builtin.include_vars: {role}/defaults/main.yml
    - name: Seal checks
      ansible.builtin.include_tasks: {role}/tasks/asserts_seal.yml
    - name: Unit, seal stanza and PIN file
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item.src }}}}"
        dest: "{{{{ out }}}}/{{{{ item.dest }}}}"
        mode: "0600"
      loop:
        - {{src: strongroom.service.j2, dest: strongroom.service}}
        - {{src: config.d/50-seal.hcl.j2, dest: 50-seal.hcl}}
        - {{src: seal.env.j2, dest: seal.env}}
      no_log: true
"""


def local_inventory(directory: Path) -> Path:
    path = directory / "hosts.yml"
    path.write_text(json.dumps({"all": {"hosts": {"node": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


def render(tmp_path: Path, extra: dict[str, object]) -> Path:
    return render_templates(tmp_path, RENDER.format(role=ROLE), local_inventory(tmp_path), extra)


def load_with_server(config_dir: Path) -> object:
    """The server's own loader (as the role's staging check runs it), in a child process."""
    code = ("import sys, json; from strongroom.config import load_config; "
            "c = load_config(sys.argv[1]); print(json.dumps(repr(c)))")
    env = dict(os.environ, PYTHONPATH=str(REPO / "server"))
    res = subprocess.run([sys.executable, "-c", code, str(config_dir)], capture_output=True,
                         text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def config_dir_with(tmp_path: Path, seal_hcl: str) -> Path:
    d = tmp_path / "config.d"
    d.mkdir()
    (d / "10-storage.hcl").write_text('storage "file" {\n  path = "/var/lib/strongroom"\n}\n')
    (d / "20-listener.hcl").write_text(
        'listener "tcp" {\n  address = "0.0.0.0:8200"\n'
        '  tls_cert_file = "/a.pem"\n  tls_key_file = "/a-key.pem"\n}\n')
    (d / "50-seal.hcl").write_text(seal_hcl)
    return d


def test_two_partitions_render_seal_ha_and_the_server_loads_them(tmp_path: Path) -> None:
    out = render(tmp_path, {"strongroom_seal_type": "pkcs11",
                            "strongroom_seal_pkcs11_partitions": PARTITIONS,
                            "strongroom_seal_softhsm": True})
    hcl = (out / "50-seal.hcl").read_text()
    assert "enable_multiseal = true" in hcl
    # Priority order, Vault's option names, and no PIN anywhere in the config.
    assert hcl.index('name           = "hsm_a"') < hcl.index('name           = "hsm_b"')
    for line in ('priority       = "1"', 'token_label    = "sr-a"', 'token_label    = "sr-b"',
                 'lib            = "/usr/lib/softhsm/libsofthsm2.so"',
                 'key_label      = "strongroom-root"'):
        assert line in hcl, hcl
    assert PIN_A not in hcl and PIN_B not in hcl and "pin " not in hcl
    assert "disabled" not in hcl
    # The PINs, one variable per seal name (Vault's Seal HA suffix rule).
    env = (out / "seal.env").read_text().splitlines()
    assert f'VAULT_HSM_PIN_HSM_A="{PIN_A}"' in env and f'VAULT_HSM_PIN_HSM_B="{PIN_B}"' in env
    unit = (out / "strongroom.service").read_text().splitlines()
    assert "EnvironmentFile=/etc/strongroom/seal.env" in unit
    assert "Environment=SOFTHSM2_CONF=/etc/strongroom/softhsm2.conf" in unit
    assert ("ReadWritePaths=/var/lib/strongroom /var/lib/strongroom-softhsm/tokens" in unit)
    assert "PrivateDevices=yes" in unit  # SoftHSM needs no device
    assert PIN_A not in "\n".join(unit)
    load_with_server(config_dir_with(tmp_path, hcl))


def test_one_partition_and_a_real_hsm(tmp_path: Path) -> None:
    """One partition: no multiseal, plain VAULT_HSM_PIN; a vendor library by slot with a
    device allow-list instead of PrivateDevices."""
    out = render(tmp_path, {
        "strongroom_seal_type": "pkcs11",
        "strongroom_seal_pkcs11_lib": "/opt/vendor/lib/libCryptoki2_64.so",
        "strongroom_seal_pkcs11_mechanism": "0x1087",
        "strongroom_seal_pkcs11_partitions": [{"name": "hsm", "priority": 1, "slot": 3,
                                               "pin": PIN_A}],
        "strongroom_device_allow": ["char-usb_device rw"],
    })
    hcl = (out / "50-seal.hcl").read_text()
    assert "enable_multiseal" not in hcl
    assert 'slot           = "3"' in hcl and 'mechanism      = "0x1087"' in hcl
    assert 'lib            = "/opt/vendor/lib/libCryptoki2_64.so"' in hcl
    assert (out / "seal.env").read_text().splitlines()[-1] == f'VAULT_HSM_PIN="{PIN_A}"'
    unit = (out / "strongroom.service").read_text().splitlines()
    assert "DeviceAllow=char-usb_device rw" in unit and "PrivateDevices=yes" not in unit
    assert not [x for x in unit if "SOFTHSM2_CONF" in x]
    load_with_server(config_dir_with(tmp_path, hcl))


@pytest.mark.parametrize(("seal_type", "migrate_from", "expect"), [
    ("pkcs11", "shamir", 'seal "shamir" {\n  disabled = "true"\n}'),
    ("shamir", "pkcs11", '  disabled       = "true"'),
])
def test_migration_stanzas(tmp_path: Path, seal_type: str, migrate_from: str,
                           expect: str) -> None:
    out = render(tmp_path, {"strongroom_seal_type": seal_type,
                            "strongroom_seal_migrate_from": migrate_from,
                            "strongroom_seal_pkcs11_partitions": PARTITIONS})
    hcl = (out / "50-seal.hcl").read_text()
    assert expect in hcl, hcl
    if migrate_from == "pkcs11":
        # Back to Shamir: the first partition only, disabled, and its PIN unsuffixed.
        assert hcl.count('seal "pkcs11"') == 1 and 'token_label    = "sr-a"' in hcl
        assert "enable_multiseal" not in hcl
        assert (out / "seal.env").read_text().splitlines()[-1] == f'VAULT_HSM_PIN="{PIN_A}"'
    else:
        assert hcl.count('seal "pkcs11"') == 2
    load_with_server(config_dir_with(tmp_path, hcl))


ASSERTS = """\
- name: The seal checks alone
  hosts: node
  gather_facts: false
  tasks:
    - name: Role defaults
      ansible.builtin.include_vars: {role}/defaults/main.yml
    - name: Seal checks
      ansible.builtin.include_tasks: {role}/tasks/asserts_seal.yml
"""


@pytest.mark.parametrize(("partitions", "said"), [
    # No PIN: refused, there is no default.
    ([{"name": "hsm_a", "priority": 1, "token_label": "sr-a"}], "needs its pin"),
    ([{"name": "hsm_a", "priority": 1, "token_label": "sr-a", "pin": ""}], "needs its pin"),
    ([{"name": "hsm_a", "priority": 1, "token_label": "sr-a", "pin": 'a"b' + PIN_B}],
     "needs its pin"),
    ([], "needs strongroom_seal_pkcs11_partitions"),
    ([{"name": "hsm-a", "priority": 1, "token_label": "sr-a", "pin": PIN_A}],
     "needs strongroom_seal_pkcs11_partitions"),
    ([{"name": "a", "priority": 1, "token_label": "x", "slot": 0, "pin": PIN_A}],
     "needs strongroom_seal_pkcs11_partitions"),
    ([{"name": "a", "priority": 1, "token_label": "x", "pin": PIN_A},
      {"name": "b", "priority": 1, "token_label": "y", "pin": PIN_B}],
     "needs strongroom_seal_pkcs11_partitions"),
])
def test_bad_partitions_are_refused_without_showing_pins(
        tmp_path: Path, partitions: list[dict[str, object]], said: str) -> None:
    play = tmp_path / "asserts.yml"
    play.write_text(ASSERTS.format(role=ROLE))
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    run = run_playbook(play, local_inventory(tmp_path), env, {
        "strongroom_seal_type": "pkcs11", "strongroom_seal_pkcs11_partitions": partitions})
    assert run.returncode != 0, run.output[-3000:]
    text = " ".join(run.output.split())
    assert said in text, text[-3000:]
    # The extra vars are echoed by nothing; the PINs appear nowhere in the output.
    assert PIN_A not in run.output and PIN_B not in run.output


def test_shamir_writes_no_seal_files(tmp_path: Path) -> None:
    play = tmp_path / "asserts.yml"
    play.write_text(ASSERTS.format(role=ROLE))
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    run = run_playbook(play, local_inventory(tmp_path), env, {})
    assert run.returncode == 0, run.output[-3000:]
    # config.yml lists 50-seal.hcl only for pkcs11 (or a migration from it).
    text = (ROLE / "tasks" / "config.yml").read_text()
    assert "'50-seal.hcl'] if strongroom_seal_type == 'pkcs11'" in text
