#!/usr/bin/env python3
"""Writes the seed corpus of dependency_descriptor_fuzz (run once; the output is committed).
Each seed is a run of AV1 Dependency Descriptors (AV1 RTP payload format, Appendix A), each a
length byte then the descriptor: the L1T3 and L3T3 structures libwebrtc sends on a keyframe, the
plain 3-byte descriptors of the frames after it, custom fields, and truncated ones."""
import os

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "dependency_descriptor_corpus")


class Bits:
    def __init__(self):
        self.bits = []

    def put(self, v, n):
        for i in range(n - 1, -1, -1):
            self.bits.append((v >> i) & 1)

    def ns(self, n, v):  # ns(n)
        w = n.bit_length()
        m = (1 << w) - n
        if v < m:
            self.put(v, w - 1)
        else:
            x = v + m
            self.put(x >> 1, w - 1)
            self.put(x & 1, 1)

    def bytes(self):
        out = bytearray((len(self.bits) + 7) // 8)
        for i, b in enumerate(self.bits):
            if b:
                out[i // 8] |= 0x80 >> (i % 8)
        return bytes(out)


DTI = {"-": 0, "D": 1, "S": 2, "R": 3}


def structure(b, s):
    b.put(s["offset"], 6)
    b.put(s["dts"] - 1, 5)
    t = s["templates"]
    for i in range(len(t)):
        if i + 1 == len(t):
            b.put(3, 2)
        else:
            b.put(2 if t[i + 1][0] != t[i][0] else 1 if t[i + 1][1] != t[i][1] else 0, 2)
    for _, _, dtis, _, _ in t:
        for c in dtis:
            b.put(DTI[c], 2)
    for _, _, _, fdiffs, _ in t:
        for f in fdiffs:
            b.put(1, 1)
            b.put(f - 1, 4)
        b.put(0, 1)
    b.ns(s["dts"] + 1, s["chains"])
    if s["chains"]:
        for p in s["protected"]:
            b.ns(s["chains"], p)
        for _, _, _, _, chains in t:
            for c in chains:
                b.put(c, 4)
    b.put(1 if s["resolutions"] else 0, 1)
    for w, h in s["resolutions"]:
        b.put(w - 1, 16)
        b.put(h - 1, 16)


def descriptor(start, end, tid, number, s=None, active=None, dts=0, dtis=None, fdiffs=None,
               chains=None):
    b = Bits()
    b.put(start, 1)
    b.put(end, 1)
    b.put(tid, 6)
    b.put(number & 0xFFFF, 16)
    if s is None and active is None and dtis is None and fdiffs is None and chains is None:
        return b.bytes()
    for flag in (s is not None, active is not None, dtis is not None, fdiffs is not None,
                 chains is not None):
        b.put(1 if flag else 0, 1)
    if s is not None:
        structure(b, s)
        dts = s["dts"]
    if active is not None:
        b.put(active, dts)
    for c in dtis or "":
        b.put(DTI[c], 2)
    if fdiffs is not None:
        for d in fdiffs:
            v = d - 1
            size = 1 if v < 16 else 2 if v < 256 else 3
            b.put(size, 2)
            b.put(v, 4 * size)
        b.put(0, 2)
    for c in chains or []:
        b.put(c, 8)
    out = b.bytes()
    return out if len(out) > 3 else out + b"\0" * (4 - len(out))


L1T3 = {
    "offset": 0, "dts": 3, "chains": 1, "protected": [0, 0, 0], "resolutions": [(640, 360)],
    "templates": [(0, 0, "SSS", [], [0]), (0, 0, "SSS", [4], [4]), (0, 1, "-DS", [2], [2]),
                  (0, 2, "--D", [1], [1]), (0, 2, "--D", [1], [3])],
}
L3T3 = {
    "offset": 60, "dts": 9, "chains": 3, "protected": [0, 0, 0, 1, 1, 1, 2, 2, 2],
    "resolutions": [(320, 180), (640, 360), (1280, 720)],
    "templates": [
        (0, 0, "SSSSSSSSS", [], [0, 0, 0]), (0, 0, "SSSRRRRRR", [12], [12, 11, 10]),
        (0, 1, "-DS-RR-RR", [6], [6, 5, 4]), (0, 2, "--D--R--R", [3], [3, 2, 1]),
        (1, 0, "---SSSSSS", [1], [1, 1, 0]), (1, 0, "---SSSRRR", [12, 1], [1, 12, 11]),
        (1, 1, "----DS-RR", [6, 1], [1, 6, 5]), (1, 2, "-----D--R", [3, 1], [1, 3, 2]),
        (2, 0, "------SSS", [1], [2, 1, 1]), (2, 0, "------SSS", [12, 1], [2, 1, 12]),
        (2, 1, "-------DS", [6, 1], [2, 1, 6]), (2, 2, "--------D", [3, 1], [2, 1, 3]),
    ],
}


def run(*descriptors):
    out = b""
    for d in descriptors:
        out += bytes([len(d)]) + d
    return out


def write(name, data):
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(data)


l1_key = descriptor(1, 0, 0, 100, L1T3)
l1 = [l1_key, descriptor(0, 1, 0, 100)]
for i, tmpl in enumerate([3, 2, 4, 1, 3, 2, 4]):
    l1 += [descriptor(1, 0, tmpl, 101 + i), descriptor(0, 1, tmpl, 101 + i)]
write("l1t3_keyframe_and_pattern", run(*l1))
write("l1t3_structure_alone", l1_key)

l3_key = descriptor(1, 0, 60, 65534, L3T3)
l3 = [l3_key, descriptor(0, 1, 60, 65534)]
number = 65535
for unit, t in enumerate([0, 2, 0, 2, 1, 2, 0, 2]):
    key = unit == 0
    for s in range(3):
        index = [0, 4, 8][s] + (0 if key else 1 + t)
        if unit == 0 and s == 0:
            continue
        tid = (60 + index) % 64
        l3 += [descriptor(1, 0, tid, number), descriptor(0, 1, tid, number)]
        number += 1
write("l3t3_keyframe_and_units", run(*l3))
write("l3t3_structure_alone", l3_key)

write("custom_fields", run(l1_key, descriptor(1, 1, 2, 7, active=0b011, dts=3, dtis="-SS",
                                              fdiffs=[2, 100, 4000], chains=[200])))
write("active_decode_targets", run(l3_key, descriptor(1, 1, 61, 9, active=0b000000111, dts=9)))
write("plain_without_structure", run(descriptor(1, 1, 1, 5), descriptor(0, 1, 3, 6)))
write("truncated_structures", run(l1_key[:9], l3_key[:len(l3_key) // 2], l3_key[:-1],
                                  descriptor(1, 1, 0, 1)[:2]))
write("unknown_template", run(l1_key, descriptor(1, 1, 40, 3)))
