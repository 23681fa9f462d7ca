"""TLS on the listener: 1.2 minimum by default, 1.3 when configured, old clients refused."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import ServerProcess, strongroom_server
from tests.support.tls import TLS_FILE_CONFIG, write_self_signed


@pytest.fixture(params=["", 'tls_min_version = "tls13"'], ids=["default", "tls13"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerProcess, str]]:
    ca = write_self_signed(tmp_path)
    with strongroom_server(tmp_path, TLS_FILE_CONFIG % request.param, scheme="https",
                           verify=str(ca)) as srv:
        yield srv, request.param


def handshake(url: str, version: ssl.TLSVersion) -> str:
    """Negotiated protocol, or raise ssl.SSLError if the server refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Let this client offer old protocols so any refusal is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    host, port = url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return str(tls.version())


def test_protocol_floor(tls_server: tuple[ServerProcess, str]) -> None:
    server, setting = tls_server
    # The server's own refusal (its protocol-version alert), not any client-side failure.
    with pytest.raises(ssl.SSLError) as refused:
        handshake(server.url, ssl.TLSVersion.TLSv1_1)
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value
    if "tls13" in setting:
        with pytest.raises(ssl.SSLError) as refused:
            handshake(server.url, ssl.TLSVersion.TLSv1_2)
        assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value
    else:
        assert handshake(server.url, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(server.url, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    resp = requests.get(server.url + "/v1/sys/health", verify=str(server.workdir / "cert.pem"),
                        timeout=5)
    assert resp.status_code == 501


def test_plain_http_to_tls_listener_gets_no_api(tls_server: tuple[ServerProcess, str]) -> None:
    server, _ = tls_server
    with pytest.raises(requests.RequestException):
        requests.get(server.url.replace("https", "http") + "/v1/sys/health", timeout=5)


def test_control_this_client_can_speak_tls11(tmp_path: Path) -> None:
    """Proves the refusal above is the server's doing: a permissive server accepts 1.1."""
    import threading

    cert = write_self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    server_ctx.load_cert_chain(cert, tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept_one() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    try:
        version = handshake(f"https://127.0.0.1:{port}", ssl.TLSVersion.TLSv1_1)
    except ssl.SSLError:
        pytest.skip("this OpenSSL build cannot speak TLS 1.1 at all")
    finally:
        thread.join(5)
        listener.close()
    assert version == "TLSv1.1"


def test_a_renewed_certificate_is_served_without_a_restart(
        tls_server: tuple[ServerProcess, str]) -> None:
    """Renewal writes new files in place; new connections get them, the node stays unsealed."""
    server, _ = tls_server
    first = served_certificate(server.url)
    renewed_dir = server.workdir / "renewed"
    renewed_dir.mkdir()
    write_self_signed(renewed_dir)
    # Key first, then certificate: a pair caught half-written must not be served.
    (server.workdir / "key.pem").write_bytes((renewed_dir / "key.pem").read_bytes())
    (server.workdir / "cert.pem").write_bytes((renewed_dir / "cert.pem").read_bytes())
    expected = ssl.PEM_cert_to_DER_cert((renewed_dir / "cert.pem").read_text())
    assert expected != first
    deadline = time.monotonic() + 20
    while (now := served_certificate(server.url)) != expected:
        assert now == first, "served neither the old nor the new certificate"
        assert time.monotonic() < deadline, "the renewed certificate was never served"
        time.sleep(0.1)
    resp = requests.get(server.url + "/v1/sys/health", timeout=5,
                        verify=str(renewed_dir / "cert.pem"))
    assert resp.status_code == 501
    assert server.proc.poll() is None


def served_certificate(url: str) -> bytes:
    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der
