"""A minimal W3C WebDriver client over chromedriver (Debian's chromium-driver): enough to run
JavaScript in a real headless Chromium and read results back. Chromium gets the flags from
../shared/chromium.md so that nothing leaves loopback."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,DialMediaRouteProvider,"
    "OptimizationHints,Translate",
    "--media-router=0", "--no-pings", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-default-apps", "--disable-breakpad",
]


def find_chromium():
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if path and os.path.exists(path):
            return path
    return None


class Browser:
    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="chromium-home-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, HOME=self.home)
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": find_chromium(),
            "args": CHROMIUM_FLAGS + [f"--user-data-dir={self.home}/profile"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode())["value"]

    def open(self, url):
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def run(self, script, *args):
        """Runs `script` (a function body; `arguments` holds args) and returns its value."""
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script, timeout=10, *args):
        """Re-runs `script` until it returns something truthy; returns that (or None)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.run(script, *args)
            if value:
                return value
            time.sleep(0.05)
        return None

    def close(self):
        try:
            self._call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        shutil.rmtree(self.home, ignore_errors=True)
