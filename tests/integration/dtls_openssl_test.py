#!/usr/bin/env python3
"""DTLS-SRTP interop with an implementation we did not write: openssl s_server / s_client on
loopback UDP against ringlane's endpoint (tools/dtls_probe), both roles, both SRTP profiles.
Asserts the handshake completes, the negotiated profile matches, and the keying material we
export equals the bytes OpenSSL prints; a forged fingerprint must fail the handshake.

Usage: dtls_openssl_test.py --probe PATH
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, summary  # noqa: E402

PROFILES = {"SRTP_AES128_CM_SHA1_80": 60, "SRTP_AEAD_AES_128_GCM": 56}




def openssl_material(text):
    m = re.search(r"Keying material: ([0-9A-F]+)", text)
    return m.group(1) if m else None


def judge(r, signaled, log, profile):
    """Checks one probe outcome against what OpenSSL printed in `log`."""
    if signaled:
        wait_for(log, "Keying material: ")
        theirs = openssl_material(open(log).read())
        check(r["state"] in ("connected", "closed"), f"handshake completes ({r['state']} {r['error']})")
        check(r["profile"] == profile, f"negotiated {r['profile']}")
        check(theirs is not None and r["keying_material"] == theirs,
              f"exported {len(r['keying_material']) // 2} bytes equal OpenSSL's")
    else:
        check(r["state"] == "failed" and "fingerprint" in r["error"],
              f"forged fingerprint fails the handshake ({r['error'][:60]})")


def wait_for(path, pattern, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path) as f:
            if re.search(pattern, f.read()):
                return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dtls-interop-")
    cert, key = os.path.join(work, "c.pem"), os.path.join(work, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=interop"],
                   check=True, capture_output=True)
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert], check=True,
                        capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    forged = ("00:" * 32)[:-1]

    for profile, length in PROFILES.items():
        print(f"== ringlane client vs openssl s_server, {profile}")
        for expect, tag in [(fp, "signaled fingerprint"), (forged, "forged fingerprint")]:
            port = free_port()
            log = os.path.join(work, f"s_server-{profile}-{tag[0]}.log")
            # s_server exits when its stdin closes: keep the pipe open until we are done.
            srv = subprocess.Popen(["openssl", "s_server", "-dtls1_2", "-accept", f"127.0.0.1:{port}",
                                    "-cert", cert, "-key", key, "-use_srtp", profile, "-verify", "1",
                                    "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", str(length)],
                                   stdin=subprocess.PIPE, stdout=open(log, "w"), stderr=subprocess.STDOUT)
            try:
                wait_for(log, "ACCEPT")
                out = subprocess.run([a.probe, "--role", "client", "--remote", f"127.0.0.1:{port}",
                                      "--peer-fingerprint", "sha-256 " + expect, "--timeout-ms", "8000"],
                                     capture_output=True, text=True, timeout=30).stdout
                judge(json.loads(out.strip().splitlines()[-1]), expect == fp, log, profile)
            finally:
                srv.kill()
                srv.wait()

        print(f"== ringlane server vs openssl s_client, {profile}")
        for expect, tag in [(fp, "signaled fingerprint"), (forged, "forged fingerprint")]:
            probe = subprocess.Popen([a.probe, "--role", "server", "--listen", "127.0.0.1:0",
                                      "--peer-fingerprint", expect, "--timeout-ms", "8000"],
                                     stdout=subprocess.PIPE, text=True)
            port = int(probe.stdout.readline().split()[1])
            log = os.path.join(work, f"s_client-{profile}-{tag[0]}.log")
            cli = subprocess.Popen(["openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}",
                                    "-cert", cert, "-key", key, "-use_srtp", profile,
                                    "-keymatexport", "EXTRACTOR-dtls_srtp", "-keymatexportlen", str(length)],
                                   stdin=subprocess.PIPE, stdout=open(log, "w"), stderr=subprocess.STDOUT)
            try:
                out = probe.communicate(timeout=30)[0]
                judge(json.loads(out.strip().splitlines()[-1]), expect == fp, log, profile)
            finally:
                cli.kill()
                cli.wait()
                probe.kill()
                probe.wait()

    return summary()


if __name__ == "__main__":
    sys.exit(main())
