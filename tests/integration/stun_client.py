"""A small STUN/TURN client over a real UDP socket, written independently of ringlane's C++
codec (hashlib, hmac and zlib only), for negative tests the coturn clients cannot express."""
import hashlib
import hmac
import os
import socket
import struct
import zlib

COOKIE = 0x2112A442
ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, BINDING = 0x003, 0x004, 0x008, 0x009, 0x001
A_USERNAME, A_MI, A_ERROR, A_LIFETIME, A_PEER, A_REALM, A_NONCE = 0x06, 0x08, 0x09, 0x0D, 0x12, 0x14, 0x15
A_RELAYED, A_TRANSPORT, A_MAPPED, A_FINGERPRINT, A_CHANNEL = 0x16, 0x19, 0x20, 0x8028, 0x0C


def _attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)


def _xor_addr(t, host, port, tid):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.inet_pton(fam, host)
    mask = struct.pack("!I", COOKIE) + tid
    x = bytes(a ^ b for a, b in zip(raw, mask))
    return _attr(t, struct.pack("!BBH", 0, 1 if fam == socket.AF_INET else 2, port ^ (COOKIE >> 16)) + x)


def _type(method, cls):
    return (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7)


def build(method, attrs=b"", key=None, cls=0, tid=None):
    tid = tid or os.urandom(12)
    body = attrs
    if key is not None:
        head = struct.pack("!HHI", _type(method, cls), len(body) + 24, COOKIE) + tid
        body += _attr(A_MI, hmac.new(key, head + body, hashlib.sha1).digest())
    head = struct.pack("!HHI", _type(method, cls), len(body) + 8, COOKIE) + tid
    body += _attr(A_FINGERPRINT, struct.pack("!I", (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF))
    return struct.pack("!HHI", _type(method, cls), len(body), COOKIE) + tid + body, tid


def parse(data):
    mtype, length, cookie = struct.unpack("!HHI", data[:8])
    assert cookie == COOKIE and length + 20 == len(data), "not a STUN message"
    attrs, pos = {}, 20
    while pos < len(data):
        t, n = struct.unpack("!HH", data[pos:pos + 4])
        attrs.setdefault(t, data[pos + 4:pos + 4 + n])
        pos += 4 + n + (4 - n % 4) % 4
    cls = ((mtype >> 4) & 1) | ((mtype >> 7) & 2)
    code = None
    if A_ERROR in attrs:
        e = attrs[A_ERROR]
        code = e[2] * 100 + e[3]
    return cls, code, attrs


class TurnClient:
    def __init__(self, server, user, password, family=socket.AF_INET, timeout=2.0):
        self.server, self.user, self.password = server, user, password
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.realm = self.nonce = None

    def key(self):
        return hashlib.md5(f"{self.user}:{self.realm}:{self.password}".encode()).digest()

    def exchange(self, data):
        self.sock.sendto(data, self.server)
        reply, _ = self.sock.recvfrom(4096)
        return parse(reply)

    def request(self, method, attrs=b"", retry_stale=True):
        """Sends a signed request (learning realm/nonce from a 401 first); returns (cls, code, attrs).
        `attrs` is bytes, or a function of the transaction id (XOR addresses need it)."""
        make = attrs if callable(attrs) else (lambda tid: attrs)
        if self.nonce is None:
            tid = os.urandom(12)
            cls, code, a = self.exchange(build(method, make(tid), tid=tid)[0])
            if code != 401:
                return cls, code, a
            self.realm, self.nonce = a[A_REALM].decode(), a[A_NONCE].decode()
        tid = os.urandom(12)
        signed = make(tid) + _attr(A_USERNAME, self.user.encode()) + _attr(A_REALM, self.realm.encode()) \
            + _attr(A_NONCE, self.nonce.encode())
        cls, code, a = self.exchange(build(method, signed, key=self.key(), tid=tid)[0])
        if code == 438 and retry_stale and A_NONCE in a:
            self.nonce = a[A_NONCE].decode()
            return self.request(method, attrs, retry_stale=False)
        return cls, code, a

    def allocate(self):
        return self.request(ALLOCATE, _attr(A_TRANSPORT, b"\x11\0\0\0"))

    def create_permission(self, host, port=9):
        return self.request(CREATE_PERMISSION, lambda tid: _xor_addr(A_PEER, host, port, tid))

    def close(self):
        self.sock.close()
