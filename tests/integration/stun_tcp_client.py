"""The independent STUN/TURN client of stun_client.py over a real TCP connection (RFC 8656
§3.1): STUN messages and ChannelData framed on the stream, ChannelData padded to 4 bytes."""
import socket
import struct

import stun_client as sc


class TcpTurnClient(sc.TurnClient):
    def __init__(self, server, user, password, local=None, rcvbuf=None, timeout=2.0):
        self.server, self.user, self.password = server, user, password
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect(), so the window the client announces stays this small.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if local:
            self.sock.bind(local)
        self.sock.settimeout(timeout)
        self.sock.connect(server)
        self.realm = self.nonce = None
        self.indications = []  # frames that were not responses, in order

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the server")
            data += chunk
        return data

    def read_frame(self):
        """(kind, bytes): 'stun' with the whole message, or 'channel' with (number, data)."""
        head = self.recv_exact(4)
        number, length = struct.unpack("!HH", head)
        if head[0] >> 6 == 1:
            data = self.recv_exact(length + (4 - length % 4) % 4)[:length]
            return "channel", (number, data)
        return "stun", head + self.recv_exact(16 + length)

    def exchange(self, data):
        self.sock.sendall(data)
        while True:
            kind, frame = self.read_frame()
            if kind == "stun":
                cls, code, attrs = sc.parse(frame)
                if cls in (2, 3):
                    return cls, code, attrs
            self.indications.append((kind, frame))

    def closed_by_server(self, timeout):
        return closed_by_server(self.sock, timeout)


def raw_connection(server, local=None, timeout=2.0):
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if local:
        s.bind(local)
    s.settimeout(timeout)
    s.connect(server)
    return s


def closed_by_server(s, timeout):
    """True when the server ends the connection `s` within `timeout` seconds."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
