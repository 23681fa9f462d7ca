"""`operator init -pgp-keys/-root-token-pgp-key`: key files in, API fields out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from pysequoia import Tsk

from cli_fakes import FakeApi
from conftest import Result

Cli = Callable[..., Result]

INIT_RESPONSE = {"keys": ["c1aa"], "keys_base64": ["wao="], "root_token": "wcBMA0"}


@pytest.fixture(scope="module")
def keys() -> list[Tsk]:
    return [Tsk.generate(f"holder{i} <h{i}@strongroom.test>") for i in range(4)]


def b64(tsk: Tsk) -> str:
    return base64.b64encode(bytes(tsk.extract_certificate())).decode()


@pytest.fixture
def files(tmp_path: Path, keys: list[Tsk]) -> list[str]:
    """The same kinds of file `vault operator init -pgp-keys` reads: binary, base64, armor."""
    paths = [tmp_path / "a.gpg", tmp_path / "b.b64", tmp_path / "c.asc", tmp_path / "root.gpg"]
    paths[0].write_bytes(bytes(keys[0].extract_certificate()))
    paths[1].write_text(b64(keys[1]) + "\n")
    paths[2].write_text(str(keys[2].extract_certificate()))
    paths[3].write_bytes(bytes(keys[3].extract_certificate()))
    return [str(p) for p in paths]


def test_key_files_become_api_fields(cli: Cli, fake_api: FakeApi, files: list[str],
                                     keys: list[Tsk]) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    r = cli("operator", "init", "-key-shares=3", "-key-threshold=2",
            f"-pgp-keys={files[0]}, {files[1]},@{files[2]}",
            "-root-token-pgp-key", files[3], "-format=json")
    assert r.code == 0, r.err
    assert fake_api.bodies("PUT", "/v1/sys/init") == [{
        "secret_shares": 3, "secret_threshold": 2,
        "pgp_keys": [b64(k) for k in keys[:3]], "root_token_pgp_key": b64(keys[3]),
    }]


def test_without_pgp_flags_the_request_is_unchanged(cli: Cli, fake_api: FakeApi) -> None:
    fake_api.add("PUT", "/v1/sys/init", (200, INIT_RESPONSE))
    assert cli("operator", "init", "-format=json").code == 0
    assert fake_api.bodies("PUT", "/v1/sys/init") == [
        {"secret_shares": 5, "secret_threshold": 3}]


@pytest.mark.parametrize("args, message", [
    (["-pgp-keys=keybase:jefferai"],
     'invalid value "keybase:jefferai" for flag -pgp-keys: keybase keys are not supported'),
    (["-pgp-keys=/nonexistent/key.gpg"],
     'invalid value "/nonexistent/key.gpg" for flag -pgp-keys: open /nonexistent/key.gpg'),
    (["-pgp-keys={0}", "-pgp-keys={1}"],
     'invalid value "{1}" for flag -pgp-keys: can only be specified once'),
    (["-root-token-pgp-key={0},{1}"],
     'invalid value "{0},{1}" for flag -root-token-pgp-key: can only specify one pgp key'),
])
def test_bad_key_flags_exit_1_before_any_request(
        cli: Cli, fake_api: FakeApi, files: list[str], args: list[str], message: str) -> None:
    r = cli("operator", "init", *(a.format(*files) for a in args))
    assert r.code == 1
    assert r.err.startswith(message.format(*files)), r.err
    assert fake_api.requests == []
