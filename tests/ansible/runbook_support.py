"""Real Strongroom nodes on TLS, an inventory that reaches them, and ansible-playbook runs.

Used by test_runbooks.py. The hosts of the inventory are local (ansible_connection=local)
and every API call of the roles goes from the controller to ``strongroom_api_addr``, the
node's real HTTPS listener, verified against a CA written where the roles look for it
(``{{ inventory_dir }}/.secrets/pki/ca.pem``).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import resource
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.servers import REPO

ANSIBLE_BIN = Path(sys.executable).parent
VAULT_PASSWORD = "correct horse battery staple"

FILE_NODE = """
storage "file" {{
  path = "{workdir}/data"
}}
listener "tcp" {{
  address       = "127.0.0.1:{port}"
  tls_cert_file = "%(cert)s"
  tls_key_file  = "%(key)s"
}}
disable_mlock = true
workers       = 1
"""

# Like tests/support/ha.py's nodes, but the API listener speaks TLS.
HA_NODE = """
storage "consul" {{
  address = "%(consul)s"
  path    = "%(prefix)s"
  token   = "%(token)s"
}}
listener "tcp" {{
  address       = "127.0.0.1:{port}"
  tls_cert_file = "%(cert)s"
  tls_key_file  = "%(key)s"
}}
api_addr      = "https://127.0.0.1:{port}"
cluster_addr  = "https://127.0.0.1:%(cluster_port)d"
disable_mlock = true
workers       = 1
"""


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_pki(inventory_dir: Path) -> Pki:
    """A CA in .secrets/pki/ca.pem (where strongroom_ca_file points) and a 127.0.0.1 cert."""
    pki = inventory_dir / ".secrets" / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runbook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = Pki(pki / "ca.pem", pki / "node.pem", pki / "node-key.pem")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(_pem_key(key))
    out.key.chmod(0o600)
    return out


def file_node_config(pki: Pki) -> str:
    return FILE_NODE % {"cert": pki.cert, "key": pki.key}


def ha_node_config(pki: Pki, consul: str, prefix: str, token: str, cluster_port: int) -> str:
    return HA_NODE % {"cert": pki.cert, "key": pki.key, "consul": consul, "prefix": prefix,
                      "token": token, "cluster_port": cluster_port}


def write_inventory(inventory_dir: Path, nodes: dict[str, str],
                    consul_hosts: tuple[str, ...] = ("consul1",),
                    addr_from_defaults: bool = False) -> Path:
    """strongroom_servers = ``nodes`` (name -> API URL), consul_servers = ``consul_hosts``.

    With ``addr_from_defaults`` each host gets ansible_host and strongroom_api_port
    instead of strongroom_api_addr, which then comes from strongroom_ops' defaults (as in
    the Molecule scenarios and the production example): hostvars does not show it.
    Polling is fast here (0.2 s) and waits short (30 s) so that a failure shows quickly.
    """
    strongroom: dict[str, dict[str, object]] = {}
    for name, url in nodes.items():
        if addr_from_defaults:
            parsed = urllib.parse.urlsplit(url)
            strongroom[name] = {"ansible_host": parsed.hostname, "strongroom_api_port": parsed.port}
        else:
            strongroom[name] = {"strongroom_api_addr": url}
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "strongroom_poll_delay": 0.2,
                "strongroom_ready_timeout": 30,
            },
            "children": {
                "strongroom_servers": {"hosts": strongroom},
                "consul_servers": {"hosts": {name: {} for name in consul_hosts}},
            },
        }
    }
    path = inventory_dir / "hosts.yml"
    path.write_text(json.dumps(inventory, indent=2))  # JSON is YAML
    return path


def vault_password_file(directory: Path) -> Path:
    path = directory / "vault-password"
    path.write_text(VAULT_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def ansible_env(tmp_path: Path, vault_password: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "VAULT_", "STRONGROOM_"))}
    env.update({
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(vault_password),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_PIPELINING": "1",
    })
    return env


@dataclass
class Run:
    returncode: int
    output: str  # stdout and stderr together
    seconds: float
    cpu_seconds: float  # user + system time of ansible-playbook and everything it ran
    name: str = ""

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters per host: {"sr1": {"ok": 5, "changed": 0, ...}}."""
        counters: dict[str, dict[str, int]] = {}
        lines = self.output.split("PLAY RECAP", 1)[-1].splitlines()[1:]
        for line in lines:
            host, sep, rest = line.partition(":")
            if not sep or "=" not in rest:
                continue
            counters[host.strip()] = {k: int(v) for k, v in
                                      (item.split("=") for item in rest.split())}
        return counters


def playbook_args(playbook: str | Path, inventory: Path, extra: dict[str, object] | None = None,
                  verbose: bool = True) -> list[str]:
    """ansible-playbook with -v (so that a leak would show), extra vars as JSON."""
    args = [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if verbose:
        args.append("-v")
    if extra:
        args += ["-e", json.dumps(extra)]
    return args


def start_playbook(playbook: str | Path, inventory: Path, env: dict[str, str],
                   extra: dict[str, object] | None = None) -> subprocess.Popen[str]:
    """Start a run without waiting (several refusals run side by side)."""
    return subprocess.Popen(playbook_args(playbook, inventory, extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=inventory.parent)


def run_playbook(playbook: str | Path, inventory: Path, env: dict[str, str],
                 extra: dict[str, object] | None = None, timeout: float = 240) -> Run:
    """Run from the inventory's directory (outside the repository) and wait."""
    started, cpu = time.monotonic(), _children_cpu()
    res = subprocess.run(playbook_args(playbook, inventory, extra), capture_output=True,
                         text=True, env=env, timeout=timeout, cwd=inventory.parent, check=False)
    return Run(res.returncode, res.stdout + res.stderr, time.monotonic() - started,
               _children_cpu() - cpu)


def render_templates(tmp_path: Path, play_text: str, inventory: Path,
                     extra: dict[str, object]) -> Path:
    """Run ``play_text`` (template tasks writing under ``{{ out }}``) and return ``out``."""
    out = tmp_path / "out"
    out.mkdir()
    play = tmp_path / "render.yml"
    play.write_text(play_text)
    env = ansible_env(tmp_path, vault_password_file(tmp_path))
    run = run_playbook(play, inventory, env, {"out": str(out), **extra})
    assert run.returncode == 0, run.output[-4000:]
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
