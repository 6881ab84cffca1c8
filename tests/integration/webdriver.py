"""A minimal W3C WebDriver client over chromedriver (Debian's chromium-driver): enough to run
JavaScript in a real headless Chromium, switch between its windows, take screenshots and read
results back. Chromium gets the flags from ../shared/chromium.md so that nothing leaves
loopback; WebRTC over host candidates also needs a network namespace whose only interface is
lo (run_in_loopback_netns)."""
import base64
import json
import os
import shutil
import signal
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

# WebRTC peers on loopback with a fake camera and microphone (a test pattern and a beep),
# allowed without a prompt and played without a gesture. Only inside a lo-only namespace.
FAKE_MEDIA_FLAGS = [
    "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    # Several windows of one browser all keep running at full speed.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def find_chromium():
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if path and os.path.exists(path):
            return path
    return None


def run_in_loopback_netns(argv, prefix, timeout):
    """Runs argv inside a new network namespace whose only interface is lo, then deletes the
    namespace (and ends what still runs in it). Returns (exit code, None), or (None, why) when
    no namespace can be made. Namespaces left by killed runs of the same prefix go first."""
    def pids(ns):
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def delete(ns):
        for pid in pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        ns = line.split(" ")[0]
        owner = ns[len(prefix) + 1:]
        if ns.startswith(prefix + "-") and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            delete(ns)
    name = f"{prefix}-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"ip netns add failed: {made.stderr.strip() or made.returncode}"
    def on_term(*_):
        raise KeyboardInterrupt  # SIGTERM (ctest's timeout) must still delete the namespace

    previous = signal.signal(signal.SIGTERM, on_term)
    child = None
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        child = subprocess.Popen(["ip", "netns", "exec", name] + argv, start_new_session=True)
        return child.wait(timeout), None
    except subprocess.TimeoutExpired:
        print(f"  FAIL  timed out after {timeout} s", flush=True)
        return 1, None
    except KeyboardInterrupt:
        return 1, None
    finally:
        if child and child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        delete(name)
        signal.signal(signal.SIGTERM, previous)


class Browser:
    def __init__(self, extra_args=(), user=None):
        """`user`: a uid to run chromedriver and Chromium as (a test's firewall can then tell the
        browser's packets from the server's)."""
        self.home = tempfile.mkdtemp(prefix="chromium-home-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, HOME=self.home)
        as_user = {}
        if user is not None:
            os.chown(self.home, user, user)
            as_user = {"user": user, "group": user, "extra_groups": []}
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, **as_user)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": find_chromium(),
            "args": CHROMIUM_FLAGS + list(extra_args) + [f"--user-data-dir={self.home}/profile"]}}}}
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

    def new_window(self):
        """Opens another top-level window and returns its handle (stays on the current one)."""
        return self._call("POST", f"/session/{self.session}/window/new", {"type": "window"})["handle"]

    def window(self):
        """The handle of the current window."""
        return self._call("GET", f"/session/{self.session}/window")

    def switch_to(self, handle):
        self._call("POST", f"/session/{self.session}/window", {"handle": handle})

    def screenshot(self, path):
        """Saves the current window as a PNG at `path`."""
        png = base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

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
