"""What the integration tests share: counted checks and free loopback ports."""
import socket

FAILURES = []


def check(cond, what):
    print(("  ok    " if cond else "  FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def free_port(kind=socket.SOCK_DGRAM):
    """A port free on 127.0.0.1 now (UDP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary():
    """Prints the closing line and returns the exit code."""
    print(f"{len(FAILURES)} failed" if FAILURES else "all checks passed")
    return 1 if FAILURES else 0


def http_get(port, target, headers=None, host="127.0.0.1"):
    """(status, body) of one GET."""
    import http.client
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", target, headers=headers or {})
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    c.close()
    return r.status, data


def wait_http(port, target="/healthz", timeout=15):
    """Polls until the server answers `target` at all; True if it did."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            http_get(port, target)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def try_get(port, target, headers=None):
    """(status, body) of one GET, or (0, "") when nothing answers."""
    try:
        return http_get(port, target, headers)
    except OSError:
        return 0, ""


def wait_status(port, target, want, timeout):
    """Polls `target` until it answers `want`; True if it did within `timeout` seconds."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        if try_get(port, target)[0] == want:
            return True
        time.sleep(0.1)
    return False


def alive(pid):
    """True while process `pid` runs (a zombie does not count)."""
    import os
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
