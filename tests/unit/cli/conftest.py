"""Fixtures for CLI unit tests: an in-process fake API behind requests, and a runner."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from strongroom.cli import command as command_module
from strongroom.cli.client import ApiClient, ClientConfig
from strongroom.cli.command import Streams
from strongroom.cli.main import run

from cli_fakes import FakeApi


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """Route every ApiClient the CLI creates through a FakeApi."""
    api = FakeApi()

    def make_client(config: ClientConfig) -> ApiClient:
        session = requests.Session()
        session.mount("http://", api)
        session.mount("https://", api)
        return ApiClient(config, session=session)

    monkeypatch.setattr(command_module, "ApiClient", make_client)
    return api


class TtyInput(io.StringIO):
    """A stdin that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Any, fake_api: FakeApi) -> Iterator[Callable[..., Result]]:
    """Run the CLI in-process: ``cli("status", env={...}, stdin="...")``.

    Depends on ``fake_api`` so that no invocation can reach the network.
    """

    def invoke(*argv: str, env: dict[str, str] | None = None, stdin: str | io.StringIO = "",
               ) -> Result:
        # A private HOME keeps a developer's real ~/.vault-token out of the tests.
        full_env = {"HOME": str(tmp_path), "VAULT_ADDR": "http://vault.test:8200"}
        full_env.update(env or {})
        streams = Streams(stdin if isinstance(stdin, io.StringIO) else io.StringIO(stdin),
                          io.StringIO(), io.StringIO())
        code = run(list(argv), env=full_env, io=streams)
        assert isinstance(streams.stdout, io.StringIO)
        assert isinstance(streams.stderr, io.StringIO)
        return Result(code, streams.stdout.getvalue(), streams.stderr.getvalue())

    yield invoke
