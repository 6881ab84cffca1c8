#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets (run once; the output is committed).
Seeds are well-formed messages so the fuzzer starts from the protocol's real shapes."""
import os, struct, hmac, hashlib, zlib, sys

here = os.path.dirname(os.path.abspath(__file__))
COOKIE = 0x2112A442

def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad

def xor_addr(t, ip4, port, tid=b"\0" * 12):
    x = bytes(a ^ b for a, b in zip(ip4, struct.pack("!I", COOKIE)))
    return attr(t, struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + x)

def msg(mtype, tid, body, key=None, fp=True):
    out = struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body
    if key is not None:
        hdr = struct.pack("!HHI", mtype, len(body) + 24, COOKIE) + tid
        mac = hmac.new(key, hdr + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
        out = struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body
    if fp:
        hdr = struct.pack("!HHI", mtype, len(body) + 8, COOKIE) + tid
        crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(0x8028, struct.pack("!I", crc))
        out = struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body
    return out

def write(corpus, name, data):
    d = os.path.join(here, corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

tid = bytes(range(1, 13))
rfc5769 = {
 "rfc5769_request": "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf",
 "rfc5769_ipv4_response": "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96",
 "rfc5769_ipv6_response": "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c",
 "rfc5769_long_term": "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666",
}
for name, h in rfc5769.items():
    write("stun_parse_corpus", name, bytes.fromhex(h))
allocate = msg(0x0003, tid, attr(0x0019, b"\x11\0\0\0"))
write("stun_parse_corpus", "allocate", allocate)
write("stun_parse_corpus", "send_indication", msg(0x0016, tid, xor_addr(0x0012, b"\xc6\x33\x64\x07", 9000) + attr(0x0013, b"hello"), fp=False))
write("stun_parse_corpus", "error_401", msg(0x0113, tid, attr(0x0009, b"\0\0\x04\x01Unauthorized") + attr(0x0014, b"ringlane") + attr(0x0015, b"rl1nonce")))

def frame(flags, data):
    return struct.pack("!BH", flags, len(data)) + data
cd = struct.pack("!HH", 0x4000, 5) + b"hello"
write("turn_datagram_corpus", "channel_data", frame(0, cd))
write("turn_datagram_corpus", "peer_then_client", frame(2, b"payload") + frame(0, cd) + frame(3, b""))
write("turn_datagram_corpus", "send_indication", frame(0, msg(0x0016, tid, xor_addr(0x0012, b"\xc6\x33\x64\x07", 9000) + attr(0x0013, b"abc"), fp=False)))
write("turn_datagram_corpus", "binding", frame(0, msg(0x0001, tid, b"")))
write("turn_datagram_corpus", "allocate_unauth", frame(1, allocate))

peer = xor_addr(0x0012, b"\xc6\x33\x64\x07", 9000)
write("turn_request_corpus", "allocate", b"\x00\x00" + attr(0x0019, b"\x11\0\0\0"))
write("turn_request_corpus", "allocate_even_port", b"\x00\x01" + attr(0x0019, b"\x11\0\0\0") + attr(0x0018, b"\x80"))
write("turn_request_corpus", "allocate_v6", b"\x00\x02" + attr(0x0019, b"\x11\0\0\0") + attr(0x0017, b"\x02\0\0\0"))
write("turn_request_corpus", "refresh", b"\x01\x00" + attr(0x000D, struct.pack("!I", 600)))
write("turn_request_corpus", "refresh_zero", b"\x81\x01" + attr(0x000D, b"\0\0\0\0"))
write("turn_request_corpus", "create_permission", b"\x02\x00" + peer + xor_addr(0x0012, b"\x7f\0\0\x01", 1))
write("turn_request_corpus", "channel_bind", b"\x03\x00" + attr(0x000C, b"\x40\x01\0\0") + peer)
write("turn_request_corpus", "binding", b"\x04\x00")

# stream_framer_fuzz: [flags][c1][c2][c3] + a TURN stream (RFC 8656 §12.5): STUN and padded ChannelData.
def sf_attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)
def sf_msg(mtype, tid, body, fp=True):
    if fp:
        hdr = struct.pack("!HHI", mtype, len(body) + 8, COOKIE) + tid
        crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += sf_attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), COOKIE) + tid + body
def sf_cd(ch, data):  # ChannelData padded for a stream
    return struct.pack("!HH", ch, len(data)) + data + b"\0" * ((4 - len(data) % 4) % 4)
def sf_xor_peer(ip4, port):
    x = bytes(a ^ b for a, b in zip(ip4, struct.pack("!I", COOKIE)))
    return sf_attr(0x0012, struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + x)
tid = bytes(range(1, 13))
allocate = sf_msg(0x0003, tid, sf_attr(0x0019, b"\x11\0\0\0"))
binding = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e7400240004"
    "6e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56"
    "781ef2b5b2d3f249c1b571a280280004e57a3bcf")
bind_channel = sf_msg(0x0009, tid, sf_attr(0x000C, b"\x40\x00\0\0") + sf_xor_peer(b"\xc6\x33\x64\x07", 9000))
send = sf_msg(0x0016, tid, sf_xor_peer(b"\xc6\x33\x64\x07", 9000) + sf_attr(0x0013, b"hello"), fp=False)
def seed(name, flags, cuts, stream):
    write("stream_framer_corpus", name, bytes([flags]) + bytes(cuts) + stream)
seed("allocate_whole", 2, [255, 255, 255], allocate)
seed("binding_split", 0, [6, 12, 0], binding)
seed("channel_data_padded", 0, [2, 4, 6],
     allocate + bind_channel + b"".join(sf_cd(0x4000, bytes(range(n))) for n in range(8)) + binding)
seed("one_byte_chunks", 0, [0, 0, 0], allocate + sf_cd(0x4001, b"abcde") + send + sf_cd(0x4FFF, b""))
seed("send_and_channel", 2, [0, 1, 255], send + sf_cd(0x4000, b"x" * 1200) + send)
seed("garbage_http", 0, [15, 15, 15], b"GET / HTTP/1.1\r\nHost: turn.example\r\n\r\n")
seed("tls_client_hello", 0, [4, 100, 100], bytes.fromhex("16030102000100 01fc0303") + bytes(32))
seed("length_never_arrives", 2, [0, 3, 9], struct.pack("!HHI", 0x0003, 0xFFFC, COOKIE) + tid + bytes(200))
seed("over_small_limit", 0x21, [200, 200, 200], allocate + sf_cd(0x4000, bytes(120)))
seed("rtp_after_stun", 0, [30, 30, 30], binding + bytes.fromhex("80e00001000000000000000000"))

# rtp_fuzz: video payloads the SFU reads on simulcast packets (tests/unit/rtp/codec_test.cpp
# has the field layouts), in RTP packets with the RFC 8285 one-byte extensions a simulcast
# publisher sends: mid (1), rid (2), transport-wide sequence number (5).
def rtp_packet(pt, seq, ts, ssrc, payload, marker=False, ext=()):
    block = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in ext)
    block += b"\0" * ((4 - len(block) % 4) % 4)
    head = struct.pack("!BBHII", 0x90 if block else 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    if block:
        head += struct.pack("!HH", 0xBEDE, len(block) // 4)
    return head + block + payload
simulcast_ext = ((1, b"0"), (2, b"f"), (5, b"\x01\x02"))
body = bytes(range(0x30, 0x50))
# VP8 (RFC 7741 §4.2): |X|R|N|S|R|PID| |I|L|T|K| picture id (M: 15 bits), TL0PICIDX, |TID|Y|KEYIDX|;
# §4.3: P = 0 in the first payload octet of a key frame.
write("rtp_corpus", "vp8_key_15bit_pid", rtp_packet(96, 7, 3000, 0x3000, bytes([0x90, 0xE0, 0xFF, 0xFE, 0xFD, 0x20, 0x10, 0x02, 0x00]) + body, ext=simulcast_ext))
write("rtp_corpus", "vp8_delta_every_field", rtp_packet(96, 8, 6000, 0x3000, bytes([0x90, 0xF0, 0x05, 0x12, 0x45, 0x01, 0x02, 0x00]) + body, True, ((1, b"0"), (5, b"\x01\x03"))))
write("rtp_corpus", "vp8_continuation", rtp_packet(96, 9, 6000, 0x3000, bytes([0x81, 0x80, 0x80, 0x01]) + body, True))
write("rtp_corpus", "vp8_no_extension", rtp_packet(96, 10, 9000, 0x1000, bytes([0x10, 0x00, 0x9D, 0x01, 0x2A]) + body))
# VP9 (RFC 9628 §4.2): |I|P|L|F|B|E|V|Z|, picture id, |TID|U|SID|D|, TL0PICIDX (non-flexible).
write("rtp_corpus", "vp9_key_layers", rtp_packet(98, 11, 9000, 0x2000, bytes([0xAC, 0x81, 0x23, 0x00, 0x07]) + body, True))
write("rtp_corpus", "vp9_flexible_sid1", rtp_packet(98, 12, 9000, 0x2000, bytes([0xB8, 0x05, 0x02]) + body))
# H264 (RFC 6184): STAP-A of SPS, PPS and an IDR slice; FU-A starting an IDR; a non-IDR slice.
write("rtp_corpus", "h264_stap_a_sps_pps_idr", rtp_packet(102, 13, 12000, 0x4000, bytes([0x78, 0x00, 0x03, 0x67, 0x42, 0xC0, 0x00, 0x02, 0x68, 0xCE, 0x00, 0x04, 0x65, 0x88, 0x84, 0x00])))
write("rtp_corpus", "h264_fu_a_idr_start", rtp_packet(102, 14, 12000, 0x4000, bytes([0x7C, 0x85, 0x88]) + body))
write("rtp_corpus", "h264_non_idr", rtp_packet(102, 15, 15000, 0x4000, bytes([0x41, 0x9A]) + body, True))
# AV1 aggregation header |Z|Y|W|W|N|-|-|-|: a new coded video sequence; a continued OBU.
write("rtp_corpus", "av1_new_sequence", rtp_packet(45, 16, 18000, 0x5000, bytes([0x18, 0x0A, 0x0B, 0x00]) + body))
write("rtp_corpus", "av1_continuation", rtp_packet(45, 17, 18000, 0x5000, bytes([0xC0]) + body, True))
