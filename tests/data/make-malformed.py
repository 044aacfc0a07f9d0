#!/usr/bin/env python3
"""Writes the malformed-RADIUS corpus in malformed/: each file one datagram that a server must
drop without answering (and without crashing). Sent from a known NAS (127.0.0.1, secret
testing123) so that only the damage decides. Re-run to regenerate; the files are committed."""
import hashlib, hmac, os, random, struct

random.seed(2865)
SECRET = b"testing123"
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "malformed")
os.makedirs(out, exist_ok=True)
for f in os.listdir(out):
    os.remove(os.path.join(out, f))

def attr(t, v):
    return bytes([t, len(v) + 2]) + v

def packet(code=1, ident=7, auth=b"\x11" * 16, attrs=b"", length=None):
    body = attrs
    n = 20 + len(body) if length is None else length
    return struct.pack("!BBH", code, ident, n) + auth + body

def signed(attrs_before_ma=b"", attrs_after=b""):
    attrs = attrs_before_ma + attr(80, b"\0" * 16) + attrs_after
    p = bytearray(packet(attrs=attrs))
    off = 20 + len(attrs_before_ma) + 2
    p[off:off + 16] = hmac.new(SECRET, bytes(p), hashlib.md5).digest()
    return bytes(p)

valid = signed(attr(1, b"ada@example.com"), attr(2, b"\x00" * 16))
n = 0
def write(name, data):
    global n
    n += 1
    with open(os.path.join(out, f"{n:03d}-{name}.bin"), "wb") as f:
        f.write(data)

for cut in range(0, 20):
    write(f"header-truncated-{cut}", valid[:cut])
for cut in (21, 25, 30, 40, len(valid) - 1):
    write(f"body-truncated-{cut}", valid[:cut])
for bad in (0, 1, 19, 4097, 65535):
    write(f"length-field-{bad}", struct.pack("!BBH", 1, 7, bad) + valid[4:])
write("length-beyond-datagram", struct.pack("!BBH", 1, 7, len(valid) + 10) + valid[4:])
for pos in range(3):
    for l in (0, 1):
        a = attr(1, b"x") * pos + bytes([1, l]) + b"zz"
        write(f"attr-len-{l}-at-{pos}", packet(attrs=a))
for extra in (1, 5, 50, 200):
    a = attr(1, b"ada") + bytes([31, 2 + extra]) + b"aa"
    write(f"attr-overrun-{extra}", packet(attrs=a))
write("lone-attr-type", packet(attrs=b"\x01"))
write("oversized-4097", packet(attrs=attr(26, b"\0" * 250) * 17)[:4097])
wrong = bytearray(valid)
wrong[-20] ^= 0xFF
write("message-authenticator-wrong", bytes(wrong))
write("message-authenticator-short", packet(attrs=attr(80, b"\0" * 8) + attr(1, b"ada")))
write("eap-without-message-authenticator", packet(attrs=attr(1, b"ada") + attr(79, b"\x02\x01\x00\x05\x01")))
write("proxy-state-without-message-authenticator", packet(attrs=attr(1, b"ada") + attr(33, b"ps")))
for code in (0, 2, 3, 5, 11, 13, 40, 43, 255):
    write(f"unexpected-code-{code}", bytes([code]) + valid[1:])
for i in range(10):
    size = random.randint(20, 300)
    body = bytes(random.getrandbits(8) for _ in range(size - 4))
    write(f"garbage-{i}", bytes([1, i]) + struct.pack("!H", size) + body)
print(f"{n} files in {out}")
