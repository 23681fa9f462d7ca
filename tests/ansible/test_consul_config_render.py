"""Issue #10, Consul version: the role refuses vulnerable releases and renders both syntaxes.

consul.hcl is rendered by the role's own template with ansible-playbook on the controller
(connection local) for Consul 1.8.7 (the tests' Debian build: top-level TLS settings,
checked by the real ``consul validate``) and for the production default (the ``tls {}``
stanza, ``TLSv1_2``); the role's asserts run against the same kind of inventory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.runbook_support import (
    ansible_env,
    render_templates,
    run_playbook,
    vault_password_file,
)
from tests.support import requires
from tests.support.consul import consul_binary
from tests.support.servers import REPO

requires.module("ansible")
hcl = requires.module("hcl", "pyhcl")

pytestmark = pytest.mark.timeout(240)

ROLE = REPO / "roles" / "consul"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
TEST_VERSION = "1.8.7"


def inventory(directory: Path) -> Path:
    """Three Consul servers and one Strongroom node (a client agent), all local."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path = directory / "hosts.yml"
    path.write_text(json.dumps({"all": {"vars": local, "children": {
        "consul_servers": {"hosts": {f"c{i}": {"ansible_host": f"192.0.2.{i}"}
                                     for i in (1, 2, 3)}},
        "strongroom_servers": {"hosts": {"n1": {"ansible_host": "192.0.2.4"}}},
    }}}))
    return path


RENDER = """\
- name: Render the consul role's agent configuration
  hosts: c1:n1
  gather_facts: false
  tasks:
    - name: Role defaults
      ansible.builtin.include_vars: {role}/defaults/main.yml
    - name: Agent configuration
      ansible.builtin.template:
        src: {role}/templates/consul.hcl.j2
        dest: "{{{{ out }}}}/{{{{ inventory_hostname }}}}.hcl"
        mode: "0644"
"""


def render(tmp_path: Path, extra: dict[str, object]) -> dict[str, str]:
    """consul.hcl of server c1 and client n1, as text."""
    out = render_templates(tmp_path, RENDER.format(role=ROLE), inventory(tmp_path), extra)
    return {host: (out / f"{host}.hcl").read_text() for host in ("c1", "n1")}


def test_production_default_is_a_supported_release() -> None:
    """The role's and the production example's default is not below the safe floor."""
    def numbers(version: str) -> tuple[int, ...]:
        return tuple(int(x) for x in version.split("-")[0].split("."))

    prod = yaml.safe_load((REPO / "inventories" / "production-example" / "group_vars"
                           / "all.yml").read_text())
    assert DEFAULTS["consul_install_method"] == "archive"
    floor = numbers(str(DEFAULTS["consul_min_safe_version"]))
    assert numbers(str(DEFAULTS["consul_version"])) >= floor
    assert floor >= (1, 8, 15)  # CVE-2021-37219
    assert str(prod["consul_version"]) == str(DEFAULTS["consul_version"])
    assert prod["consul_install_method"] == "archive"
    assert not DEFAULTS["consul_allow_vulnerable_version"]
    assert "consul_allow_vulnerable_version" not in prod


def test_current_syntax_for_the_production_default(tmp_path: Path) -> None:
    """Consul >= 1.12: tls {} stanza with TLSv1_2, ui_config, no TLS gRPC port."""
    texts = render(tmp_path, {})
    for host, text in texts.items():
        conf: dict[str, Any] = hcl.loads(text)
        for legacy in ("ca_file", "cert_file", "key_file", "verify_incoming_rpc",
                       "verify_incoming_https", "verify_outgoing", "verify_server_hostname",
                       "tls_min_version", "ui"):
            assert legacy not in conf, (host, legacy)
        tls = conf["tls"]
        assert tls["defaults"] == {
            "ca_file": "/etc/consul.d/tls/ca.pem",
            "cert_file": f"/etc/consul.d/tls/consul-{host}.pem",
            "key_file": f"/etc/consul.d/tls/consul-{host}-key.pem",
            "tls_min_version": "TLSv1_2",
            "verify_outgoing": True,
        }
        assert tls["internal_rpc"] == {"verify_incoming": True, "verify_server_hostname": True}
        assert tls["https"] == {"verify_incoming": False}
        assert conf["ports"] == {"http": -1, "https": 8501, "dns": 8600, "grpc": -1,
                                 "grpc_tls": -1}
        assert conf["acl"]["enable_token_persistence"] is True
        assert "tokens" not in conf["acl"]
    assert hcl.loads(texts["c1"])["ui_config"] == {"enabled": False}
    assert hcl.loads(texts["c1"])["server"] is True
    assert hcl.loads(texts["n1"])["server"] is False


def test_current_syntax_maps_tls13(tmp_path: Path) -> None:
    texts = render(tmp_path, {"consul_tls_min_version": "tls13"})
    assert hcl.loads(texts["c1"])["tls"]["defaults"]["tls_min_version"] == "TLSv1_3"


def test_legacy_syntax_for_the_test_version(tmp_path: Path) -> None:
    """Consul 1.8.7: top-level TLS settings, ui, no tls {} (1.8 refuses it); consul validate."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    texts = render(tmp_path, {"consul_version": TEST_VERSION, "consul_data_dir": str(data_dir)})
    for host, text in texts.items():
        conf: dict[str, Any] = hcl.loads(text)
        assert "tls" not in conf and "ui_config" not in conf
        assert conf["ca_file"] == "/etc/consul.d/tls/ca.pem"
        assert conf["cert_file"] == f"/etc/consul.d/tls/consul-{host}.pem"
        assert conf["verify_incoming_rpc"] is True
        assert conf["verify_incoming_https"] is False
        assert conf["verify_outgoing"] is True
        assert conf["verify_server_hostname"] is True
        assert conf["tls_min_version"] == "tls12"
        assert "grpc_tls" not in conf["ports"]
    assert hcl.loads(texts["c1"])["ui"] is False

    binary = requires.binary("consul", "scripts/install-consul.sh", path=consul_binary())
    version = subprocess.run([binary, "version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    assert version == f"Consul v{TEST_VERSION}", version
    for host in texts:
        path = tmp_path / "out" / f"{host}.hcl"
        check = subprocess.run([binary, "validate", "-quiet", "-config-format=hcl", str(path)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, (host, check.stdout + check.stderr)


ASSERTS = """\
- name: The consul role's input checks
  hosts: c1
  gather_facts: false
  tasks:
    - name: Asserts
      ansible.builtin.include_role:
        name: consul
        tasks_from: asserts.yml
"""


def run_asserts(tmp_path: Path, extra: dict[str, object]) -> tuple[int, str]:
    play = tmp_path / "asserts.yml"
    play.write_text(ASSERTS)
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    run = run_playbook(play, inventory(tmp_path), env, extra)
    return run.returncode, " ".join(run.output.split())


def test_archive_refuses_a_vulnerable_version_even_with_the_opt_in(tmp_path: Path) -> None:
    for opt_in in (False, True):
        rc, out = run_asserts(tmp_path, {"consul_version": TEST_VERSION,
                                         "consul_install_method": "archive",
                                         "consul_allow_vulnerable_version": opt_in})
        assert rc != 0, out[-3000:]
        assert "Consul 1.8.7 is older than consul_min_safe_version" in out, out[-3000:]
        assert "CVE-2021-37219" in out, out[-3000:]
        assert "The archive method never installs it" in out, out[-3000:]


def test_local_refuses_a_vulnerable_version_without_the_opt_in(tmp_path: Path) -> None:
    rc, out = run_asserts(tmp_path, {"consul_version": TEST_VERSION,
                                     "consul_install_method": "local"})
    assert rc != 0, out[-3000:]
    assert "Consul 1.8.7 is older than consul_min_safe_version" in out, out[-3000:]
    assert "consul_allow_vulnerable_version: true" in out, out[-3000:]


def test_local_with_the_opt_in_installs_it_with_a_warning(tmp_path: Path) -> None:
    rc, out = run_asserts(tmp_path, {"consul_version": TEST_VERSION,
                                     "consul_install_method": "local",
                                     "consul_allow_vulnerable_version": True})
    assert rc == 0, out[-3000:]
    assert "WARNING: installing Consul 1.8.7" in out, out[-3000:]
    assert "CVE-2021-37219" in out, out[-3000:]


@pytest.mark.parametrize("version", [str(DEFAULTS["consul_version"]), "1.22.0"])
def test_a_supported_version_passes_without_warning(tmp_path: Path, version: str) -> None:
    rc, out = run_asserts(tmp_path, {"consul_version": version})
    assert rc == 0, out[-3000:]
    assert "WARNING" not in out, out[-3000:]


def test_the_test_scenarios_opt_in() -> None:
    """inventories/local and the ha scenario install 1.8.7 locally: they opt in, explicitly."""
    local = yaml.safe_load((REPO / "inventories" / "local" / "group_vars" / "all.yml").read_text())
    assert local["consul_allow_vulnerable_version"] is True
    assert local["consul_install_method"] == "local"
    ha = yaml.safe_load((REPO / "molecule" / "ha" / "molecule.yml").read_text())
    ha_vars = ha["provisioner"]["inventory"]["group_vars"]["all"]
    assert ha_vars["consul_install_method"] == "local"
    assert ha_vars["consul_allow_vulnerable_version"] is True
    assert ha_vars["consul_version"] == TEST_VERSION
