"""Signaling helpers: JWTs signed here (an implementation independent of ringlane's), and a
small asyncio client over Debian's python3-websockets."""
import asyncio
import base64
import hashlib
import hmac
import json
import time

import websockets


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret, sub, room, exp_in=3600, alg="HS256", extra=None):
    header = {"alg": alg, "typ": "JWT"}
    claims = {"sub": sub, "room": room, "exp": int(time.time()) + exp_in}
    claims.update(extra or {})
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


class Client:
    """One signaling connection; recv() returns the next JSON message (or None on close)."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, url, token=None, source="127.0.0.1", **kw):
        target = url + (f"?access_token={token}" if token else "")
        ws = await websockets.connect(target, local_addr=(source, 0), open_timeout=5,
                                      ping_interval=None, max_size=None, **kw)
        return cls(ws)

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self, timeout=5):
        try:
            return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except websockets.ConnectionClosed:
            return None

    async def expect(self, type_, timeout=5):
        """Skips messages until one of `type_` arrives; returns it (or None)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = await self.recv(max(0.05, deadline - time.time()))
            except asyncio.TimeoutError:
                return None
            if m is None:
                return None
            if m.get("type") == type_:
                return m
        return None

    async def request(self, obj, timeout=5):
        await self.send(obj)
        return await self.recv(timeout)

    async def closed_code(self, timeout=5):
        """Waits for the close; returns the close code the server sent."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            return None
        return self.ws.close_code

    async def close(self):
        await self.ws.close()
