"""Start real Consul agents for integration tests.

``consul_dev_agent`` runs one ``consul agent -dev`` (in-memory, no ACLs) on free
ports: fast, for the backend contract tests. ``consul_cluster`` runs three real
servers with ACLs on fixed loopback addresses 127.0.0.11-13 (ports 8500/8301/8300
on each), as a production cluster would be laid out, for ACL, fencing and
failover tests.

Because the cluster's addresses are fixed, at most one cluster runs per machine:
a cluster holds an exclusive ``flock`` while it lives, and records its agents'
PIDs so the next cluster can kill agents a crashed run (SIGKILLed pytest) left
behind. Agents also get ``PR_SET_PDEATHSIG`` so they die with the test process.

The binary is ``$STRONGROOM_CONSUL_BIN`` or ``consul`` on PATH
(``scripts/install-consul.sh`` installs 1.8.7).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from tests.support.servers import free_port

CLUSTER_IPS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
HTTP_PORT, SERF_LAN_PORT, SERVER_PORT = 8500, 8301, 8300
_STATE_DIR = Path(tempfile.gettempdir()) / "strongroom-consul-cluster"
_PR_SET_PDEATHSIG = 1

# What Strongroom needs from Consul, as Vault documents for its consul backend:
# its KV prefix, sessions (HA lock), node reads (session node checks) and
# service registration. Consul 1.8 rule syntax (HCL, *_prefix "" = everything).
STRONGROOM_RULES = """
key_prefix "{prefix}" {{ policy = "write" }}
session_prefix "" {{ policy = "write" }}
node_prefix "" {{ policy = "read" }}
service_prefix "" {{ policy = "write" }}
"""


def consul_binary() -> str | None:
    """The consul executable to run, or None if there is none."""
    return os.environ.get("STRONGROOM_CONSUL_BIN") or shutil.which("consul")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    binary = consul_binary()
    if binary is None:
        raise RuntimeError("consul is not installed: run scripts/install-consul.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [binary, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, preexec_fn=_die_with_parent,
        )


def _end(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} within {timeout:g}s")
        time.sleep(interval)


@dataclass
class ConsulDevAgent:
    """A single in-memory dev agent; ACLs off."""

    address: str  # http URL
    host_port: str  # "127.0.0.1:PORT", the form Strongroom's ``address`` option takes
    proc: subprocess.Popen[bytes]
    tls: TlsFiles | None = None  # with tls=True: HTTPS on ``https_host_port``, mTLS required
    https_host_port: str = ""

    def stop(self) -> None:
        _end(self.proc)


@dataclass
class TlsFiles:
    """PEM files made by ``consul tls``: the CA, and a client certificate it signed."""

    ca_file: Path
    client_cert: Path
    client_key: Path


def _make_tls(workdir: Path) -> tuple[TlsFiles, dict[str, Any]]:
    """A CA, a server cert (SANs localhost, 127.0.0.1) and a client cert, via ``consul tls``."""
    binary = consul_binary() or "consul"
    for args in (["ca", "create"], ["cert", "create", "-server", "-dc", "dc1"],
                 ["cert", "create", "-client", "-dc", "dc1"]):
        subprocess.run([binary, "tls", *args], cwd=workdir, check=True, capture_output=True)
    files = TlsFiles(workdir / "consul-agent-ca.pem", workdir / "dc1-client-consul-0.pem",
                     workdir / "dc1-client-consul-0-key.pem")
    config = {"ca_file": str(files.ca_file),
              "cert_file": str(workdir / "dc1-server-consul-0.pem"),
              "key_file": str(workdir / "dc1-server-consul-0-key.pem"),
              "verify_incoming_https": True}  # Consul 1.8's name for "HTTPS needs a client cert"
    return files, config


@contextmanager
def consul_dev_agent(workdir: Path, tls: bool = False,
                     timeout: float = 20) -> Iterator[ConsulDevAgent]:
    """Run ``consul agent -dev`` on free ports until the block exits.

    With ``tls``, the agent also serves HTTPS (requiring a client certificate)
    on a second port; plain HTTP stays on for the readiness check.
    """
    workdir = Path(workdir) / f"consul-dev-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    http, serf, server = free_port(), free_port(), free_port()
    ports = {"http": http, "serf_lan": serf, "server": server, "dns": -1, "serf_wan": -1,
             "grpc": -1}
    config: dict[str, Any] = {"ports": ports, "disable_update_check": True}
    files = None
    if tls:
        files, tls_config = _make_tls(workdir)
        ports["https"] = free_port()
        config.update(tls_config)
    config_file = workdir / "dev.json"
    config_file.write_text(json.dumps(config))
    proc = _spawn(["agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
                   "-node", f"sr-dev-{workdir.name}", "-config-file", str(config_file)],
                  workdir / "consul.log")
    agent = ConsulDevAgent(f"http://127.0.0.1:{http}", f"127.0.0.1:{http}", proc, files,
                           f"127.0.0.1:{ports['https']}" if tls else "")
    try:
        def leader() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"consul dev agent exited, see {workdir / 'consul.log'}")
            reply = requests.get(agent.address + "/v1/status/leader", timeout=1)
            return reply.status_code == 200 and reply.json() != ""

        _poll(leader, timeout, "consul dev agent elected no leader")
        yield agent
    finally:
        agent.stop()


@dataclass
class ConsulCluster:
    """Three ACL-enabled Consul servers on 127.0.0.11-13."""

    workdir: Path
    management_token: str
    addresses: list[str] = field(default_factory=lambda: [f"http://{ip}:{HTTP_PORT}"
                                                          for ip in CLUSTER_IPS])
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=lambda: [None] * 3)
    startup_seconds: float = 0.0
    _running: set[int] = field(default_factory=set)  # started and not deliberately killed

    @property
    def host_ports(self) -> list[str]:
        """Addresses in the ``host:port`` form of Strongroom's ``address`` option."""
        return [f"{ip}:{HTTP_PORT}" for ip in CLUSTER_IPS]

    def _config(self, index: int) -> Path:
        ip = CLUSTER_IPS[index]
        data_dir = self.workdir / f"server{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        joins = ", ".join(f'"{peer}"' for peer in CLUSTER_IPS if peer != ip)
        config = self.workdir / f"server{index}.hcl"
        config.write_text(f"""
node_name = "sr-consul-{index}"
datacenter = "dc1"
primary_datacenter = "dc1"
data_dir = "{data_dir}"
server = true
bootstrap_expect = 3
bind_addr = "{ip}"
client_addr = "{ip}"
retry_join = [{joins}]
retry_interval = "500ms"
ports {{
  http = {HTTP_PORT}
  serf_lan = {SERF_LAN_PORT}
  server = {SERVER_PORT}
  dns = -1
  serf_wan = -1
  grpc = -1
}}
performance {{ raft_multiplier = 1 }}
disable_update_check = true
leave_on_terminate = false
log_level = "info"
acl {{
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  enable_token_persistence = true
  tokens {{
    master = "{self.management_token}"
    agent = "{self.management_token}"
  }}
}}
""")
        return config

    def start(self, index: int) -> None:
        """(Re)start server ``index`` with its existing data dir."""
        if self.procs[index] is not None and self.procs[index].poll() is None:  # type: ignore[union-attr]
            return
        proc = _spawn(["agent", "-config-file", str(self._config(index))],
                      self.workdir / f"server{index}.log")
        self.procs[index] = proc
        self._running.add(index)
        _record_pids(self.procs)

    def kill(self, index: int) -> None:
        """SIGKILL server ``index`` (a crash: no leave, no graceful step-down)."""
        self._running.discard(index)
        _end(self.procs[index])

    def alive(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def api(self, method: str, path: str, index: int | None = None, token: str | None = None,
            **kwargs: Any) -> requests.Response:
        """Call the HTTP API of server ``index`` (default: the first live one)."""
        index = self.alive()[0] if index is None else index
        headers = {"X-Consul-Token": token or self.management_token}
        return requests.request(method, self.addresses[index] + path, headers=headers,
                                timeout=kwargs.pop("timeout", 5), **kwargs)

    def leader_index(self) -> int | None:
        """Which server leads, as every live server agrees; None while there is none."""
        leaders = set()
        for i in self.alive():
            try:
                leaders.add(self.api("GET", "/v1/status/leader", index=i, timeout=1).json())
            except (requests.RequestException, ValueError):
                return None
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        host = leader.rpartition(":")[0] if leader else ""
        index = CLUSTER_IPS.index(host) if host in CLUSTER_IPS else None
        # Followers name a SIGKILLed leader until they notice it is gone.
        return index if index in self.alive() else None

    def wait_for_leader(self, timeout: float = 30) -> int:
        """Poll until a live server leads and ACLs answer on every live server."""
        def leader() -> int | None:
            self._check_running()
            index = self.leader_index()
            return None if index is None else index + 1  # truthy, even for server 0

        index: int = _poll(leader, timeout, "consul cluster elected no leader") - 1
        for i in self.alive():  # the leader initialises ACLs just after its election
            self._wait_token_known(i, self.management_token, timeout)
        for i in self.alive():  # a session needs its node registered with serfHealth passing
            self._wait_node_healthy(i, timeout)
        return index

    def _check_running(self) -> None:
        """Fail fast, with its log, if a server died on its own (e.g. a port in use)."""
        for index in sorted(self._running):
            proc = self.procs[index]
            if proc is not None and proc.poll() is not None:
                log = (self.workdir / f"server{index}.log").read_text(errors="replace")
                tail = "\n".join(log.splitlines()[-15:])
                raise RuntimeError(f"consul server {index} exited with {proc.returncode}:\n{tail}")

    def _wait_token_known(self, index: int, token: str, timeout: float) -> None:
        def known() -> bool:
            reply = self.api("GET", "/v1/acl/token/self", index=index, token=token, timeout=1)
            return reply.status_code == 200

        _poll(known, timeout, f"consul server {index} did not accept the token")

    def _wait_node_healthy(self, index: int, timeout: float) -> None:
        """Wait until server ``index`` is in the catalog with its serfHealth check passing.

        The leader registers members a moment after its election (or after a
        restart); until then Consul answers 500 to a session on that node.
        """
        def healthy() -> bool:
            reply = self.api("GET", f"/v1/health/node/sr-consul-{index}", index=index, timeout=1)
            checks = reply.json() if reply.status_code == 200 else []
            return any(c.get("CheckID") == "serfHealth" and c.get("Status") == "passing"
                       for c in checks)

        _poll(healthy, timeout, f"consul server {index} never registered as healthy")

    def make_token(self, prefix: str) -> str:
        """A token with Strongroom's rights on KV ``prefix``; returns its secret id."""
        name = f"strongroom-{uuid.uuid4().hex[:12]}"
        rules = STRONGROOM_RULES.format(prefix=prefix)
        reply = self.api("PUT", "/v1/acl/policy", json={"Name": name, "Rules": rules})
        reply.raise_for_status()
        reply = self.api("PUT", "/v1/acl/token",
                         json={"Description": name, "Policies": [{"Name": name}]})
        reply.raise_for_status()
        secret: str = reply.json()["SecretID"]
        for i in self.alive():  # followers apply the raft log a moment after the leader
            self._wait_token_known(i, secret, 10)
        return secret

    def stop(self) -> None:
        for index in range(len(self.procs)):
            self.kill(index)
        _record_pids([])


def _record_pids(procs: list[subprocess.Popen[bytes] | None]) -> None:
    pids = [str(p.pid) for p in procs if p is not None and p.poll() is None]
    (_STATE_DIR / "pids").write_text("\n".join(pids))


def _kill_leftovers() -> None:
    """Kill agents recorded by a previous cluster that died without cleaning up."""
    try:
        pids = (_STATE_DIR / "pids").read_text().split()
    except FileNotFoundError:
        return
    for pid in map(int, pids):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(cmdline) > 1 and cmdline[0].endswith(b"consul") and cmdline[1] == b"agent":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _poll(functools.partial(_gone, pid), 10, f"leftover consul {pid} did not die")


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@contextmanager
def consul_cluster(workdir: Path, servers: int = 3, acl: bool = True, timeout: float = 45,
                   lock_timeout: float = 240) -> Iterator[ConsulCluster]:
    """Run a 3-server ACL-enabled Consul cluster until the block exits.

    Yields once a leader is elected and the management token works everywhere;
    ``cluster.startup_seconds`` says how long that took (not counting the wait
    for another test process's cluster to finish, up to ``lock_timeout``).
    """
    global _cluster_in_process
    if servers != 3 or not acl:
        raise ValueError("only the 3-server cluster with ACLs is supported")
    if _cluster_in_process:  # flock would wait for ourselves forever
        raise RuntimeError("a consul cluster is already running in this process")
    _STATE_DIR.mkdir(exist_ok=True)
    with open(_STATE_DIR / "lock", "w") as lock:
        # One cluster per machine: the addresses are fixed.
        _poll(functools.partial(_try_lock, lock), lock_timeout,
              "another process kept the consul cluster addresses", interval=0.2)
        _cluster_in_process = True
        try:
            _kill_leftovers()
            cluster = ConsulCluster(Path(workdir) / f"consul-cluster-{uuid.uuid4().hex[:8]}",
                                    management_token=str(uuid.uuid4()))
            cluster.workdir.mkdir(parents=True)
            started = time.monotonic()
            try:
                for index in range(servers):
                    cluster.start(index)
                cluster.wait_for_leader(timeout)
                cluster.startup_seconds = time.monotonic() - started
                yield cluster
            finally:
                cluster.stop()
        finally:
            _cluster_in_process = False


_cluster_in_process = False


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
