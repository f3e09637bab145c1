"""MySQL's ``mysql::serialization`` encoding (8.3+), used by GTID_TAGGED and
by tags inside encoded GTID sets.

Variable-length unsigned integer (1..9 bytes): the number of trailing one
bits of the first byte, plus one, is the byte count k; for k <= 8 the whole
k-byte little-endian word is ``value << k | (2**(k-1) - 1)``; k = 9 is 0xff
then the value as 8 bytes. Signed values are zig-zag mapped first.
"""

from __future__ import annotations

from typing import Any

import construct as c


def varlen_size(value: int) -> int:
    n = value.bit_length()
    if n == 0:
        return 1
    if n > 63:
        return 9
    return 1 + (n - 1) // 7


def encode_varlen(value: int) -> bytes:
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varlen integer out of range: {value}")
    k = varlen_size(value)
    if k == 9:
        return b"\xff" + value.to_bytes(8, "little")
    return ((value << k) | ((1 << (k - 1)) - 1)).to_bytes(k, "little")


def decode_varlen(data: bytes, pos: int) -> tuple[int, int]:
    """Return (value, next position); raises ValueError past the end."""
    if pos >= len(data):
        raise ValueError("varlen integer runs past the end")
    first = data[pos]
    k = 1
    while k < 9 and first & (1 << (k - 1)):
        k += 1
    if pos + k > len(data):
        raise ValueError("varlen integer runs past the end")
    if k == 9:
        return int.from_bytes(data[pos + 1 : pos + 9], "little"), pos + 9
    word = int.from_bytes(data[pos : pos + k], "little")
    return word >> k, pos + k


def zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-(value + 1)) << 1) | 1


def unzigzag(value: int) -> int:
    return ~(value >> 1) if value & 1 else value >> 1


class VarLen(c.Construct):  # type: ignore[misc]
    """An unsigned serialization varlen integer."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        first = c.stream_read(stream, 1, path)
        k = 1
        while k < 9 and first[0] & (1 << (k - 1)):
            k += 1
        data = first + (c.stream_read(stream, k - 1, path) if k > 1 else b"")
        return decode_varlen(data, 0)[0]

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        c.stream_write(stream, _b := encode_varlen(obj), len(_b), path)
        return obj


VarLenInt = VarLen()
# A string: varlen length, bytes.
VarLenBytes = c.Prefixed(VarLenInt, c.GreedyBytes)
