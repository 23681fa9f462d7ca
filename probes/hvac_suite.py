#!/usr/bin/env python3
"""Probe Strongroom (or OpenBao) with hvac's own integration tests.

hvac's tests start ``vault server -config=tests/config_files/vault-tls.hcl`` (their
tests/utils/server_manager.py), initialize and unseal it, and drive the API through hvac.
This script:

1. extracts hvac's ``tests/`` at the installed hvac's version (tag ``v<version>``) from a
   local mirror of hvac's git repository (or uses ``--hvac-src``): hvac's source is never
   copied into this repository;
2. puts a ``vault`` shim (probes/vault_shim.py) first on PATH, mapping the commands the
   harness runs to ``python -m strongroom.cli.main`` (or ``bao``);
3. runs each chosen test module with pytest from the extracted tree, one module at a time,
   and prints pass/fail/error/skip counts per module, the failing tests, and any ``vault``
   command the shim refused.

Run from the repository root: ``python probes/hvac_suite.py --help``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET  # noqa: S405 - our own pytest's junit file
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = Path("/work/.mirror/hvac+hvac/repo")
IT = "tests/integration_tests"

#: What Strongroom serves today: KV, transit, tokens, the system backend.
CORE = [
    f"{IT}/api/secrets_engines/test_kv_v1.py",
    f"{IT}/api/secrets_engines/test_kv_v2.py",
    f"{IT}/api/secrets_engines/test_transit.py",
    f"{IT}/api/auth_methods/test_token.py",
    f"{IT}/api/system_backend/test_audit.py",
    f"{IT}/api/system_backend/test_auth.py",
    f"{IT}/api/system_backend/test_health.py",
    f"{IT}/api/system_backend/test_init.py",
    f"{IT}/api/system_backend/test_key.py",
    f"{IT}/api/system_backend/test_leader.py",
    f"{IT}/api/system_backend/test_lease.py",
    f"{IT}/api/system_backend/test_mount.py",
    f"{IT}/api/system_backend/test_namespace.py",
    f"{IT}/api/system_backend/test_policies.py",
    f"{IT}/api/system_backend/test_policy.py",
    f"{IT}/api/system_backend/test_quota.py",
    f"{IT}/api/system_backend/test_raft.py",
    f"{IT}/api/system_backend/test_seal.py",
    f"{IT}/api/system_backend/test_wrapping.py",
    f"{IT}/v1/test_integration.py",
    f"{IT}/v1/test_system_backend.py",
]
#: Issue 15's auth methods (LDAP left out: hvac's LDAP tests need a Java in-memory server).
AUTH = [
    f"{IT}/api/auth_methods/test_approle.py",
    f"{IT}/api/auth_methods/test_cert.py",
    f"{IT}/api/secrets_engines/test_identity.py",
    f"{IT}/api/system_backend/test_auth.py",
    f"{IT}/v1/test_approle.py",
]
GROUPS = {"core": CORE, "auth": AUTH, "all": list(dict.fromkeys(CORE + AUTH))}


@dataclass
class ModuleResult:
    module: str
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""
    problems: list[str] = field(default_factory=list)  # "test id: first message line"


def hvac_version() -> str:
    return importlib.metadata.version("hvac")


def extract_tests(mirror: Path, ref: str, dest: Path) -> Path:
    """``git archive <ref> tests`` of the mirror into dest (hvac's own tests only)."""
    tree = dest / f"hvac-{ref}"
    if (tree / "tests").is_dir():
        return tree
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", f"--git-dir={mirror}", "archive", ref, "tests"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"cannot extract hvac {ref} from {mirror}: "
                         f"{archive.stderr.decode(errors='replace').strip()}")
    with tempfile.TemporaryFile() as tmp:
        tmp.write(archive.stdout)
        tmp.seek(0)
        with tarfile.open(fileobj=tmp) as tar:
            tar.extractall(tree, filter="data")
    return tree


def refresh_expired_certs(config_files: Path) -> list[str]:
    """Re-issue hvac's expired self-signed test certificates (same key, subject and
    extensions, ten more years). hvac 2.4.0's client-cert.pem expired on 2026-11-18: every
    server then refuses the cert-auth login test for that reason alone."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    now = datetime.datetime.now(datetime.UTC)
    refreshed = []
    for cert_path in sorted(config_files.glob("*-cert.pem")):
        key_path = cert_path.with_name(cert_path.name.replace("-cert", "-key"))
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc > now or cert.issuer != cert.subject or not key_path.exists():
            continue
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        builder = (x509.CertificateBuilder().subject_name(cert.subject)
                   .issuer_name(cert.subject).public_key(cert.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=3650)))
        for ext in cert.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        new = builder.sign(key, cert.signature_hash_algorithm)  # type: ignore[arg-type]
        cert_path.write_bytes(new.public_bytes(serialization.Encoding.PEM))
        refreshed.append(cert_path.name)
    return refreshed


def ensure_test_deps(cache: Path) -> list[str]:
    """hvac's tests import ``parameterized`` (and pyhcl, requests, packaging, which the
    project's venv has); install it into a private directory if it is missing."""
    if importlib.util.find_spec("parameterized") is not None:
        return []
    site = cache / "site"
    if not (site / "parameterized").is_dir():
        # hvac 2.4.0's lock pins 0.8.1.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site),
                        "parameterized==0.8.1"], check=True)
    return [str(site)]


def write_shims(bindir: Path) -> None:
    """``vault`` (probes/vault_shim.py) and, where a consul binary exists, ``consul``."""
    bindir.mkdir(parents=True, exist_ok=True)
    shim = bindir / "vault"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "probes" / "vault_shim.py"}"'
                    ' "$@"\n')
    shim.chmod(0o755)
    consul = shutil.which(os.environ.get("STRONGROOM_CONSUL_BIN", "consul"))
    if consul:
        # hvac's HA tests (two servers on one `consul agent -dev`) pass -grpc-tls-port=-1,
        # a flag of consul >= 1.14; the project's consul (scripts/install-consul.sh) is
        # 1.8.7, which refuses it. The flag only disables a listener 1.8 does not have.
        wrapper = bindir / "consul"
        wrapper.write_text(
            "#!/bin/sh\nfor a do shift; case $a in -grpc-tls-port=*) ;; *) set -- \"$@\" "
            f'"$a";; esac; done\nexec "{consul}" "$@"\n')
        wrapper.chmod(0o755)


def parse_junit(path: Path, result: ModuleResult) -> None:
    root = ET.parse(path).getroot()  # noqa: S314 - written by our own pytest run
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        message = ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                message = (child.get("message") or child.text or "").strip()
                break
        if outcome == "passed":
            result.passed += 1
        elif outcome == "failure":
            result.failed += 1
        elif outcome == "error":
            result.errors += 1
        else:
            result.skipped += 1
        if outcome in ("failure", "error") or (outcome == "skipped" and message):
            first = " ".join(message.split())[:240]
            result.problems.append(f"{outcome.upper():7} {name}: {first}")


def run_module(module: str, tree: Path, env: dict[str, str], out: Path,
               extra: list[str], timeout: int) -> ModuleResult:
    result = ModuleResult(module)
    if not (tree / module).exists():
        result.note = "not in this hvac version"
        return result
    stem = module.replace("/", "_").removesuffix(".py")
    junit = out / f"{stem}.xml"
    log = out / f"{stem}.log"
    args = [sys.executable, "-m", "pytest", module, "-p", "no:cacheprovider", "-p", "hvac_plugin",
            "-rfEs", f"--junitxml={junit}", "-o", "junit_family=xunit1", f"--timeout={timeout}",
            *extra]
    start = time.monotonic()
    with open(log, "wb") as sink:
        proc = subprocess.run(args, cwd=tree, env=env, stdout=sink, stderr=subprocess.STDOUT,
                              check=False)
    result.seconds = time.monotonic() - start
    if junit.exists():
        parse_junit(junit, result)
    if proc.returncode not in (0, 1, 5):
        result.note = f"pytest exit {proc.returncode}, see {log}"
    return result


def _ours_alive(pid: int, started: str) -> bool:
    """The process the shim started is still running (same pid and start time)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == started


def end_leftovers(state: Path, grace: float = 15.0) -> list[int]:
    """Servers the shim started that still run after a grace period (hvac's harness kills
    the shim, the server then stops by itself): SIGTERM, then SIGKILL, by their ids."""
    pids_file = state / "server-pids"
    if not pids_file.exists():
        return []
    servers = [(int(pid), started) for pid, started in
               (line.split() for line in pids_file.read_text().splitlines() if line)]
    deadline = time.monotonic() + grace
    while any(_ours_alive(*s) for s in servers) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = [pid for pid, started in servers if _ours_alive(pid, started)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in servers:
            if _ours_alive(pid, started):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while any(_ours_alive(*s) for s in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
    pids_file.unlink()
    return leftovers


def print_table(results: list[ModuleResult], target: str) -> None:
    width = max(len(r.module) for r in results) - len(IT) - 1
    print(f"\nhvac {hvac_version()} integration tests against {target}")
    print(f"{'module':<{width}} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5} {'sec':>6}")
    total = ModuleResult("total")
    for r in results:
        name = r.module.removeprefix(IT + "/")
        print(f"{name:<{width}} {r.passed:>5} {r.failed:>5} {r.errors:>5} {r.skipped:>5} "
              f"{r.seconds:>6.0f} {r.note}")
        total.passed += r.passed
        total.failed += r.failed
        total.errors += r.errors
        total.skipped += r.skipped
        total.seconds += r.seconds
    print(f"{'total':<{width}} {total.passed:>5} {total.failed:>5} {total.errors:>5} "
          f"{total.skipped:>5} {total.seconds:>6.0f}")


def print_problems(results: list[ModuleResult]) -> None:
    """Failures, errors and skips, one line per distinct message (ports masked) with the
    tests that gave it; --json has every test with its message."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        for problem in r.problems:
            head, _, message = problem.partition(": ")
            outcome, _, test = head.partition(" ")
            message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", message)
            key = (r.module.removeprefix(IT + "/"), outcome.strip(), message)
            groups.setdefault(key, []).append(test.strip().rsplit(".", 1)[-1])
    if groups:
        print("\nfailures, errors and skips (distinct messages):")
    for (module, outcome, message), tests in groups.items():
        names = ", ".join(tests)
        if len(names) > 300:
            names = names[:297] + "..."
        print(f"  [{module}] {outcome} x{len(tests)}: {message}\n      {names}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*",
                        help="hvac test modules (paths from hvac's root) or groups: "
                             + ", ".join(GROUPS) + " (default: core)")
    parser.add_argument("--target", choices=("strongroom", "bao"), default="strongroom")
    parser.add_argument("--server-path", default=str(REPO / "server"),
                        help="PYTHONPATH of the Strongroom server (default: this tree's)")
    parser.add_argument("--bao", default=shutil.which("bao") or str(REPO / ".venv/bin/bao"),
                        help="the bao binary for --target bao")
    parser.add_argument("--hvac-src", type=Path,
                        help="an hvac source tree to take tests/ from (default: extract it "
                             "from --mirror at the installed hvac's tag)")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR,
                        help="a bare git repository of hvac")
    parser.add_argument("--ref", help="git ref to extract (default: v<installed hvac>)")
    parser.add_argument("--vault-version", default="1.14.0",
                        help="the Vault version `vault -version` claims: hvac's tests choose "
                             "expectations by it (default 1.14.0: OpenBao 2.x's lineage)")
    parser.add_argument("--workdir", type=Path,
                        help="where logs, junit files and the extracted tests go "
                             "(default: a new temp dir)")
    parser.add_argument("--keep-expired-certs", action="store_true",
                        help="do not re-issue hvac's expired self-signed test certificates")
    parser.add_argument("--patch-hvac-cert-login", action="store_true",
                        help="work around hvac 2.4.0's Cert.login sending cert=(path, '') "
                             "so test_cert.py's logins reach the server (probes/hvac_plugin.py)")
    parser.add_argument("--listener-client-ca", metavar="FILE",
                        help="add tls_client_ca_file=FILE (relative: to hvac's "
                             "tests/config_files) to every server's TCP listeners")
    parser.add_argument("--record", action="store_true",
                        help="keep every API exchange's shape in "
                             "<workdir>/record-<target>.jsonl (compare two targets with "
                             "probes/hvac_diff.py)")
    parser.add_argument("--timeout", type=int, default=180, help="per test, seconds")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args()

    modules: list[str] = []
    for item in opts.modules or ["core"]:
        modules.extend(GROUPS.get(item, [item]))
    modules = list(dict.fromkeys(modules))

    work = opts.workdir or Path(tempfile.mkdtemp(prefix="hvac-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    ref = opts.ref or f"v{hvac_version()}"
    tree = opts.hvac_src or extract_tests(opts.mirror, ref, work)
    # An empty ini keeps pytest from picking up any configuration outside the tree.
    if not (tree / "pytest.ini").exists() and opts.hvac_src is None:
        (tree / "pytest.ini").write_text("[pytest]\n")
    refreshed = [] if opts.keep_expired_certs else refresh_expired_certs(
        tree / "tests" / "config_files")
    if refreshed:
        print(f"re-issued expired test certificates: {', '.join(refreshed)}")
    state = work / f"state-{opts.target}"
    out = work / f"results-{opts.target}"
    out.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    bindir = work / "bin"
    write_shims(bindir)

    env = dict(os.environ)
    extra_paths = ensure_test_deps(Path.home() / ".cache" / "strongroom-probe")
    # The test process: the installed hvac, hvac's tests (cwd), our plugin; not the server.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "probes"), *extra_paths])
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env.update(PROBE_TARGET=opts.target, PROBE_STATE=str(state),
               PROBE_SERVER_PATH=str(Path(opts.server_path).resolve()),
               PROBE_VAULT_VERSION=opts.vault_version, PROBE_BAO=opts.bao,
               HVAC_OUTPUT_VAULT_STDERR="",
               PROBE_PATCH_CERT_LOGIN="1" if opts.patch_hvac_cert_login else "0")
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "VAULT_CLIENT_CERT",
                 "VAULT_CLIENT_KEY", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    if opts.listener_client_ca:
        env["PROBE_LISTENER_CLIENT_CA"] = str(tree / "tests" / "config_files"
                                              / opts.listener_client_ca)
    if opts.record:
        record = work / f"record-{opts.target}.jsonl"
        record.unlink(missing_ok=True)
        env["PROBE_RECORD"] = str(record)
    extra = ["-k", opts.keyword] if opts.keyword else []

    print(f"hvac tests: {tree}/tests ({ref}); logs: {out}; server logs: {state}/servers",
          flush=True)
    results = []
    for module in modules:
        print(f"  running {module} ...", flush=True)
        result = run_module(module, tree, env, out, extra, opts.timeout)
        results.append(result)
        leftovers = end_leftovers(state)
        if leftovers:
            result.note += f" (ended {len(leftovers)} leftover server(s))"

    print_table(results, opts.target)
    print_problems(results)
    unsupported = state / "unsupported.log"
    if unsupported.exists():
        print("\nvault commands the shim does not map:")
        for line in sorted(set(unsupported.read_text().splitlines())):
            print(f"  {line}")
    if opts.json:
        opts.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 1 if any(r.failed or r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
