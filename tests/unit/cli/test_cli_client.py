"""API client: configuration precedence, request shape, error translation (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from strongroom.cli.client import (
    DEFAULT_ADDRESS,
    ApiClient,
    ApiError,
    ClientConfig,
    ClientError,
    ConfigError,
    ConnectError,
)

from cli_fakes import FakeApi

NO_TOKEN_FILE = Path("/nonexistent/strongroom-test/.vault-token")


def resolve(env: dict[str, str], **kw: object) -> ClientConfig:
    kw.setdefault("token_file", NO_TOKEN_FILE)
    return ClientConfig.resolve(env, **kw)  # type: ignore[arg-type]


# --- configuration -------------------------------------------------------------

@pytest.mark.parametrize(("env", "flag", "expected"), [
    ({}, None, DEFAULT_ADDRESS),
    ({"BAO_ADDR": "http://bao:1"}, None, "http://bao:1"),
    ({"BAO_ADDR": "http://bao:1", "VAULT_ADDR": "http://vault:1"}, None, "http://vault:1"),
    ({"VAULT_ADDR": "http://vault:1", "STRONGROOM_ADDR": "http://sr:1"}, None, "http://sr:1"),
    ({"STRONGROOM_ADDR": "http://sr:1"}, "http://flag:1", "http://flag:1"),
    ({"STRONGROOM_ADDR": "", "VAULT_ADDR": "http://vault:1"}, None, "http://vault:1"),
])
def test_address_precedence(env: dict[str, str], flag: str | None, expected: str) -> None:
    assert resolve(env, address=flag).address == expected


@pytest.mark.parametrize(("env", "expected"), [
    ({"BAO_TOKEN": "b"}, "b"),
    ({"BAO_TOKEN": "b", "VAULT_TOKEN": "v"}, "v"),
    ({"VAULT_TOKEN": "v", "STRONGROOM_TOKEN": "s"}, "s"),
    ({"VAULT_TOKEN": ""}, None),
])
def test_token_precedence(env: dict[str, str], expected: str | None) -> None:
    assert resolve(env).token == expected


def test_token_file_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / ".vault-token").write_text("file-token\n")
    assert ClientConfig.resolve({"HOME": str(tmp_path)}).token == "file-token"
    assert ClientConfig.resolve({"HOME": str(tmp_path), "VAULT_TOKEN": "env"}).token == "env"


def test_missing_or_empty_token_file_means_no_token(tmp_path: Path) -> None:
    assert ClientConfig.resolve({"HOME": str(tmp_path)}).token is None
    (tmp_path / ".vault-token").write_text("  \n")
    assert ClientConfig.resolve({"HOME": str(tmp_path)}).token is None


def test_ca_cert_precedence() -> None:
    env = {"VAULT_CACERT": "/v.pem", "BAO_CACERT": "/b.pem"}
    assert resolve(env).ca_cert == "/v.pem"
    assert resolve({**env, "STRONGROOM_CACERT": "/s.pem"}).ca_cert == "/s.pem"
    assert resolve(env, ca_cert="/flag.pem").ca_cert == "/flag.pem"
    assert resolve({}).ca_cert is None


@pytest.mark.parametrize(("env", "flag", "expected"), [
    ({}, None, False),
    ({"VAULT_SKIP_VERIFY": "true"}, None, True),
    ({"VAULT_SKIP_VERIFY": "1"}, None, True),
    ({"VAULT_SKIP_VERIFY": "true", "STRONGROOM_SKIP_VERIFY": "false"}, None, False),
    ({"VAULT_SKIP_VERIFY": "true"}, False, False),
    ({}, True, True),
])
def test_skip_verify(env: dict[str, str], flag: bool | None, expected: bool) -> None:
    assert resolve(env, skip_verify=flag).skip_verify is expected


def test_unparseable_skip_verify_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="skip-verify"):
        resolve({"VAULT_SKIP_VERIFY": "sure"})


def test_repr_never_shows_the_token() -> None:
    config = ClientConfig(address="http://x:1", token="s.supersecret")
    assert "supersecret" not in repr(config)


def test_address_must_have_a_scheme() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        ApiClient(ClientConfig(address="127.0.0.1:8200"))


def test_tls_settings_reach_the_session() -> None:
    assert ApiClient(ClientConfig(ca_cert="/ca.pem")).session.verify == "/ca.pem"
    assert ApiClient(ClientConfig(ca_cert="/ca.pem", skip_verify=True)).session.verify is False
    assert ApiClient(ClientConfig()).session.verify is True


def test_tls_settings_survive_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE override a session's verify setting unless
    # verify is passed on each request; check what the transport actually gets.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env-bundle.pem")
    seen: list[object] = []

    class Recorder(FakeApi):
        def send(self, request: requests.PreparedRequest, **kwargs: object
                 ) -> requests.Response:
            seen.append(kwargs.get("verify"))
            return super().send(request)

    api = Recorder()
    api.add("GET", "/v1/sys/leader", (200, {}))
    for config in (ClientConfig(address="http://a", skip_verify=True),
                   ClientConfig(address="http://a", ca_cert="/mine.pem")):
        session = requests.Session()
        session.mount("http://", api)
        ApiClient(config, session).leader()
    assert seen == [False, "/mine.pem"]


# --- requests ------------------------------------------------------------------

def client(api: FakeApi, token: str | None = "s.tok") -> ApiClient:  # noqa: S107
    session = requests.Session()
    session.mount("http://", api)
    return ApiClient(ClientConfig(address="http://vault.test:8200/", token=token), session)


def test_headers_url_and_body() -> None:
    api = FakeApi()
    api.add("PUT", "/v1/sys/init", (200, {"root_token": "r"}))
    assert client(api).init(3, 2) == {"root_token": "r"}
    req = api.requests[0]
    assert req.url == "http://vault.test:8200/v1/sys/init"
    assert req.headers["X-Vault-Token"] == "s.tok"
    assert req.headers["X-Vault-Request"] == "true"
    assert api.bodies("PUT", "/v1/sys/init") == [{"secret_shares": 3, "secret_threshold": 2}]


def test_no_token_header_without_a_token() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/seal-status", (200, {"sealed": True}))
    client(api, token=None).seal_status()
    assert "X-Vault-Token" not in api.requests[0].headers


def test_empty_success_body_is_none() -> None:
    api = FakeApi()
    api.add("PUT", "/v1/sys/seal", (204, None))
    assert client(api).put("sys/seal") is None


def test_list_uses_get_with_list_true() -> None:
    # Paths are cleaned like Go's path.Join, so the trailing slash is not sent.
    api = FakeApi()
    api.add("GET", "/v1/secret/metadata", (200, {"data": {"keys": ["a"]}}))
    client(api).list("/secret/metadata/")
    assert api.requests[0].method == "GET"
    assert FakeApi.query(api.requests[0]) == {"list": ["true"]}


def test_unseal_and_reset_bodies() -> None:
    api = FakeApi()
    api.add("PUT", "/v1/sys/unseal", (200, {"sealed": True}))
    c = client(api)
    c.unseal("KEY")
    c.unseal_reset()
    assert api.bodies("PUT", "/v1/sys/unseal") == [{"key": "KEY"}, {"reset": True}]


def test_init_status() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/init", [(200, {"initialized": False}), (200, {"initialized": True})])
    c = client(api)
    assert c.init_status() is False
    assert c.init_status() is True


def test_api_error_carries_status_and_errors() -> None:
    api = FakeApi()
    api.add("PUT", "/v1/sys/unseal", (400, {"errors": ["bad key", "second"]}))
    with pytest.raises(ApiError) as info:
        client(api).unseal("x")
    err = info.value
    assert (err.status, err.errors, err.method) == (400, ["bad key", "second"], "PUT")
    assert str(err) == ("Error making API request.\n\n"
                        "URL: PUT http://vault.test:8200/v1/sys/unseal\n"
                        "Code: 400. Errors:\n\n* bad key\n* second")


def test_api_error_with_non_json_body_is_raw() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/leader", (502, "<html>bad gateway</html>"))
    with pytest.raises(ApiError) as info:
        client(api).leader()
    assert info.value.raw
    assert "Code: 502. Raw Message:\n\n<html>bad gateway</html>" in str(info.value)


def test_api_error_constructed_directly() -> None:
    err = ApiError(403, ["permission denied"])
    assert str(err) == "Error making API request.\n\nCode: 403. Errors:\n\n* permission denied"
    assert isinstance(err, ClientError)


def test_token_not_in_error_text() -> None:
    api = FakeApi()
    api.add("PUT", "/v1/sys/seal", (403, {"errors": ["permission denied"]}))
    with pytest.raises(ApiError) as info:
        client(api, token="s.secret-token").seal()
    assert "secret-token" not in str(info.value)


def _refused() -> requests.ConnectionError:
    # Mimic requests' nesting: ConnectionError -> MaxRetryError-like -> OSError.
    inner = ConnectionRefusedError(111, "Connection refused")
    wrapper = Exception("Max retries exceeded")
    wrapper.__cause__ = inner
    return requests.ConnectionError(wrapper)


def test_connection_error_is_summarised() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/seal-status", _refused())
    with pytest.raises(ConnectError) as info:
        client(api).seal_status()
    assert str(info.value) == 'GET "http://vault.test:8200/v1/sys/seal-status": Connection refused'


def test_timeout_is_summarised() -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/seal-status", requests.ReadTimeout("slow"))
    with pytest.raises(ConnectError, match="timed out"):
        client(api).seal_status()


@pytest.mark.parametrize("body", ["not json", "[1, 2]"])
def test_success_that_is_not_a_json_object(body: str) -> None:
    api = FakeApi()
    api.add("GET", "/v1/sys/leader", (200, body))
    with pytest.raises(ClientError, match="response is not"):
        client(api).leader()
