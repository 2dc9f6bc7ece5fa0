"""Writes the seed inputs of driver_inbound and codec: well-formed client frames (and
compressed messages) the fuzzer mutates from.

    python3 fuzz/seeds/make_seeds.py   # into fuzz/corpus/driver_inbound/ and fuzz/corpus/codec/
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


def codec_seeds():
    """The codec target's inputs: (mode, chunk, bytes), as `arbitrary` reads them (two bytes,
    then the rest). Mode bit 0: deflate negotiated; bit 1: the bytes are one compressed
    message's payload (bit 2: text)."""
    import zlib

    def deflate(data):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4]

    out = OUT.parent / "codec"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "frames": bytes([1, 3]) + b"".join(SEEDS.values()),
        "compressed-text": bytes([7, 5]) + deflate(b'{"type":"chat","text":"hello"}' * 8),
        "compressed-binary": bytes([3, 1]) + deflate(bytes(range(256)) * 4),
        "bomb": bytes([3, 16]) + deflate(bytes(200_000)),
    }
    # a compressed frame with RSV1 set, as raw frames
    f = bytearray(frame(0x1, deflate(b"hello hello hello hello")))
    f[0] |= 0x40
    seeds["compressed-frame"] = bytes([1, 2]) + bytes(f)
    for name, data in seeds.items():
        (out / f"seed-{name}").write_bytes(data)
    print(f"{len(seeds)} seeds in {out}")


codec_seeds()
