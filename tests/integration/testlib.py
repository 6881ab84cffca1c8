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
