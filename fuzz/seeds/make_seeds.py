"""Writes the driver_inbound seed inputs: well-formed client frames the fuzzer mutates from.

    python3 fuzz/seeds/make_seeds.py   # into fuzz/corpus/driver_inbound/
"""

import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent.parent / "corpus" / "driver_inbound"
KEY = bytes([0x12, 0x34, 0x56, 0x78])


def frame(opcode, payload, fin=True, mask=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n <= 0xFFFF:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


SEEDS = {
    "text": frame(0x1, b"hello"),
    "binary": frame(0x2, bytes(range(200))),
    "ping_pong": frame(0x9, b"p") + frame(0xA, b"q"),
    "close_1000": frame(0x8, struct.pack(">H", 1000) + b"bye"),
    "fragmented": frame(0x1, b"hel", fin=False) + frame(0x9, b"") + frame(0x0, b"lo"),
    "long_text": frame(0x1, b"x" * 300),
    "utf8": frame(0x1, "h\u00e9llo \u2603 \U0001F600".encode()),
    "two_messages_then_close": frame(0x1, b"a") + frame(0x2, b"b") + frame(0x8, b"\x03\xe8"),
    "unmasked": frame(0x1, b"hello", mask=False),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, data in SEEDS.items():
    (OUT / f"seed-{name}").write_bytes(data)
print(f"{len(SEEDS)} seeds in {OUT}")
