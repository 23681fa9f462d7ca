"""A bare client of the coordinator socket, for peer-credential tests."""

# Talks the socket's wire format (4-byte length, JSON) by hand, so the peer needs
# nothing from strongroom: prints the reply, or REFUSED when the server hangs up.
CLIENT = r"""
import json, socket, struct, sys

def ask(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    body = json.dumps({"op": "seal_status", "args": {}}).encode()
    try:
        sock.sendall(struct.pack(">I", len(body)) + body)
        head = b""
        while len(head) < 4:
            chunk = sock.recv(4 - len(head))
            if not chunk:
                return "REFUSED"
            head += chunk
    except (ConnectionResetError, BrokenPipeError):  # closed before or while we sent
        return "REFUSED"
    (size,) = struct.unpack(">I", head)
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data.decode()

if __name__ == "__main__":
    print(ask(sys.argv[1]))
"""
