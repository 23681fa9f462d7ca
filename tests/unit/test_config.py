"""Tests for strongroom.config: Vault-syntax server config parsing and validation."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from strongroom.config import (
    STORAGE_OPTIONS,
    ConfigError,
    ListenerConfig,
    SealConfig,
    ServerConfig,
    StorageConfig,
    dev_config,
    load_config,
    parse_bool,
    parse_config,
    parse_duration,
)

FULL_HCL = """
# A config exercising every supported key.
storage "consul" {
  address = "127.0.0.1:8500"
  path = "strongroom/"
  max_parallel = 128
  disable_registration = true
}
ha_storage "file" { path = "/var/lib/strongroom/ha" }

listener "tcp" {
  address = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file = "/etc/strongroom/tls.crt"
  tls_key_file = "/etc/strongroom/tls.key"
  tls_client_ca_file = "/etc/strongroom/ca.crt"
  tls_min_version = "tls12"
  tls_max_version = "tls13"
  max_request_size = 1048576
}
listener "tcp" {
  address = "[::1]:8300"
  tls_disable = "true"
}

seal "pkcs11" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
  slot = 0
  pin = "1234"
  key_label = "strongroom-key"
  generate_key = "true"
}

telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
}

api_addr = "https://strongroom.example.com:8200"
cluster_addr = "https://10.0.0.5:8201"
cluster_name = "prod"
disable_mlock = true
ui = false
log_level = "Warning"
log_format = "json"
default_lease_ttl = "1h30m"
max_lease_ttl = "720h"
disable_cache = 1
pid_file = "/run/strongroom.pid"
workers = 3
"""

FULL_JSON = {
    "storage": {"consul": {"address": "127.0.0.1:8500", "path": "strongroom/",
                           "max_parallel": 128, "disable_registration": True}},
    "ha_storage": {"file": {"path": "/var/lib/strongroom/ha"}},
    "listener": [
        {"tcp": {"address": "0.0.0.0:8200", "cluster_address": "0.0.0.0:8201",
                 "tls_cert_file": "/etc/strongroom/tls.crt",
                 "tls_key_file": "/etc/strongroom/tls.key",
                 "tls_client_ca_file": "/etc/strongroom/ca.crt",
                 "tls_min_version": "tls12", "tls_max_version": "tls13",
                 "max_request_size": 1048576}},
        {"tcp": {"address": "[::1]:8300", "tls_disable": "true"}},
    ],
    "seal": {"pkcs11": {"lib": "/usr/lib/softhsm/libsofthsm2.so", "slot": 0, "pin": "1234",
                        "key_label": "strongroom-key", "generate_key": "true"}},
    "telemetry": {"prometheus_retention_time": "30s", "disable_hostname": True},
    "api_addr": "https://strongroom.example.com:8200",
    "cluster_addr": "https://10.0.0.5:8201",
    "cluster_name": "prod",
    "disable_mlock": True,
    "ui": False,
    "log_level": "Warning",
    "log_format": "json",
    "default_lease_ttl": "1h30m",
    "max_lease_ttl": "720h",
    "disable_cache": 1,
    "pid_file": "/run/strongroom.pid",
    "workers": 3,
}

STORAGE = 'storage "file" { path = "/data" }\n'
LISTENER = 'listener "tcp" { tls_disable = true }\n'
BASE = STORAGE + LISTENER


def _error(text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    return info.value


# --- full examples ---------------------------------------------------------------------------

def test_full_hcl_values() -> None:
    cfg = parse_config(FULL_HCL)
    assert cfg.storage == StorageConfig("consul", {
        "address": "127.0.0.1:8500", "path": "strongroom/",
        "max_parallel": "128", "disable_registration": "true"})
    assert cfg.ha_storage == StorageConfig("file", {"path": "/var/lib/strongroom/ha"})
    assert cfg.listeners == (
        ListenerConfig(address="0.0.0.0:8200", cluster_address="0.0.0.0:8201",
                       tls_cert_file="/etc/strongroom/tls.crt",
                       tls_key_file="/etc/strongroom/tls.key",
                       tls_client_ca_file="/etc/strongroom/ca.crt",
                       tls_min_version="tls12", tls_max_version="tls13",
                       max_request_size=1048576),
        ListenerConfig(address="[::1]:8300", tls_disable=True),
    )
    assert cfg.seal == SealConfig("pkcs11", {
        "lib": "/usr/lib/softhsm/libsofthsm2.so", "slot": "0", "pin": "1234",
        "key_label": "strongroom-key", "generate_key": "true"})
    assert cfg.api_addr == "https://strongroom.example.com:8200"
    assert cfg.cluster_addr == "https://10.0.0.5:8201"
    assert cfg.cluster_name == "prod"
    assert (cfg.disable_mlock, cfg.ui, cfg.disable_cache) == (True, False, True)
    assert (cfg.log_level, cfg.log_format) == ("warn", "json")
    assert (cfg.default_lease_ttl, cfg.max_lease_ttl) == (5400, 720 * 3600)
    assert cfg.pid_file == "/run/strongroom.pid"
    assert cfg.workers == 3


def test_full_json_equals_hcl() -> None:
    assert parse_config(json.dumps(FULL_JSON), fmt="json") == parse_config(FULL_HCL)


def test_json_detected_by_leading_brace() -> None:
    text = "\n  " + json.dumps(FULL_JSON)
    assert parse_config(text) == parse_config(FULL_HCL)


def test_config_is_frozen_and_hashable() -> None:
    cfg = parse_config(FULL_HCL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.storage.options["path"] = "x"  # type: ignore[index]
    assert hash(cfg) == hash(parse_config(json.dumps(FULL_JSON)))
    # Direct construction with a plain dict is frozen too.
    options = {"path": "/d"}
    storage = StorageConfig("file", options)
    options["path"] = "/changed"
    assert storage.options["path"] == "/d"
    assert dict(storage.options) == {"path": "/d"}


def test_defaults() -> None:
    cfg = parse_config(BASE)
    assert cfg.ha_storage is None and cfg.seal is None
    assert cfg.api_addr is None and cfg.cluster_addr is None and cfg.pid_file is None
    assert (cfg.log_level, cfg.log_format) == ("info", "standard")
    assert cfg.default_lease_ttl == cfg.max_lease_ttl == 2764800
    assert (cfg.disable_mlock, cfg.ui, cfg.disable_cache) == (False, False, False)
    (listener,) = cfg.listeners
    assert listener.address == "127.0.0.1:8200"
    assert (listener.host, listener.port) == ("127.0.0.1", 8200)
    assert listener.tls_min_version == "tls12" and listener.tls_max_version is None
    assert listener.max_request_size == 32 * 1024 * 1024


def test_backend_alias_and_telemetry() -> None:
    cfg = parse_config('backend "inmem" {}\n' + LISTENER + "telemetry {}\n")
    assert cfg.storage == StorageConfig("inmem", {})
    cfg = parse_config(BASE + 'ha_backend "file" { path = "/ha" }')
    assert cfg.ha_storage == StorageConfig("file", {"path": "/ha"})


def test_registry_shape() -> None:
    # A new backend is one registry line: (allowed, required).
    assert STORAGE_OPTIONS["file"] == (frozenset({"path"}), frozenset({"path"}))
    assert STORAGE_OPTIONS["inmem"] == (frozenset(), frozenset())
    assert STORAGE_OPTIONS["consul"][1] == frozenset()


def test_seal_disabled_option() -> None:
    cfg = parse_config(BASE + 'seal "pkcs11" { lib = "/x.so" disabled = "true" }')
    assert cfg.seal is not None and cfg.seal.options["disabled"] == "true"


# --- listeners -------------------------------------------------------------------------------

def test_multiple_listeners_hcl_keeps_each_stanza() -> None:
    text = STORAGE + """
listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }
listener "tcp" { address = "10.0.0.1:8300" tls_cert_file = "c" tls_key_file = "k" }
listener "tcp" { address = "[::]:8400" tls_disable = 1 max_request_size = 10 }
"""
    listeners = parse_config(text).listeners
    assert [(lst.host, lst.port) for lst in listeners] == [
        ("127.0.0.1", 8200), ("10.0.0.1", 8300), ("::", 8400)]
    assert [lst.tls_disable for lst in listeners] == [True, False, True]
    assert listeners[1].tls_cert_file == "c" and listeners[0].tls_cert_file is None
    assert listeners[2].max_request_size == 10


def test_multiple_listeners_json_dict_of_lists() -> None:
    raw = {"storage": {"inmem": {}},
           "listener": {"tcp": [{"address": "127.0.0.1:1", "tls_disable": True},
                                {"address": "127.0.0.1:2", "tls_disable": True}]}}
    assert [lst.port for lst in parse_config(json.dumps(raw)).listeners] == [1, 2]


def test_multiple_listener_errors_are_indexed() -> None:
    err = _error(STORAGE + LISTENER + 'listener "tcp" { address = "x:0" tls_disable = 1 }')
    assert err.key == "listener.tcp[1].address"


def test_ipv6_address() -> None:
    (listener,) = parse_config(STORAGE + 'listener "tcp" { address = "[::1]:8200" '
                               'tls_disable = true }').listeners
    assert (listener.host, listener.port) == ("::1", 8200)
    assert (ListenerConfig(address="[fe80::1%eth0]:443").host) == "fe80::1%eth0"


@pytest.mark.parametrize("value", [True, "true", "TRUE", "1", 1])
def test_tls_disable_true_forms(value: object) -> None:
    raw = {"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": value}}}
    assert parse_config(json.dumps(raw)).listeners[0].tls_disable is True


@pytest.mark.parametrize("value", [False, "false", "0", 0])
def test_tls_disable_false_forms_require_certs(value: object) -> None:
    raw = {"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": value}}}
    with pytest.raises(ConfigError) as info:
        parse_config(json.dumps(raw))
    assert info.value.key == "listener.tcp.tls_cert_file"


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False),
    ("1", True), ("0", False), (" true ", True),
])
def test_parse_bool(value: object, expected: bool) -> None:
    assert parse_bool(value) is expected


@pytest.mark.parametrize("value", ["yes", "", 2, -1, None, 1.0, "t"])
def test_parse_bool_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match="boolean"):
        parse_bool(value)


# --- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    (0, 0), (10, 10), ("10", 10), ("0", 0), ("10s", 10), ("30m", 1800), ("768h", 2764800),
    ("2d", 172800), ("1h30m", 5400), ("1d2h3m4s", 93784), (" 5m ", 300), ("1.5h", 5400),
    ("0.5m", 30), ("90m", 5400), ("2562047h47m16s", 9223372036), (9223372036, 9223372036),
])
def test_parse_duration(value: object, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [
    -1, "-1", "-5s", "", "h", "10x", "1h 30m", "abc", "1.5", "0.5s", "1ms", True, 1.5, None,
    ["1h"],
    # Longer than Go's time.Duration holds (Vault refuses these; they used to be accepted).
    "99999999999999999999h", "2562048h", 9223372037, "9223372037",
])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ConfigError):
        parse_duration(value)


# --- validation rules: each names the offending key -----------------------------------------

@pytest.mark.parametrize(("text", "key", "fragment"), [
    (BASE + "listner = 1", "listner", "unknown key"),
    (BASE + "plugin_directory = \"/p\"", "plugin_directory", "unknown key"),
    (LISTENER, "storage", "required"),
    ('storage "raft" { path = "/r" }\n' + LISTENER, "storage", "unsupported type 'raft'"),
    ('storage "file" {}\n' + LISTENER, "storage.file.path", "required"),
    ('storage "file" { path = "" }\n' + LISTENER, "storage.file.path", "required"),
    ('storage "file" { path = "/d" paht = "x" }\n' + LISTENER, "storage.file.paht",
     "did you mean 'path'"),
    ('storage "inmem" { path = "/d" }\n' + LISTENER, "storage.inmem.path", "unknown option"),
    ('storage "consul" { service_tags = ["a"] }\n' + LISTENER, "storage.consul.service_tags",
     "single"),
    (BASE + 'storage "file" { path = "/other" }', "storage", "only one"),
    (BASE + 'backend "inmem" {}', "backend", "old name"),
    (BASE + 'storage = "file"', "storage", "block"),
    (BASE + 'ha_storage "zookeeper" {}', "ha_storage", "unsupported"),
    (BASE + 'seal "awskms" {}', "seal", "unsupported"),
    (BASE + 'seal "pkcs11" { lib = "/x" pinn = "1" }', "seal.pkcs11.pinn", "unknown option"),
    (BASE + 'seal "pkcs11" { disabled = "maybe" }', "seal.pkcs11.disabled", "boolean"),
    (STORAGE, "listener", "at least one"),
    (STORAGE + 'listener "unix" { address = "/s" }', "listener.unix", "only tcp"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_foo = 1 }', "listener.tcp.tls_foo",
     "unknown"),
    (STORAGE + 'listener "tcp" { tls_disable = "yes" }', "listener.tcp.tls_disable", "boolean"),
    (STORAGE + 'listener "tcp" { tls_key_file = "k" }', "listener.tcp.tls_cert_file",
     "required unless tls_disable"),
    (STORAGE + 'listener "tcp" { tls_cert_file = "c" }', "listener.tcp.tls_key_file",
     "required unless tls_disable"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_min_version = "tls10" }',
     "listener.tcp.tls_min_version", "TLS 1.2 is the minimum"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_min_version = "tls11" }',
     "listener.tcp.tls_min_version", "TLS 1.2 is the minimum"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_min_version = "ssl3" }',
     "listener.tcp.tls_min_version", "must be one of tls12, tls13"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_max_version = "tls11" }',
     "listener.tcp.tls_max_version", "TLS 1.2 is the minimum"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 tls_min_version = "tls13" '
     'tls_max_version = "tls12" }', "listener.tcp.tls_max_version", "lower than"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = "127.0.0.1:99999" }',
     "listener.tcp.address", "invalid port"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = "127.0.0.1:http" }',
     "listener.tcp.address", "invalid port"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = "127.0.0.1" }',
     "listener.tcp.address", "host:port"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = ":8200" }',
     "listener.tcp.address", "host:port"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = "::1:8200" }',
     "listener.tcp.address", "bracketed"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = "[zz::1]:8200" }',
     "listener.tcp.address", "IPv6"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 address = 8200 }',
     "listener.tcp.address", "string"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 cluster_address = "x:0" }',
     "listener.tcp.cluster_address", "invalid port"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 max_request_size = 0 }',
     "listener.tcp.max_request_size", "at least 1"),
    (STORAGE + 'listener "tcp" { tls_disable = 1 max_request_size = "32MiB" }',
     "listener.tcp.max_request_size", "integer"),
    (BASE + 'api_addr = "ftp://x:8200"', "api_addr", "http:// or https://"),
    (BASE + 'api_addr = "localhost:8200"', "api_addr", "URL"),
    (BASE + 'api_addr = "http://[::1:8200"', "api_addr", "URL"),
    (BASE + 'cluster_addr = "http://10.0.0.1:8201"', "cluster_addr", "https://"),
    (BASE + "cluster_name = 5", "cluster_name", "string"),
    (BASE + 'log_level = "verbose"', "log_level", "must be one of"),
    (BASE + 'log_format = "xml"', "log_format", "standard, json"),
    (BASE + 'default_lease_ttl = "abc"', "default_lease_ttl", "invalid duration"),
    (BASE + 'max_lease_ttl = "-1h"', "max_lease_ttl", "invalid duration"),
    (BASE + "max_lease_ttl = 0", "max_lease_ttl", "greater than zero"),
    (BASE + 'default_lease_ttl = "800h"', "default_lease_ttl", "must not exceed max_lease_ttl"),
    (BASE + 'default_lease_ttl = "2h" max_lease_ttl = "1h"', "default_lease_ttl", "exceed"),
    (BASE + 'disable_mlock = "nah"', "disable_mlock", "boolean"),
    (BASE + "ui = 2", "ui", "boolean"),
    (BASE + "ui = true\nui = false", "ui", "boolean"),
    (BASE + "disable_cache = \"on\"", "disable_cache", "boolean"),
    (BASE + "pid_file = 3", "pid_file", "string"),
    (BASE + "workers = 0", "workers", "at least 1"),
    (BASE + 'workers = "many"', "workers", "integer"),
    (BASE + "workers = true", "workers", "integer"),
    (BASE + 'telemetry { statsd_address = "x" }', "telemetry.statsd_address",
     "no telemetry"),
    (BASE + 'telemetry { disable_hostname = "x" }', "telemetry.disable_hostname", "boolean"),
    (BASE + 'telemetry { prometheus_retention_time = "x" }',
     "telemetry.prometheus_retention_time", "duration"),
    (BASE + "telemetry {}\ntelemetry {}", "telemetry", "single block"),
])
def test_validation_names_key(text: str, key: str, fragment: str) -> None:
    err = _error(text, source="test.hcl")
    assert err.key == key
    assert str(err).startswith(f"test.hcl: {key}: ")
    assert fragment in err.reason


def test_message_format_matches_stanza_path() -> None:
    err = _error(STORAGE + 'listener "tcp" { tls_disable = 1 tls_min_version = "ssl3" }')
    assert "listener.tcp.tls_min_version: must be one of tls12, tls13" in str(err)
    assert isinstance(err, ValueError)


def test_json_duplicate_key_rejected() -> None:
    text = '{"storage": {"inmem": {}}, "ui": true, "ui": false}'
    assert _error(text, dev=True).key == "ui"


@pytest.mark.parametrize("text", ["[]", '"x"'])
def test_json_top_level_must_be_object(text: str) -> None:
    assert "top level" in str(_error(text, fmt="json"))


def test_unknown_format() -> None:
    assert "format" in str(_error(BASE, fmt="yaml"))


# --- workers and inmem -----------------------------------------------------------------------

def test_inmem_defaults_to_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert parse_config('storage "inmem" {}\n' + LISTENER).workers == 1
    assert parse_config('storage "inmem" {}\n' + LISTENER + "workers = 1").workers == 1


def test_file_storage_defaults_to_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert parse_config(BASE).workers == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert parse_config(BASE).workers == 1


def test_inmem_with_several_workers_rejected() -> None:
    err = _error('storage "inmem" {}\n' + LISTENER + "workers = 4")
    assert err.key == "workers"
    assert "per-process" in err.reason


def test_inmem_ha_storage_with_several_workers_rejected() -> None:
    err = _error(BASE + 'ha_storage "inmem" {}\nworkers = "2"')
    assert err.key == "workers" and "ha_storage" in err.reason


# --- files and syntax ------------------------------------------------------------------------

def test_load_config_hcl_and_json_files(tmp_path: Path) -> None:
    (tmp_path / "server.hcl").write_text(FULL_HCL)
    (tmp_path / "server.json").write_text(json.dumps(FULL_JSON))
    assert load_config(tmp_path / "server.hcl") == load_config(str(tmp_path / "server.json"))


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.hcl"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(missing) in str(info.value)
    assert "cannot read" in str(info.value)


def test_load_config_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a config file")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.source == str(tmp_path)
    assert "no configuration files" in info.value.reason


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.hcl"
    path.write_bytes(b"ui = \"\xff\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_hcl_syntax_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.hcl"
    path.write_text('storage "file" {\n  path = "/data"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "HCL syntax error" in str(info.value)
    assert info.value.source == os.fspath(path)


@pytest.mark.parametrize("text", ["a = = 1", "$$$", 'a = "unterminated', "x = 1/0"])
def test_hcl_garbage_is_config_error(text: str) -> None:
    assert "HCL syntax error" in str(_error(text))


def test_json_syntax_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"storage": ')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "JSON syntax error" in str(info.value)


# --- several files and directories (like vault server -config=A -config=DIR) -----------------

TLS_LISTENER = ('listener "tcp" {\n  address = "0.0.0.0:8200"\n'
                '  tls_cert_file = "/tls/c.pem"\n  tls_key_file = "/tls/k.pem"\n}\n')


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def _load_error(*paths: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(list(paths))
    return info.value


def test_directory_merges_its_files_in_name_order(tmp_path: Path) -> None:
    conf = _write(tmp_path / "config.d", {
        "10-storage.hcl": STORAGE,
        "20-listener.hcl": TLS_LISTENER,
        "30-addr.json": json.dumps({"api_addr": "https://a.example:8200", "workers": 2}),
        "40-override.hcl": 'workers = 3\nlog_level = "debug"\n',
        "README": "not read",
        "old.hcl.bak": "not read either",
        "sub.hcl": "",  # a directory named *.hcl: skipped, no recursion
    })
    (conf / "sub.hcl").unlink()
    _write(conf / "sub.hcl", {"x.hcl": "this = is not read"})
    cfg = load_config(conf)
    assert cfg.storage == StorageConfig("file", {"path": "/data"})
    assert [listener.address for listener in cfg.listeners] == ["0.0.0.0:8200"]
    assert cfg.api_addr == "https://a.example:8200"
    assert (cfg.workers, cfg.log_level) == (3, "debug")  # the later file wins


def test_merged_directory_equals_single_file(tmp_path: Path) -> None:
    single = _write(tmp_path, {"one.hcl": STORAGE + TLS_LISTENER + "workers = 2\n"})
    conf = _write(tmp_path / "d", {"a.hcl": STORAGE, "b.hcl": TLS_LISTENER + "workers = 2\n"})
    assert load_config(conf) == load_config(single / "one.hcl")


def test_files_and_directories_mix_and_later_arguments_win(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": STORAGE + LISTENER + "workers = 2\n"})
    extra = _write(tmp_path, {"extra.hcl": "workers = 5\n"}) / "extra.hcl"
    assert load_config([conf, extra]).workers == 5
    assert load_config([extra, conf]).workers == 2


def test_listeners_accumulate_across_files(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {
        "a.hcl": STORAGE + 'listener "tcp" { address = "127.0.0.1:8200"\n tls_disable = 1 }\n',
        "b.json": json.dumps({"listener": [
            {"tcp": {"address": "127.0.0.1:8300", "tls_disable": True}},
            {"tcp": {"address": "127.0.0.1:8400", "tls_disable": True}}]}),
    })
    assert [lst.port for lst in load_config(conf).listeners] == [8200, 8300, 8400]


@pytest.mark.parametrize(("stanza", "text"), [
    ("storage", STORAGE),
    ("storage", 'backend "file" { path = "/other" }\n'),  # the old name is the same stanza
    ("ha_storage", 'ha_storage "file" { path = "/ha" }\n'),
    ("seal", 'seal "pkcs11" { lib = "/lib.so" }\n'),
])
def test_single_stanza_in_two_files_is_an_error_naming_both(
        tmp_path: Path, stanza: str, text: str) -> None:
    first = text if stanza == "storage" else STORAGE + text
    conf = _write(tmp_path / "d", {"a.hcl": first + LISTENER, "b.hcl": text})
    err = _load_error(conf)
    assert err.key == stanza
    assert err.source == str(conf / "b.hcl")
    assert str(conf / "a.hcl") in err.reason and "one config file only" in err.reason


def test_unknown_key_names_its_file(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE, "b.hcl": "wokers = 2\n"})
    err = _load_error(conf)
    assert (err.source, err.key) == (str(conf / "b.hcl"), "wokers")
    assert "did you mean 'workers'" in str(err)


def test_bad_value_names_the_file_that_set_it(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE, "b.hcl": 'log_level = "loud"\n'})
    err = _load_error(conf)
    assert (err.source, err.key) == (str(conf / "b.hcl"), "log_level")


def test_overridden_bad_value_is_not_an_error(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE + 'log_level = "loud"\n',
                                   "b.hcl": 'log_level = "warn"\n'})
    assert load_config(conf).log_level == "warn"


def test_listener_error_keeps_the_path_of_its_own_file(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {
        "a.hcl": BASE,
        "b.hcl": ('listener "tcp" { tls_disable = true }\n'
                  'listener "tcp" { tls_disable = true\n tls_min_version = "tls11" }\n'),
        "c.hcl": 'listener "tcp" { address = "nope" }\n',
    })
    err = _load_error(conf / "a.hcl", conf / "b.hcl")
    # Global index 2, but [1] in b.hcl: the same message as loading b.hcl on its own.
    assert (err.source, err.key) == (str(conf / "b.hcl"), "listener.tcp[1].tls_min_version")
    err = _load_error(conf / "a.hcl", conf / "c.hcl")
    assert (err.source, err.key) == (str(conf / "c.hcl"), "listener.tcp.address")


def test_listener_unknown_option_names_its_file(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": STORAGE,
                                   "b.hcl": 'listener "tcp" { tls_disable = 1\n tls_min = 1 }'})
    err = _load_error(conf)
    assert (err.source, err.key) == (str(conf / "b.hcl"), "listener.tcp.tls_min")


def test_missing_stanza_names_every_file(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": LISTENER, "b.hcl": "workers = 2\n"})
    err = _load_error(conf)
    assert err.key == "storage"
    assert err.source == f"{conf / 'a.hcl'}, {conf / 'b.hcl'}"


def test_syntax_error_in_one_file_names_it(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE, "b.json": '{"workers": '})
    err = _load_error(conf)
    assert err.source == str(conf / "b.json") and "JSON syntax error" in err.reason


def test_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE})
    assert len(load_config([conf, conf / "a.hcl", conf]).listeners) == 1


def test_missing_path_among_several(tmp_path: Path) -> None:
    conf = _write(tmp_path / "d", {"a.hcl": BASE})
    err = _load_error(conf, tmp_path / "missing.hcl")
    assert err.source == str(tmp_path / "missing.hcl") and "cannot read" in err.reason


def test_no_paths_at_all() -> None:
    with pytest.raises(ConfigError, match="no configuration files"):
        load_config([])


# --- dev mode --------------------------------------------------------------------------------

def test_dev_config() -> None:
    cfg = dev_config()
    assert isinstance(cfg, ServerConfig)
    assert cfg.storage == StorageConfig("inmem", {})
    assert cfg.listeners == (ListenerConfig(address="127.0.0.1:8200", tls_disable=True),)
    assert cfg.workers == 1
    assert dev_config("[::1]:8300").listeners[0].port == 8300


def test_dev_config_bad_address() -> None:
    with pytest.raises(ConfigError) as info:
        dev_config("localhost")
    assert info.value.key == "listener.tcp.address"


def test_dev_flag_allows_no_listener() -> None:
    assert parse_config(STORAGE, dev=True).listeners == ()
