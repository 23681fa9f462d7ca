"""The listener's client-certificate settings: parsed from HCL, applied to the context."""

from __future__ import annotations

import ssl
from pathlib import Path

from strongroom.config import parse_config
from strongroom.serve import tls_context
from tests.support.pki import make_ca, make_leaf

HCL = """
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_cert_file = "%(dir)s/server.pem"
  tls_key_file = "%(dir)s/server-key.pem"
  %(extra)s
}
"""


def _listener(tmp_path: Path, extra: str) -> ssl.SSLContext:
    ca = make_ca("Listener")
    make_leaf(ca, "127.0.0.1", server=True).write(tmp_path, "server")
    (tmp_path / "clients.pem").write_text(ca.pem)
    config = parse_config(HCL % {"dir": tmp_path, "extra": extra})
    return tls_context(config.listeners[0])


def test_no_client_ca_file_asks_for_nothing(tmp_path: Path) -> None:
    assert _listener(tmp_path, "").verify_mode is ssl.CERT_NONE


def test_a_client_ca_file_asks_and_verifies(tmp_path: Path) -> None:
    context = _listener(tmp_path, f'tls_client_ca_file = "{tmp_path}/clients.pem"')
    assert context.verify_mode is ssl.CERT_OPTIONAL
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Listener"),),)]


def test_require_and_verify(tmp_path: Path) -> None:
    context = _listener(tmp_path, f'tls_client_ca_file = "{tmp_path}/clients.pem"\n'
                                  "tls_require_and_verify_client_cert = true")
    assert context.verify_mode is ssl.CERT_REQUIRED
    config = parse_config(HCL % {"dir": tmp_path, "extra": ""})
    assert config.listeners[0].tls_require_and_verify_client_cert is False
