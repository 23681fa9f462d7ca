"""The hvac probe's own pieces (probes/), without hvac's tests or a server.

The probe itself is not part of the CI run (it needs hvac's repository), but what it
relies on from this tree is: `strongroom -version` answering, the shim's mapping of the
`vault` commands hvac's harness runs, its junit reading, and the certificate refresh.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "probes" / "vault_shim.py"
sys.path.insert(0, str(REPO / "probes"))

import hvac_suite  # noqa: E402 - probes/ is not a package


def shim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PROBE_STATE": str(tmp_path / "state"),
           "PROBE_SERVER_PATH": str(REPO / "server"), "PROBE_VAULT_VERSION": "1.14.0"}
    return subprocess.run([sys.executable, str(SHIM), *args], capture_output=True, text=True,
                          env=env, check=False, timeout=60)


def test_version_is_what_hvac_parses(tmp_path: Path) -> None:
    out = shim(tmp_path, "-version")
    assert out.returncode == 0
    # hvac's tests/utils: output.strip().split()[1].lstrip("v"), VERSION_REGEX.
    assert out.stdout.strip().split()[1].lstrip("v") == "1.14.0"
    assert re.match(r"Vault v([0-9.]+)", out.stdout)
    assert "Strongroom v" in out.stdout  # the real server answered -version


def test_unmapped_commands_are_refused_and_recorded(tmp_path: Path) -> None:
    out = shim(tmp_path, "secrets", "enable", "pki")
    assert out.returncode == 127
    assert "unsupported command: vault secrets enable pki" in out.stderr
    assert (tmp_path / "state" / "unsupported.log").read_text() == "vault secrets enable pki\n"


def test_junit_counts(tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    junit.write_text(
        '<testsuites><testsuite tests="4">'
        '<testcase classname="m.C" name="ok"/>'
        '<testcase classname="m.C" name="bad"><failure message="AssertionError: x&#10;y"/>'
        '</testcase>'
        '<testcase classname="m.C" name="err"><error message="boom"/></testcase>'
        '<testcase classname="m.C" name="skip"><skipped message="Enterprise only"/></testcase>'
        "</testsuite></testsuites>")
    result = hvac_suite.ModuleResult("m")
    hvac_suite.parse_junit(junit, result)
    assert (result.passed, result.failed, result.errors, result.skipped) == (1, 1, 1, 1)
    assert result.problems[0] == "FAILURE m.C::bad: AssertionError: x y"


def self_signed(path: Path, key_path: Path, days: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert


def test_expired_self_signed_certificates_are_reissued(tmp_path: Path) -> None:
    old = self_signed(tmp_path / "client-cert.pem", tmp_path / "client-key.pem", days=-1)
    valid = self_signed(tmp_path / "server-cert.pem", tmp_path / "server-key.pem", days=30)
    assert hvac_suite.refresh_expired_certs(tmp_path) == ["client-cert.pem"]
    new = x509.load_pem_x509_certificate((tmp_path / "client-cert.pem").read_bytes())
    assert new.subject == old.subject and new.public_key() == old.public_key()
    assert list(new.extensions) == list(old.extensions)
    assert new.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
    new.verify_directly_issued_by(new)
    kept = x509.load_pem_x509_certificate((tmp_path / "server-cert.pem").read_bytes())
    assert kept == valid
