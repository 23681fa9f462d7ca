"""A TLS request right after a seal operation, in the same thread (issue 13, found by
Molecule scenario hsm): SoftHSM leaves errors on OpenSSL's per-thread error queue (e.g.
``ENGINE: NO_SUCH_ENGINE`` from its C_Initialize), which Python's ssl module then took
for its own: the Consul storage write that follows the wrap at sys/init failed with
"TLS with consul failed". Real SoftHSM tokens, a real TLS server; no mock."""

from __future__ import annotations

import ctypes
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from strongroom.seal.pkcs11 import Pkcs11Seal
from strongroom.seal.pkcs11_config import PartitionConfig
from tests.ansible.runbook_support import write_pki
from tests.support.softhsm import USER_PIN, SoftHsm, private_softhsm

softhsm = pytest.fixture(private_softhsm)


@pytest.fixture
def tls_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A local HTTPS server answering 200; (its URL, its CA file)."""
    pki = write_pki(tmp_path)

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.cert), str(pki.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", str(pki.ca)
    finally:
        server.shutdown()
        server.server_close()


def openssl_error_queued() -> int:
    lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
    return int(lib.ERR_peek_error())


def test_tls_works_right_after_a_wrap_and_an_unwrap(softhsm: SoftHsm,
                                                    tls_url: tuple[str, str]) -> None:
    url, ca = tls_url
    softhsm.init_token("tok-a")
    seal = Pkcs11Seal([PartitionConfig(name="hsm-a", priority=1, lib=softhsm.lib,
                                       token_label="tok-a", key_label="strongroom-root",
                                       generate_key=True, pin=USER_PIN)])
    stored = seal.wrap(bytearray(range(32)))
    assert openssl_error_queued() == 0
    assert requests.get(url, verify=ca, timeout=5).status_code == 200
    assert seal.unwrap(stored) == bytearray(range(32))
    assert openssl_error_queued() == 0
    assert requests.get(url, verify=ca, timeout=5).status_code == 200
