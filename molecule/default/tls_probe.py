"""Try one TLS handshake at exactly one protocol version; print the outcome as JSON.

Usage: tls_probe.py HOST PORT {TLSv1,TLSv1_1,TLSv1_2,TLSv1_3}

The client is made able to speak the old versions (SECLEVEL=0), so a refusal shows the
server's choice: "refused" means the server answered with a protocol_version alert.
"""

import json
import socket
import ssl
import sys
import warnings

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1/TLSv1_1
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # only the protocol version is under test here
context.set_ciphers("DEFAULT:@SECLEVEL=0")
context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, name)
outcome = {"offered": name}
try:
    with socket.create_connection((host, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            outcome.update(result="accepted", version=tls.version())
except ssl.SSLError as exc:
    refused = "ALERT_PROTOCOL_VERSION" in str(exc)
    outcome.update(result="refused" if refused else "error", error=str(exc))
except OSError as exc:
    outcome.update(result="error", error=str(exc))
print(json.dumps(outcome))
