#!/usr/bin/env python3
"""HTTPS and WSS for the control plane over real sockets on 127.0.0.0/8. `ringlane run` with
--http-tls and a certificate made here: the demo page and /api/* over HTTPS (the API key still
required), a WSS join, a plain HTTP request to the TLS port answered with a clear 400; SIGHUP
with a new certificate: a WSS connection opened before goes on, a new TLS connection gets the new
certificate (SHA-256 of the DER compared), a bad file keeps it; X-Forwarded-For counts towards
the per-address WebSocket limit only from a --trusted-proxy. ringlane-control: the same listener
from its own --tls-cert/--tls-key, and clear errors for a missing or mismatched key. `ringlane
run` without --tls-cert: an expired development certificate in the state directory is made anew,
and the new one is kept across a restart.

Usage: https_test.py --ringlane PATH --control PATH
"""
import argparse
import asyncio
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, free_port, summary, wait_http  # noqa: E402
from wslib import Client, make_jwt  # noqa: E402

SECRET = "https-test-jwt-secret-0123456789"
API_KEY = "https-test-key"


def make_cert(directory, name):
    """A self-signed P-256 certificate for 127.0.0.1 (cert.pem, key.pem paths)."""
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def make_expired_cert(directory, cert, key):
    """A certificate for localhost that expired in 2020 (`openssl ca` sets the dates; `req`
    cannot backdate), written to `cert` / `key`."""
    cnf = os.path.join(directory, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                "policy = p\ndefault_md = sha256\n[p]\ncommonName = supplied\n")
    open(os.path.join(directory, "index.txt"), "w").close()
    with open(os.path.join(directory, "serial"), "w") as f:
        f.write("01\n")
    csr = os.path.join(directory, "old.csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], check=True, capture_output=True)
    subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", key, "-in", csr,
                    "-out", cert, "-notext",
                    "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"],
                   check=True, capture_output=True, cwd=directory)


def der_sha256(cert_file):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(cert_file).read())).hexdigest()


def trusting(cert_file):
    """A client context that trusts exactly this certificate (hostname 127.0.0.1 checked)."""
    ctx = ssl.create_default_context(cafile=cert_file)
    return ctx


def served_fingerprint(port):
    """SHA-256 of the certificate a new TLS connection to `port` is given."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def https_get(port, target, ctx, headers=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    c.request("GET", target, headers=headers or {})
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    c.close()
    return r.status, body


def plain_request_to(port):
    """A plain HTTP/1.1 GET sent to `port`: (status line, body) of what comes back, or the error."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        deadline = time.time() + 5
        while time.time() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(errors="replace"), body.decode(errors="replace")


def wait_log(path, text, after=0, timeout=10):
    """True once `text` appears in the log past offset `after`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(path, errors="replace").read()[after:]:
            return True
        time.sleep(0.05)
    return False


def wait_tls(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            served_fingerprint(port)
            return True
        except OSError:
            time.sleep(0.05)
    return False


async def wss_checks(tls_port, http_port, ctx, proc, log, cert, key, cert_b, key_b):
    room = f"r{os.getpid()}"
    url = f"wss://127.0.0.1:{tls_port}/ws"
    a = await Client.open(url, make_jwt(SECRET, "alice", room), ssl=ctx)
    welcome = await a.expect("welcome")
    check(welcome and welcome.get("participant") == "alice", f"WSS: a token in the URL is welcomed ({welcome})")
    await a.send({"type": "join", "room": room, "id": 1})
    joined = await a.expect("joined")
    check(joined and joined.get("room") == room, f"WSS: alice joins {room} ({joined})")

    # SIGHUP with a new certificate in the same files: new connections get it, alice goes on.
    before = der_sha256(cert)
    check(served_fingerprint(tls_port) == before, "a new TLS connection is served the first certificate")
    shutil.copyfile(cert_b, cert)
    shutil.copyfile(key_b, key)
    offset = len(open(log, errors="replace").read())
    proc.send_signal(signal.SIGHUP)
    check(wait_log(log, "HTTPS: certificate reloaded", offset), "SIGHUP: the log says the certificate was reloaded")
    check(wait_log(log, "passed on to the data plane", offset) and
          wait_log(log, "SIGHUP: TLS certificate reloaded", offset),
          "SIGHUP is passed on to the data plane, which reloads its own certificate")
    check(served_fingerprint(tls_port) == der_sha256(cert_b),
          "after SIGHUP a new TLS connection is served the new certificate (SHA-256 compared)")
    await a.send({"type": "ping", "id": 2})
    pong = await a.expect("pong")
    check(pong and pong.get("id") == 2, f"the WSS connection opened before the reload goes on ({pong})")
    # From another address: --ws-max-conns-per-ip 1 (for forwarded_checks) holds alice's.
    b = await Client.open(url, make_jwt(SECRET, "bob", room), source="127.0.0.4", ssl=trusting(cert_b))
    await b.expect("welcome")
    await b.send({"type": "join", "room": room, "id": 3})
    joined_b = await b.expect("joined")
    seen = await a.expect("participant_joined")
    check(joined_b and seen and seen.get("participant") == "bob",
          f"a WSS client with the new certificate joins; the old connection hears it ({seen})")
    await b.ws.close()

    # A file that does not load: the log says so, and the certificate in use stays.
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    offset = len(open(log, errors="replace").read())
    proc.send_signal(signal.SIGHUP)
    check(wait_log(log, "certificate not reloaded", offset), "SIGHUP with a bad file: an error is logged")
    check(served_fingerprint(tls_port) == der_sha256(cert_b), "... and new connections keep the last good certificate")
    check(proc.poll() is None and "data plane exited" not in open(log, errors="replace").read(),
          "ringlane run and its data plane survive both reloads")
    await a.send({"type": "ping", "id": 4})
    pong = await a.expect("pong")
    check(pong and pong.get("id") == 4, "the WSS connection from before both reloads still answers")
    await a.ws.close()


async def forwarded_checks(http_port):
    """--ws-max-conns-per-ip 1, --trusted-proxy 127.0.0.2: X-Forwarded-For names the address a
    connection counts against only when the trusted proxy sends it."""
    url = f"ws://127.0.0.1:{http_port}/ws"
    room = f"x{os.getpid()}"

    async def outcome(source, forwarded, who):
        c = await Client.open(url, make_jwt(SECRET, who, room), source=source,
                              extra_headers={"X-Forwarded-For": forwarded})
        m = await c.recv()
        kept = c
        return (m or {}).get("type") == "welcome", (m or {}).get("code"), kept

    open_ = []
    ok1, _, c1 = await outcome("127.0.0.3", "198.51.100.1", "u1")
    ok2, code2, c2 = await outcome("127.0.0.3", "198.51.100.2", "u2")
    open_ += [c1, c2]
    check(ok1 and not ok2 and code2 == "too_many_connections",
          f"from an untrusted peer X-Forwarded-For is ignored: a second connection from 127.0.0.3 is "
          f"refused although it names another address ({ok1}, {code2})")
    ok3, _, c3 = await outcome("127.0.0.2", "192.0.2.10, 198.51.100.7", "t1")
    ok4, _, c4 = await outcome("127.0.0.2", "198.51.100.8", "t2")
    ok5, code5, c5 = await outcome("127.0.0.2", "203.0.113.9, 198.51.100.8", "t3")
    open_ += [c3, c4, c5]
    check(ok3 and ok4, f"from the trusted proxy each forwarded client has its own slot ({ok3}, {ok4})")
    check(not ok5 and code5 == "too_many_connections",
          f"and the forwarded address is the one counted: 198.51.100.8 again is refused ({ok5}, {code5})")
    for c in open_:
        await c.ws.close()


def run_node(a, tmp):
    log = os.path.join(tmp, "ringlane.log")
    cert, key = make_cert(tmp, "served")
    cert_b, key_b = make_cert(tmp, "renewed")
    http_port, tls_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, "state"))
    proc = subprocess.Popen(
        [a.ringlane, "run", "--name", f"https-{os.getpid()}", "--workers", "1", "--media-port", "0",
         "--listen", f"127.0.0.1:{turn_port}", "--listen-tcp", "off", "--listen-tls", "off",
         "--http", f"127.0.0.1:{http_port}", "--http-tls", f"127.0.0.1:{tls_port}",
         "--tls-cert", cert, "--tls-key", key, "--api-key", API_KEY, "--jwt-secret", SECRET,
         "--trusted-proxy", "127.0.0.2/32", "--ws-max-conns-per-ip", "1"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        check(wait_http(http_port) and wait_tls(tls_port), "ringlane run serves HTTP and HTTPS")
        check(wait_log(log, f"HTTPS and WSS on 127.0.0.1:{tls_port}"), "the log names the HTTPS listener")
        ctx = trusting(cert)
        status, body = https_get(tls_port, "/", ctx)
        check(status == 200 and 'src="/app.js"' in body, f"HTTPS GET / serves the demo page, certificate verified ({status})")
        target = "/api/join-token?room=r1&identity=alice"
        status, _ = https_get(tls_port, target, ctx)
        check(status == 401, f"HTTPS /api/join-token without the API key is refused ({status})")
        status, body = https_get(tls_port, target, ctx, {"Authorization": f"Bearer {API_KEY}"})
        grant = json.loads(body) if status == 200 else {}
        check(status == 200 and grant.get("ws_url") == f"wss://127.0.0.1:{tls_port}/ws",
              f"HTTPS /api/join-token with the key answers, naming the wss:// URL ({status}, {grant.get('ws_url')})")
        status, body = https_get(tls_port, "/api/turn-credentials", ctx, {"Authorization": f"Bearer {API_KEY}"})
        check(status == 200 and "uris" in body, f"HTTPS /api/turn-credentials with the key ({status})")
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        c.request("GET", target, headers={"Authorization": f"Bearer {API_KEY}"})
        plain_grant = json.loads(c.getresponse().read())
        check(plain_grant.get("ws_url") == f"ws://127.0.0.1:{http_port}/ws",
              f"plain HTTP keeps handing out ws:// ({plain_grant.get('ws_url')})")
        c.request("GET", target, headers={"Authorization": f"Bearer {API_KEY}", "X-Forwarded-Proto": "https"})
        spoofed = json.loads(c.getresponse().read())
        c.close()
        check(spoofed.get("ws_url") == f"ws://127.0.0.1:{http_port}/ws",
              "X-Forwarded-Proto from an untrusted peer is ignored")
        line, body = plain_request_to(tls_port)
        check(" 400 " in line + " " and "tls_required" in body,
              f"plain HTTP to the TLS port: a clear 400 and the close ({line!r})")
        check(served_fingerprint(tls_port) == der_sha256(cert), "the TLS port still serves TLS after that")
        asyncio.run(wss_checks(tls_port, http_port, ctx, proc, log, cert, key, cert_b, key_b))
        asyncio.run(forwarded_checks(http_port))
        check(proc.poll() is None, "ringlane run still running")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return log


def run_dev_cert(a, tmp):
    """`ringlane run` without --tls-cert: a self-signed certificate kept in the state directory,
    made anew when the one there has expired, kept across a restart otherwise."""
    state = os.path.join(tmp, "dev-state")
    os.makedirs(state)
    name = f"devcert-{os.getpid()}"
    cert, key = os.path.join(state, f"{name}.tls-cert.pem"), os.path.join(state, f"{name}.tls-key.pem")
    make_expired_cert(state, cert, key)
    expired_fp = der_sha256(cert)
    log = os.path.join(tmp, "devcert.log")
    fps = []
    for round_ in range(2):
        http_port, tls_port, turn_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM), free_port()
        proc = subprocess.Popen(
            [a.ringlane, "run", "--name", name, "--workers", "1", "--media-port", "0",
             "--listen", f"127.0.0.1:{turn_port}", "--listen-tcp", "off", "--listen-tls", "off",
             "--http", f"127.0.0.1:{http_port}", "--http-tls", f"127.0.0.1:{tls_port}",
             "--api-key", API_KEY, "--jwt-secret", SECRET],
            stdout=open(log, "a"), stderr=subprocess.STDOUT, env=dict(os.environ, RINGLANE_STATE_DIR=state))
        try:
            check(wait_tls(tls_port), f"start {round_ + 1} without --tls-cert serves HTTPS")
            fps.append(served_fingerprint(tls_port))
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if round_ == 0:
            text = open(log, errors="replace").read()
            check("has expired: making a new one" in text and "made now" in text,
                  "an expired development certificate in the state directory: said so, made a new one")
            left = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-checkend", str(300 * 86400)],
                                  capture_output=True)
            check(fps[0] == der_sha256(cert) != expired_fp and left.returncode == 0,
                  "... served, written over the old one, and valid for the coming 300 days")
    check(fps[1] == fps[0] and "kept from before" in open(log, errors="replace").read(),
          "a restart keeps the new certificate")
    return log


def run_control(a, tmp):
    cert, key = make_cert(tmp, "control")
    other_cert, other_key = make_cert(tmp, "other")
    http_port, tls_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    base = [a.control, "--listen", f"127.0.0.1:{http_port}", "--http-tls", f"127.0.0.1:{tls_port}",
            "--api-key", API_KEY, "--jwt-secret", SECRET]
    r = subprocess.run(base, capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "--tls-cert" in r.stderr,
          f"ringlane-control --http-tls without a certificate: exit 2, says what is missing ({r.stderr.strip()})")
    r = subprocess.run(base + ["--tls-cert", cert, "--tls-key", other_key], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and ("does not belong" in r.stderr or "mismatch" in r.stderr),
          f"a key of another certificate: exit 2, said so ({r.stderr.strip()})")
    log = os.path.join(tmp, "control.log")
    proc = subprocess.Popen(base + ["--tls-cert", cert, "--tls-key", key], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    try:
        check(wait_tls(tls_port), "ringlane-control serves HTTPS from its own --tls-cert/--tls-key")
        status, _ = https_get(tls_port, "/healthz", trusting(cert))
        check(status == 200, f"ringlane-control HTTPS /healthz ({status})")
        shutil.copyfile(other_cert, cert)
        shutil.copyfile(other_key, key)
        proc.send_signal(signal.SIGHUP)
        check(wait_log(log, "HTTPS: certificate reloaded"), "ringlane-control reloads on SIGHUP")
        check(served_fingerprint(tls_port) == der_sha256(other_cert), "... and serves the new certificate")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    if not shutil.which("openssl"):
        print("skip: the openssl command is needed to make the test's certificates")
        return 77
    tmp = tempfile.mkdtemp(prefix="rl-https-")
    logs = []
    try:
        logs.append(run_node(a, tmp))
        logs.append(run_control(a, tmp))
        logs.append(run_dev_cert(a, tmp))
    except Exception as e:  # a broken connection is a failure too, with the logs
        check(False, f"{type(e).__name__}: {e}")
    code = summary()
    if code:
        for log in [os.path.join(tmp, n) for n in ("ringlane.log", "control.log", "devcert.log")]:
            if os.path.exists(log):
                print(f"--- {log} (tail) ---")
                print(open(log, errors="replace").read()[-4000:])
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
