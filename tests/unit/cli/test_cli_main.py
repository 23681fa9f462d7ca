"""Dispatcher: command lookup, help, exit codes, the registry and `server` delegation."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Callable

import pytest

from strongroom import __version__
from strongroom.cli.command import Command, Context, Group, Streams
from strongroom.cli.flags import FlagSet, UsageError
from strongroom.cli.main import Registry, group_help, load_registry, main, run, top_help

from conftest import Result

Cli = Callable[..., Result]


def test_no_arguments_prints_usage_to_stderr_and_exits_127(cli: Cli) -> None:
    r = cli()
    assert r.code == 127
    assert r.err.startswith("Usage: strongroom <command> [args]")
    assert r.out == ""


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_top_level_help(cli: Cli, flag: str) -> None:
    r = cli(flag)
    assert r.code == 0
    assert "Common commands:" in r.out
    for name in ("status", "server", "operator", "version"):
        assert f"    {name}" in r.out


def test_unknown_command_exits_127(cli: Cli) -> None:
    r = cli("frobnicate")
    assert r.code == 127
    assert "Usage: strongroom" in r.err


@pytest.mark.parametrize("argv", [["version"], ["-version"], ["--version"], ["-v"]])
def test_version(cli: Cli, argv: list[str]) -> None:
    r = cli(*argv)
    assert r.code == 0
    assert r.out.startswith(f"Strongroom v{__version__}")


def test_flags_before_the_subcommand_are_rejected(cli: Cli) -> None:
    r = cli("-address=http://x:1", "status")
    assert r.code == 1
    assert "Invalid flags before the subcommand" in r.err


def test_group_without_subcommand_shows_group_help_and_exits_1(cli: Cli) -> None:
    r = cli("operator")
    assert r.code == 1
    assert "Subcommands:" in r.err
    assert "    init" in r.err and "    unseal" in r.err and "    seal" in r.err


def test_group_help_flag_exits_0(cli: Cli) -> None:
    r = cli("operator", "-h")
    assert r.code == 0
    assert "Usage: strongroom operator <subcommand>" in r.out


def test_unknown_subcommand_shows_group_help(cli: Cli) -> None:
    r = cli("operator", "bogus")
    assert r.code == 1
    assert "Subcommands:" in r.err


def test_command_help_includes_flag_sections(cli: Cli) -> None:
    r = cli("operator", "init", "-h")
    assert r.code == 0
    assert r.out.startswith("Usage: strongroom operator init")
    for text in ("HTTP Options:", "-address=<string>", "Output Options:", "-format=<string>",
                 "Command Options:", "-key-shares=<int>", 'aliased as "-n"'):
        assert text in r.out


@pytest.mark.parametrize(("argv", "message"), [
    (["status", "extra"], "Too many arguments (expected 0, got 1)"),
    (["status", "-bogus"], "flag provided but not defined: -bogus"),
    (["operator", "unseal", "a", "b"], "Too many arguments (expected 1, got 2)"),
    (["operator", "init", "-key-shares=x"], 'invalid value "x" for flag -key-shares'),
    (["status", "-format=xml"], "Invalid output format: xml"),
])
def test_usage_errors_exit_1(cli: Cli, argv: list[str], message: str) -> None:
    r = cli(*argv)
    assert r.code == 1
    assert message in r.err


def test_server_delegates_every_argument(monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("strongroom.cli.server_cmd")

    def fake_run(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    fake.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "strongroom.cli.server_cmd", fake)
    argv = ["-dev", "-dev-root-token-id=root", "--", "-h", "-format=json"]
    assert cli("server", *argv).code == 7
    assert seen == [argv]


def test_server_missing_module_is_a_clean_error(monkeypatch: pytest.MonkeyPatch,
                                                cli: Cli) -> None:
    monkeypatch.setitem(sys.modules, "strongroom.cli.server_cmd", None)
    r = cli("server", "-dev")
    assert r.code == 1
    assert "server command is not available" in r.err


def test_main_uses_sys_argv(monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["strongroom", "version"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("Strongroom v")
    assert main(["version"]) == 0


# --- registry: how later command groups plug in ---------------------------------

def _registry_with_fake_group() -> Registry:
    def flags(fs: FlagSet) -> None:
        fs.string("mount", "Mount path.", default="secret")

    def get(ctx: Context) -> int:
        ctx.expect_args(1, 1)
        return ctx.emit({"path": ctx.args[0], "mount": ctx.flags.string("mount")})

    def boom(ctx: Context) -> int:
        raise UsageError("custom usage problem")

    reg = load_registry()
    reg.add([Command("demo get", "Read a secret", "Usage: strongroom demo get PATH", get, flags),
             Command("demo boom", "Fail", "Usage: strongroom demo boom", boom)],
            [Group("demo", "Interact with demo", "Usage: strongroom demo <subcommand>")])
    return reg


def _run(reg: Registry, *argv: str) -> Result:
    streams = Streams(io.StringIO(), io.StringIO(), io.StringIO())
    code = run(list(argv), env={}, io=streams, registry=reg)
    assert isinstance(streams.stdout, io.StringIO) and isinstance(streams.stderr, io.StringIO)
    return Result(code, streams.stdout.getvalue(), streams.stderr.getvalue())


def test_new_group_dispatches_with_its_own_flags_and_output_flags() -> None:
    reg = _registry_with_fake_group()
    r = _run(reg, "demo", "get", "-mount=kv2", "team/app", "-format=json")
    assert r.code == 0, r.err
    assert '"path": "team/app"' in r.out and '"mount": "kv2"' in r.out
    r = _run(reg, "demo", "get", "-field=mount", "x")
    assert (r.code, r.out) == (0, "secret")


def test_new_group_appears_in_help() -> None:
    reg = _registry_with_fake_group()
    assert "    demo" in top_help(reg)
    assert "    get     Read a secret" in group_help(reg, "demo")


def test_usage_error_raised_by_a_command_exits_1() -> None:
    r = _run(_registry_with_fake_group(), "demo", "boom")
    assert (r.code, r.err.strip()) == (1, "custom usage problem")


def test_missing_field_exits_1() -> None:
    r = _run(_registry_with_fake_group(), "demo", "get", "-field=nope", "x")
    assert r.code == 1
    assert 'Field "nope" not present in secret' in r.err


def test_duplicate_registration_is_rejected() -> None:
    reg = load_registry()
    with pytest.raises(ValueError, match="registered twice"):
        reg.add([Command("status", "again", "", lambda ctx: 0)])
