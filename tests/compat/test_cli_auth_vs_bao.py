"""``strongroom auth ...`` and ``strongroom login -method=...`` side by side with ``bao``.

Both CLIs run as subprocesses against the same real server, and the outputs are compared
after replacing what differs per run (tokens, accessors, UUIDs, times, the mount names
each CLI used) and the product names; the servers are a Strongroom dev server (several
workers) and an OpenBao dev server, so each comparison also shows that Strongroom's
answers read the same through the reference client. One known difference: ``bao login``
has no approle handler ("Unknown auth method"), ``strongroom login -method=approle`` has.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import requires
from tests.support.servers import REPO, ServerProcess, bao_dev_server, strongroom_dev_server

ROOT = "root"
TIMEOUT = 60
LAUNCHERS: dict[str, Callable[[Path, str], AbstractContextManager[ServerProcess]]] = {
    "bao": bao_dev_server,
    "strongroom": strongroom_dev_server,
}
SUBS = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:hv)?([sb])\.[A-Za-z0-9_-]{20,}"), r"<token \1>"),
    (re.compile(r"\b[A-Za-z0-9]{24}\b"), "<accessor>"),
    (re.compile(r"\bauth_\w+?_[0-9a-f]{8}\b"), "<auth accessor>"),
    (re.compile(r"\bv\d+\.\d+\.\d+(-\w+)?\+builtin\.\w+"), "<builtin version>"),
    (re.compile(r"\b(bao|strongroom|OpenBao|Strongroom|Vault)\b"), "<cli>"),
    (re.compile(r"\b(BAO|STRONGROOM|VAULT)_"), "<CLI>_"),
    # Prose is wrapped at 80 columns by both, around names of different lengths, and
    # tables are padded to their widest cell: compare the words, in order.
    (re.compile(r"\s+"), " "),
]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    requires.bao()
    with ExitStack() as stack:
        yield {kind: stack.enter_context(launch(tmp_path_factory.mktemp(kind), ROOT))
               for kind, launch in LAUNCHERS.items()}


@pytest.fixture(params=sorted(LAUNCHERS))
def srv(request: pytest.FixtureRequest, servers: dict[str, ServerProcess]) -> ServerProcess:
    srv = servers[request.param]
    srv.env["kind"] = request.param
    return srv


def cli(kind: str, srv: ServerProcess, *args: str, home: Path, token: str | None = ROOT,
        stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """Run ``bao ARGS`` or ``strongroom ARGS`` against ``srv``."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    base.update(VAULT_ADDR=srv.url, BAO_ADDR=srv.url, HOME=str(home), **(env or {}))
    if token is not None:
        base.update(VAULT_TOKEN=token, BAO_TOKEN=token)
    if kind == "bao":
        argv = [requires.bao(), *args]
    else:
        base["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "server"), os.environ.get("PYTHONPATH", "")) if p)
        argv = [sys.executable, "-m", "strongroom.cli.main", *args]
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=base,
                          timeout=TIMEOUT, cwd=home, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def norm(text: str, srv: ServerProcess, names: dict[str, str]) -> str:
    # bao prints token_meta_* rows in Go's random map order; ours are sorted
    lines = text.splitlines()
    meta = iter(sorted(line for line in lines if line.startswith("token_meta_")))
    text = "\n".join(next(meta) if line.startswith("token_meta_") else line for line in lines)
    text = text.replace(srv.url, "<addr>")
    for real, placeholder in names.items():
        text = text.replace(real, placeholder)
    for pattern, repl in SUBS:
        text = pattern.sub(repl, text)
    return text.strip()


def both(srv: ServerProcess, tmp_path: Path, build: Callable[[str], list[str]],
         stdin: str = "", token: str | None = ROOT,
         env: dict[str, str] | None = None) -> dict[str, Run]:
    """Run the command ``build(kind)`` makes with each CLI (each its own HOME)."""
    return {kind: cli(kind, srv, *build(kind), home=tmp_path / f"home-{kind}", stdin=stdin,
                      token=token, env=env) for kind in ("bao", "strongroom")}


def same(runs: dict[str, Run], srv: ServerProcess, names: dict[str, str] | None = None,
         stderr: bool = True) -> None:
    """The exit codes and normalised outputs of both CLIs are equal."""
    names = names or {}
    seen = {kind: (r.code, norm(r.out, srv, names), norm(r.err, srv, names) if stderr else "")
            for kind, r in runs.items()}
    assert seen["strongroom"] == seen["bao"], (seen["bao"], seen["strongroom"])


def api(srv: ServerProcess, method: str, path: str, body: dict[str, Any] | None = None,
        token: str = ROOT) -> dict[str, Any]:
    resp = requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=10,
                            headers={"X-Vault-Token": token})
    assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
    return resp.json() if resp.status_code == 200 else {}


def mounts(tag: str) -> dict[str, str]:
    """Per-CLI mount names (so both CLIs' commands can run on one server), normalised away."""
    return {"bao": f"b{tag}", "strongroom": f"s{tag}"}


# --- auth enable | list | tune | disable -----------------------------------------------


def test_enable_list_tune_disable(srv: ServerProcess, tmp_path: Path) -> None:
    m = mounts("up1")
    names = {m["bao"]: "<mount>", m["strongroom"]: "<mount>"}
    runs = both(srv, tmp_path, lambda k: [
        "auth", "enable", f"-path={m[k]}", "-description=people", "-default-lease-ttl=1h",
        "-max-lease-ttl=2h", "-listing-visibility=unauth", "-token-type=default-service",
        "-audit-non-hmac-request-keys=username", "userpass"])
    same(runs, srv, names)
    assert runs["strongroom"].out.strip() == (
        f"Success! Enabled userpass auth method at: {m['strongroom']}/")
    listed = both(srv, tmp_path, lambda k: ["auth", "list", "-format=json"])
    docs = {k: r.json() for k, r in listed.items()}
    for kind in ("bao", "strongroom"):
        # each CLI sees both mounts: compare the one each made
        mine = {**docs[kind][m[kind] + "/"], "accessor": "", "uuid": ""}
        theirs = {**docs["bao"][m["bao"] + "/"], "accessor": "", "uuid": ""}
        assert mine == theirs, kind
    assert docs["strongroom"][m["strongroom"] + "/"]["config"] == {
        "default_lease_ttl": 3600, "max_lease_ttl": 7200, "force_no_cache": False,
        "audit_non_hmac_request_keys": ["username"], "listing_visibility": "unauth",
        "token_type": "default-service"}
    tables = both(srv, tmp_path, lambda k: ["auth", "list"])
    same(tables, srv, names)
    assert re.search(rf"^{m['strongroom']}/ +userpass +auth_userpass_\w+ +people +n/a$",
                     tables["strongroom"].out, re.M), tables["strongroom"].out
    same(both(srv, tmp_path, lambda k: ["auth", "list", "-detailed"]), srv, names)
    tuned = both(srv, tmp_path, lambda k: [
        "auth", "tune", "-default-lease-ttl=30m", "-description=staff",
        "-listing-visibility=hidden", "-token-type=service", f"{m[k]}/"])
    same(tuned, srv, names)
    for kind in ("bao", "strongroom"):
        tune = api(srv, "GET", f"sys/auth/{m[kind]}/tune")["data"]
        assert (tune["default_lease_ttl"], tune["max_lease_ttl"], tune["description"],
                tune["token_type"]) == (1800, 7200, "staff", "service"), kind
    # a negative duration resets to the system default, as vault's ttlToAPI
    same(both(srv, tmp_path, lambda k: ["auth", "tune", "-max-lease-ttl=-1s", m[k]]),
         srv, names)
    for kind in ("bao", "strongroom"):
        assert api(srv, "GET", f"sys/auth/{m[kind]}/tune")["data"]["max_lease_ttl"] > 7200
    gone = both(srv, tmp_path, lambda k: ["auth", "disable", m[k]])
    same(gone, srv, names)
    assert "Success! Disabled the auth method (if it existed) at:" in gone["strongroom"].out
    listed = both(srv, tmp_path, lambda k: ["auth", "list", "-format=json"])
    assert not {m["bao"] + "/", m["strongroom"] + "/"} & set(listed["strongroom"].json())


@pytest.mark.parametrize("args", [
    ("auth", "enable"),
    ("auth", "enable", "a", "b"),
    ("auth", "disable"),
    ("auth", "tune"),
    ("auth", "list", "extra"),
    ("auth", "list", "-format=xml"),
    ("auth", "enable", "-path=bad1", "no-such-method"),
    ("auth", "tune", "-default-lease-ttl=1h", "never-enabled"),
    ("auth", "enable", "-path=token", "userpass"),
], ids=" ".join)
def test_errors_match(srv: ServerProcess, tmp_path: Path, args: tuple[str, ...]) -> None:
    runs = both(srv, tmp_path, lambda k: list(args))
    assert runs["strongroom"].code == runs["bao"].code, runs
    first = {k: norm(r.err.splitlines()[0] if r.err else "", srv, {}) for k, r in runs.items()}
    assert first["strongroom"] == first["bao"], runs
    if runs["bao"].code == 2:  # an API error: the server's message is shown the same way
        assert "Code:" in runs["strongroom"].err or "Error" in runs["strongroom"].err


def test_least_privilege_token(srv: ServerProcess, tmp_path: Path) -> None:
    """A token allowed only to read sys/auth can list, and is refused the rest, alike."""
    api(srv, "PUT", "sys/policies/acl/auth-reader",
        {"policy": 'path "sys/auth" {\n  capabilities = ["read"]\n}\n'})
    token = api(srv, "POST", "auth/token/create",
                {"policies": ["auth-reader"]})["auth"]["client_token"]
    listed = both(srv, tmp_path, lambda k: ["auth", "list", "-format=json"], token=token)
    assert "token/" in listed["strongroom"].json()
    refused = both(srv, tmp_path, lambda k: ["auth", "enable", "-path=nope", "userpass"],
                   token=token)
    same(refused, srv)
    assert refused["strongroom"].code == 2 and "Code: 403" in refused["strongroom"].err


# --- login -----------------------------------------------------------------------------


@pytest.fixture
def userpass(srv: ServerProcess) -> str:
    """A userpass mount with user alice (policy 'reader'); returns the mount path."""
    mount = "people"
    if mount + "/" not in api(srv, "GET", "sys/auth")["data"]:
        api(srv, "POST", f"sys/auth/{mount}", {"type": "userpass"})
        api(srv, "PUT", "sys/policies/acl/reader",
            {"policy": 'path "secret/*" {\n  capabilities = ["read"]\n}\n'})
        api(srv, "POST", f"auth/{mount}/users/alice",
            {"password": "correct horse", "token_policies": ["reader"], "token_ttl": "1h"})
    return mount


def login_args(mount: str, *more: str) -> Callable[[str], list[str]]:
    return lambda kind: ["login", "-method=userpass", f"-path={mount}", *more]


def test_userpass_login_outputs_match(srv: ServerProcess, userpass: str,
                                      tmp_path: Path) -> None:
    runs = both(srv, tmp_path, login_args(userpass, "-no-store", "-format=json",
                                          "username=alice", "password=correct horse"),
                token=None)
    docs = {k: r.json() for k, r in runs.items()}
    for doc in docs.values():
        doc["auth"].update(client_token="", accessor="", entity_id="")
        doc.pop("request_id")
        # HashiCorp Vault's api.Secret (ours) has mount_type, OpenBao's does not
        doc.pop("mount_type", None)
    assert docs["strongroom"] == docs["bao"]
    assert docs["strongroom"]["auth"]["token_policies"] == ["default", "reader"]
    assert docs["strongroom"]["auth"]["lease_duration"] == 3600
    # the table (a token stored in each HOME), the same rows
    runs = both(srv, tmp_path, login_args(userpass, "username=alice", "password=correct horse"),
                token=None)
    same(runs, srv)
    for kind in ("bao", "strongroom"):
        stored = tmp_path / f"home-{kind}" / ".vault-token"
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        token = stored.read_text().strip()
        assert api(srv, "GET", "auth/token/lookup-self", token=token)["data"]["policies"] == [
            "default", "reader"]
    assert "correct horse" not in runs["strongroom"].out + runs["strongroom"].err
    # -token-only prints just the token; -field one field
    only = both(srv, tmp_path, login_args(userpass, "-token-only", "username=alice",
                                          "password=correct horse"), token=None)
    same(only, srv)
    assert re.fullmatch(r"(hv)?s\.[A-Za-z0-9_-]{20,}", only["strongroom"].out)
    same(both(srv, tmp_path, login_args(userpass, "-no-store", "-field=token_policies",
                                        "username=alice", "password=correct horse"),
              token=None), srv)


def prompted_login(kind: str, srv: ServerProcess, mount: str, home: Path) -> tuple[str, str, bytes]:
    """Run a userpass login whose password is typed on a terminal (a pty as stdin).

    Returns (stdout, stderr, what the terminal echoed back).
    """
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    base.update(VAULT_ADDR=srv.url, BAO_ADDR=srv.url, HOME=str(home),
                PYTHONPATH=str(REPO / "server"))
    home.mkdir(parents=True, exist_ok=True)
    argv = ([requires.bao()] if kind == "bao" else [sys.executable, "-m", "strongroom.cli.main"])
    master, slave = pty.openpty()
    proc = subprocess.Popen([*argv, "login", "-method=userpass", f"-path={mount}",
                             "-token-only", "username=alice"], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base)
    os.close(slave)
    assert proc.stderr is not None
    prompt = b""
    while not prompt.endswith(b"(will be hidden): "):  # echo is off once this is shown
        chunk = proc.stderr.read1(100)
        assert chunk, prompt
        prompt += chunk
    os.write(master, b"correct horse\n")
    out, err = proc.communicate(timeout=TIMEOUT)
    echoed = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            data = os.read(master, 1024)
        except OSError:
            break
        if not data:
            break
        echoed += data
    os.close(master)
    assert proc.returncode == 0, err
    return out.decode(), (prompt + err).decode(), echoed


def test_userpass_password_prompt(srv: ServerProcess, userpass: str, tmp_path: Path) -> None:
    seen = {kind: prompted_login(kind, srv, userpass, tmp_path / kind)
            for kind in ("bao", "strongroom")}
    out, err, echoed = seen["strongroom"]
    assert re.fullmatch(r"(hv)?s\.[A-Za-z0-9_-]{20,}", out), out
    assert err == "Password (will be hidden): \n" == seen["bao"][1]
    # echo was off before the prompt showed (bao turns it off just after: no assertion there)
    assert b"correct horse" not in echoed
    # piped (not a terminal): refused, as bao does; password=- reads stdin explicitly
    same(both(srv, tmp_path, login_args(userpass, "-token-only", "username=alice"),
              stdin="correct horse\n", token=None), srv)
    same(both(srv, tmp_path, login_args(userpass, "-token-only", "username=alice",
                                        "password=-"), stdin="correct horse", token=None), srv)


@pytest.mark.parametrize("more", [
    ("username=alice", "password=wrong"),
    ("username=nobody", "password=wrong"),
    ("password=x",),
    ("-non-interactive", "username=alice"),
    ("-no-store", "-no-print", "username=alice", "password=x"),
    ("username=alice", "password=@/nonexistent/file"),
], ids=" ".join)
def test_userpass_login_errors_match(srv: ServerProcess, userpass: str, tmp_path: Path,
                                     more: tuple[str, ...]) -> None:
    runs = both(srv, tmp_path, login_args(userpass, *more), token=None)
    assert runs["strongroom"].code == runs["bao"].code, runs
    lines = {k: r.err.splitlines() for k, r in runs.items()}
    assert lines["strongroom"][:1] == lines["bao"][:1], runs
    if runs["bao"].code == 2 and "Code:" in runs["bao"].err:  # the server's answer, shown alike
        assert lines["strongroom"] == lines["bao"], runs
    assert not (tmp_path / "home-strongroom" / ".vault-token").exists()


def test_unknown_method_and_approle(srv: ServerProcess, tmp_path: Path) -> None:
    same(both(srv, tmp_path, lambda k: ["login", "-method=nosuch", "x=y"], token=None), srv)
    if "approle/" not in api(srv, "GET", "sys/auth")["data"]:
        api(srv, "POST", "sys/auth/approle", {"type": "approle"})
        api(srv, "POST", "auth/approle/role/cli", {"token_policies": ["default"]})
    role_id = api(srv, "GET", "auth/approle/role/cli/role-id")["data"]["role_id"]
    secret_id = api(srv, "POST", "auth/approle/role/cli/secret-id")["data"]["secret_id"]
    runs = both(srv, tmp_path, lambda k: ["login", "-method=approle", "-no-store",
                                         "-format=json", f"role_id={role_id}", "secret_id=-"],
                stdin=secret_id, token=None)
    # the known difference: bao's CLI has no approle handler
    assert runs["bao"].code == 1 and "Unknown auth method: approle" in runs["bao"].err
    doc = runs["strongroom"].json()
    assert doc["auth"]["token_policies"] == ["default"] and doc["auth"]["accessor"]
    assert secret_id not in runs["strongroom"].out + runs["strongroom"].err
    bad = cli("strongroom", srv, "login", "-method=approle", f"role_id={role_id}",
              "secret_id=wrong", home=tmp_path / "h", token=None)
    assert bad.code == 2 and "Error authenticating: Error making API request." in bad.err
    assert "Code: 400" in bad.err and "wrong" not in bad.err.replace("secret_id=wrong", "")
    missing = cli("strongroom", srv, "login", "-method=approle", home=tmp_path / "h",
                  token=None)
    assert (missing.code, missing.err.strip()) == (
        2, "Error authenticating: 'role_id' must be specified")


def test_wrapped_login_is_unwrapped_or_kept(srv: ServerProcess, userpass: str,
                                           tmp_path: Path) -> None:
    # -wrap-ttl: the CLI unwraps the login to store the token; -token-only keeps it wrapped
    runs = both(srv, tmp_path, login_args(userpass, "-wrap-ttl=2m", "username=alice",
                                          "password=correct horse"), token=None)
    same(runs, srv)
    token = (tmp_path / "home-strongroom" / ".vault-token").read_text()
    assert api(srv, "GET", "auth/token/lookup-self", token=token)["data"]["policies"] == [
        "default", "reader"]
    runs = both(srv, tmp_path, login_args(userpass, "-wrap-ttl=2m", "-token-only",
                                          "username=alice", "password=correct horse"),
                token=None)
    same(runs, srv)
    look = api(srv, "POST", "sys/wrapping/lookup", {"token": runs["strongroom"].out})
    assert look["data"]["creation_path"] == f"auth/{userpass}/login/alice"


# --- ldap and cert: Strongroom only (bao's CLI has no ldap handler; cert needs TLS) ------


@pytest.fixture(scope="module")
def directory(servers: dict[str, ServerProcess],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Strongroom's dev server with an ldap mount on a real slapd (group admins: reader)."""
    from tests.support.slapd import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PW, running_slapd

    srv = servers["strongroom"]
    with running_slapd(tmp_path_factory.mktemp("slapd")) as slapd:
        api(srv, "POST", "sys/auth/corp", {"type": "ldap"})
        api(srv, "POST", "auth/corp/config", {
            "url": slapd.ldap_url, "binddn": SERVICE_DN, "bindpass": SERVICE_PW,
            "userdn": PEOPLE, "userattr": "uid", "groupdn": GROUPS})
        api(srv, "PUT", "sys/policies/acl/reader",
            {"policy": 'path "secret/*" {\n  capabilities = ["read"]\n}\n'})
        api(srv, "POST", "auth/corp/groups/admins", {"policies": ["reader"]})
        yield srv


def test_ldap_login(directory: ServerProcess, tmp_path: Path) -> None:
    srv = directory
    doc = cli("strongroom", srv, "login", "-method=ldap", "-path=corp", "-no-store",
              "-format=json", "username=alice", "password=alice-pw", home=tmp_path,
              token=None).json()
    assert doc["auth"]["token_policies"] == ["default", "reader"]
    assert doc["auth"]["metadata"] == {"username": "alice"}
    # the same envelope as bao's CLI prints for a userpass login (bao has no ldap handler)
    bao = cli("bao", srv, "login", "-method=ldap", "-path=corp", "username=alice",
              "password=alice-pw", home=tmp_path, token=None)
    assert bao.code == 1 and "Unknown auth method: ldap" in bao.err
    # password from VAULT_LDAP_PASSWORD, username from $USER, the token stored
    home = tmp_path / "home"
    ok = cli("strongroom", srv, "login", "-method=ldap", "-path=corp", home=home, token=None,
             env={"VAULT_LDAP_PASSWORD": "bob-pw", "USER": "bob", "LOGNAME": ""})
    assert ok.code == 0, ok.err
    assert "Success! You are now authenticated." in ok.out and "bob-pw" not in ok.out
    stored = (home / ".vault-token").read_text()
    assert api(srv, "GET", "auth/token/lookup-self", token=stored)["data"]["meta"] == {
        "username": "bob"}
    wrong = cli("strongroom", srv, "login", "-method=ldap", "-path=corp", "username=alice",
                "password=nope", home=tmp_path / "h2", token=None)
    assert wrong.code == 2 and "Code: 400" in wrong.err and "nope" not in wrong.err
    nobody = cli("strongroom", srv, "login", "-method=ldap", "-path=corp", "username=zed",
                 "password=nope", home=tmp_path / "h2", token=None)
    # a missing user reads exactly like a wrong password
    assert (nobody.code, nobody.err.replace("zed", "alice")) == (wrong.code, wrong.err)
    unnamed = cli("strongroom", srv, "login", "-method=ldap", "-path=corp", "-non-interactive",
                  home=tmp_path / "h2", token=None, env={"USER": "", "LOGNAME": ""})
    assert (unnamed.code, unnamed.err.strip()) == (
        2, "Error authenticating: 'username' not supplied and neither 'LOGNAME' nor 'USER' "
           "env vars set")


TLS_CONFIG = """
storage "file" {{
  path = "{workdir}/data"
}}
listener "tcp" {{
  address            = "127.0.0.1:{port}"
  tls_cert_file      = "{workdir}/server.pem"
  tls_key_file       = "{workdir}/server-key.pem"
  tls_client_ca_file = "{workdir}/ca.pem"
}}
disable_mlock = true
workers = 2
"""


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Strongroom node on TLS asking for client certificates, a cert role 'web'."""
    from tests.support.pki import make_ca, make_leaf
    from tests.support.servers import strongroom_server

    workdir = tmp_path_factory.mktemp("cert-cli")
    ca = make_ca("CLI Root")
    make_leaf(ca, "127.0.0.1", ips=("127.0.0.1",), server=True,
              client=False).write(workdir, "server")
    (workdir / "ca.pem").write_text(ca.pem)
    web = make_leaf(ca, "web1.example.com").write(workdir, "web")
    other = make_leaf(ca, "intruder.example.com").write(workdir, "other")
    with strongroom_server(workdir, TLS_CONFIG, scheme="https",
                           verify=str(workdir / "ca.pem")) as srv:
        ca_file = str(workdir / "ca.pem")

        def call(method: str, path: str, body: dict[str, Any] | None = None,
                 token: str | None = None) -> dict[str, Any]:
            resp = requests.request(method, f"{srv.url}/v1/{path}", json=body, timeout=10,
                                    verify=ca_file, headers={"Connection": "close", **(
                                        {"X-Vault-Token": token} if token else {})})
            assert resp.status_code in (200, 204), (path, resp.status_code, resp.text)
            return resp.json() if resp.content else {}

        init = call("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
        call("PUT", "sys/unseal", {"key": init["keys_base64"][0]})
        root = init["root_token"]
        call("POST", "sys/auth/cert", {"type": "cert"}, token=root)
        call("PUT", "sys/policies/acl/web", {"policy": 'path "secret/*" {\n'
                                                       '  capabilities = ["read"]\n}\n'},
             token=root)
        call("POST", "auth/cert/certs/web", {"certificate": ca.pem, "token_policies": ["web"],
                                             "allowed_common_names": ["web1.example.com"]},
             token=root)
        yield {"srv": srv, "ca": ca_file, "web": web, "other": other, "call": call}


def test_cert_login_matches_bao(tls_node: dict[str, Any], tmp_path: Path) -> None:
    srv: ServerProcess = tls_node["srv"]
    cert, key = tls_node["web"]
    base = ["login", "-method=cert", f"-ca-cert={tls_node['ca']}", "-no-store"]
    flags = [f"-client-cert={cert}", f"-client-key={key}"]
    runs = both(srv, tmp_path, lambda k: [*base, *flags, "-format=json", "name=web"],
                token=None)
    docs = {k: r.json() for k, r in runs.items()}
    for doc in docs.values():
        doc["auth"].update(client_token="", accessor="", entity_id="")
        doc.pop("request_id")
        doc.pop("mount_type", None)
    assert docs["strongroom"] == docs["bao"]
    assert docs["strongroom"]["auth"]["token_policies"] == ["default", "web"]
    # from the environment, and the table output
    same(both(srv, tmp_path, lambda k: [*base, "name=web"], token=None,
              env={"VAULT_CLIENT_CERT": str(cert), "VAULT_CLIENT_KEY": str(key),
                   "BAO_CLIENT_CERT": str(cert), "BAO_CLIENT_KEY": str(key)}), srv)
    # a certificate no role allows, and none at all: refused alike
    other_cert, other_key = tls_node["other"]
    refused = both(srv, tmp_path, lambda k: [*base, f"-client-cert={other_cert}",
                                             f"-client-key={other_key}", "name=web"],
                   token=None)
    same(refused, srv)
    assert refused["strongroom"].code == 2 and "Code: 400" in refused["strongroom"].err
    same(both(srv, tmp_path, lambda k: [*base, "name=web"], token=None), srv)


def test_auth_move_and_help(srv: ServerProcess, tmp_path: Path) -> None:
    """``auth move`` (sys/remount, its status polled) and ``auth help`` as bao's."""
    m = mounts("mv")
    for kind in m:
        api(srv, "POST", f"sys/auth/{m[kind]}", {"type": "userpass"})
        api(srv, "POST", f"auth/{m[kind]}/users/u", {"password": "pw-u"})
    moved = both(srv, tmp_path, lambda k: ["auth", "move", f"auth/{m[k]}", f"auth/{m[k]}-to"])
    for kind, run in moved.items():
        assert run.code == 0, (kind, run.err)
        # bao polls every 10 s while the move runs: compare the final line.
        assert norm(run.out.splitlines()[-1], srv, {m[kind]: "<m>"}) == (
            "Success! Finished moving auth method auth/<m>/ to auth/<m>-to/, with migration "
            "ID <uuid>")
        listed = api(srv, "GET", "sys/auth")["data"]
        assert f"{m[kind]}-to/" in listed and f"{m[kind]}/" not in listed
        # The configuration moved with it: its user logs in at the new path.
        api(srv, "POST", f"auth/{m[kind]}-to/login/u", {"password": "pw-u"}, token="")
    names = {m["bao"]: "<m>", m["strongroom"]: "<m>"}
    same(both(srv, tmp_path, lambda k: ["auth", "move", f"auth/{m[k]}-none", "auth/x"]),
         srv, names)
    same(both(srv, tmp_path, lambda k: ["auth", "help", f"{m[k]}-nowhere"]), srv, names)
    same(both(srv, tmp_path, lambda k: ["auth", "help", "one", "two"]), srv, names)
    for target in ("userpass", f"{m['strongroom']}-to"):
        shown = cli("strongroom", srv, "auth", "help", target, home=tmp_path / "help")
        assert shown.code == 0 and shown.out.startswith("Usage: strongroom login "
                                                        "-method=userpass"), shown
