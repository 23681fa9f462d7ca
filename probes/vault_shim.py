"""The ``vault`` command hvac's test harness runs, mapped to Strongroom (or OpenBao).

``probes/hvac_suite.py`` writes a tiny ``vault`` script that runs this file and puts it
first on PATH. hvac's harness (tests/utils/server_manager.py, tests/utils/__init__.py)
runs exactly three kinds of command:

- ``vault -version``: the first line must read ``Vault v<version> ...`` (hvac parses the
  second word). Strongroom has no Vault version of its own; the probe says which Vault API
  generation to claim (``PROBE_VAULT_VERSION``), and hvac's tests pick their expectations
  (and ``skipIf``s) from it.
- ``vault server -config=FILE``: started as ``python -m strongroom.cli.main server
  -config=FILE`` (``PYTHONPATH=PROBE_SERVER_PATH``) or ``bao server -config=FILE``.
- ``vault operator generate-root ... -decode ENC -otp OTP``: the same flags go to
  ``strongroom operator generate-root`` / ``bao operator generate-root``.

With PROBE_LISTENER_CLIENT_CA set (opt-in), ``tls_client_ca_file`` is added to the
config's TCP listeners first (see probes/README.md: cert auth).

Anything else is refused (exit 127) and recorded in ``$PROBE_STATE/unsupported.log`` so the
probe reports it instead of a test failing for an unexplained reason.

Why a wrapper process and not ``exec``: hvac stops a server with SIGKILL and never reads its
stdout/stderr pipes. A SIGKILLed Strongroom owner could leave its tmpfs ``inmem`` directory
behind, and a server whose log fills the unread pipe (64 KiB) would block. So the server runs
as this shim's child with its output in a log file, and ``PR_SET_PDEATHSIG`` turns the
shim's death (whatever the signal) into a SIGTERM for the server, which stops cleanly.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _state() -> Path:
    state = Path(os.environ.get("PROBE_STATE", "/tmp/strongroom-probe-state"))  # noqa: S108
    state.mkdir(parents=True, exist_ok=True)
    return state


def _target() -> str:
    return os.environ.get("PROBE_TARGET", "strongroom")


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: SIGTERM when the shim dies (SIGKILL included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the shim died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _command(args: list[str]) -> list[str]:
    """The real command for ``vault <args>``."""
    if _target() == "bao":
        return [os.environ.get("PROBE_BAO", "bao"), *args]
    return [sys.executable, "-m", "strongroom.cli.main", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    server_path = os.environ.get("PROBE_SERVER_PATH")
    if server_path and _target() == "strongroom":
        env["PYTHONPATH"] = server_path
    return env


def _with_client_ca(args: list[str], ca_file: str) -> list[str]:
    """``server -config=F`` with ``tls_client_ca_file`` added to F's TCP listeners (F is
    the JSON hvac's harness writes), in a copy: PROBE_LISTENER_CLIENT_CA (opt-in)."""
    out = []
    for arg in args:
        if arg.startswith("-config=") and arg.endswith(".json"):
            path = Path(arg.removeprefix("-config="))
            config = json.loads(path.read_text())
            listeners = config.get("listener", [])
            for stanza in listeners if isinstance(listeners, list) else [listeners]:
                if isinstance(stanza, dict) and isinstance(stanza.get("tcp"), dict):
                    stanza["tcp"].setdefault("tls_client_ca_file", ca_file)
            copy = _state() / f"client-ca-{os.getpid()}-{path.name}"
            copy.write_text(json.dumps(config, indent=2))
            arg = f"-config={copy}"
        out.append(arg)
    return out


def _server(args: list[str]) -> int:
    """Run the server as a child, its output in a log file; stop it with the shim."""
    ca_file = os.environ.get("PROBE_LISTENER_CLIENT_CA")
    if ca_file:
        args = _with_client_ca(args, ca_file)
    logs = _state() / "servers"
    logs.mkdir(exist_ok=True)
    stamp = f"{time.strftime('%H%M%S')}-{os.getpid()}"
    log_path = logs / f"{_target()}-{stamp}.log"
    parent = os.getpid()
    with open(log_path, "wb") as log:
        log.write(f"# vault {' '.join(args)}\n".encode())
        log.flush()
        proc = subprocess.Popen(_command(args), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_env(),
                                preexec_fn=lambda: _die_with_parent(parent))
        # The probe ends leftovers by these ids after pytest (only ours, never by name).
        # With the process's start time, so a reused pid is never mistaken for ours.
        with open(_state() / "server-pids", "a", encoding="ascii") as pids:
            pids.write(f"{proc.pid} {start_time(proc.pid)}\n")

        def forward(sig: int, _frame: object) -> None:
            proc.send_signal(sig)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, forward)
        return proc.wait()


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _unsupported(args: list[str]) -> int:
    with open(_state() / "unsupported.log", "a", encoding="utf-8") as log:
        log.write(" ".join(["vault", *args]) + "\n")
    print(f"vault shim ({_target()}): unsupported command: vault {' '.join(args)}",
          file=sys.stderr)
    return 127


def main(argv: list[str]) -> int:
    if not argv:
        return _unsupported(argv)
    if argv[0] in ("-version", "--version", "-v", "version"):
        version = os.environ.get("PROBE_VAULT_VERSION", "1.14.0")
        real = subprocess.run(_command(["-version"]), capture_output=True, text=True,
                              env=_env(), check=False).stdout.strip()
        print(f"Vault v{version} (probe shim for: {real or _target()})")
        return 0
    if argv[0] == "server":
        return _server(argv)
    if argv[:2] == ["operator", "generate-root"] and any(
            a == "-decode" or a.startswith("-decode=") for a in argv):
        return subprocess.run(_command(argv), env=_env(), check=False).returncode
    return _unsupported(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
