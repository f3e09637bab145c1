"""Small Construct building blocks shared by the event specs.

Every construct here parses and builds symmetrically, so that a spec run
backwards gives back the bytes it parsed. Where the wire allows more than one
encoding of a value (a non-minimal packed integer, bytes after a NUL in a
fixed-width string), the parsed value keeps enough to rebuild the original.
"""

from __future__ import annotations

import io
from typing import Any

import construct as c

Int8 = c.Int8ul
Int16 = c.Int16ul
Int24 = c.Int24ul
Int32 = c.Int32ul
Int48 = c.BytesInteger(6, swapped=True)
Int56 = c.BytesInteger(7, swapped=True)
Int64 = c.Int64ul
SInt64 = c.Int64sl


def _remaining(stream: io.BufferedIOBase) -> int:
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end - here


class PackedInt(c.Construct):  # type: ignore[misc]
    """MySQL length-encoded integer (``net_field_length``).

    | first byte | value                       |
    | ---------- | --------------------------- |
    | 0..250     | the byte itself             |
    | 251        | NULL (parsed as ``None``)   |
    | 252        | next 2 bytes, little-endian |
    | 253        | next 3 bytes                |
    | 254        | next 8 bytes                |

    A non-minimal encoding parses to a ``WideInt`` that remembers its width.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> int | None:
        first = c.stream_read(stream, 1, path)[0]
        if first < 251:
            return first
        if first == 251:
            return None
        if first == 255:
            raise c.ConstructError(f"packed integer prefix 0xff at {path}")
        width = {252: 2, 253: 3, 254: 8}[first]
        value = int.from_bytes(c.stream_read(stream, width, path), "little")
        if _packed_width(value) != width:
            return WideInt(value, width)
        return value

    def _build(self, obj: int | None, stream: Any, context: Any, path: str) -> int | None:
        c.stream_write(stream, _b := encode_packed(obj), len(_b), path)
        return obj


class WideInt(int):
    """An int that was written with a wider packed encoding than needed."""

    width: int

    def __new__(cls, value: int, width: int) -> WideInt:
        obj = super().__new__(cls, value)
        obj.width = width
        return obj


def _packed_width(value: int) -> int:
    if value < 251:
        return 0
    if value < 1 << 16:
        return 2
    if value < 1 << 24:
        return 3
    return 8


def encode_packed(value: int | None) -> bytes:
    """Bytes of a length-encoded integer (minimal unless a WideInt)."""
    if value is None:
        return b"\xfb"
    width = value.width if isinstance(value, WideInt) else _packed_width(value)
    if width == 0:
        return bytes((value,))
    prefix = {2: 252, 3: 253, 8: 254}[width]
    return bytes((prefix,)) + value.to_bytes(width, "little")


def decode_packed(data: bytes | memoryview, pos: int) -> tuple[int | None, int]:
    """Read a length-encoded integer at ``pos``; return (value, next position)."""
    first = data[pos]
    if first < 251:
        return first, pos + 1
    if first == 251:
        return None, pos + 1
    width = {252: 2, 253: 3, 254: 8}.get(first)
    if width is None or pos + 1 + width > len(data):
        raise ValueError(f"bad packed integer at {pos}")
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


Packed = PackedInt()


class Maybe(c.Subconstruct):  # type: ignore[misc]
    """An optional trailing field: parsed only when bytes remain in the stream.

    Builds nothing when the value is None. Servers add fields to the end of
    event bodies over versions; presence is told by the event length.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        if _remaining(stream) == 0:
            return None
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if obj is None:
            return None
        return self.subcon._build(obj, stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        raise c.SizeofError(path=path)


class FixedText(c.Adapter):  # type: ignore[misc]
    """A fixed-width, NUL-padded text field (e.g. the 50-byte server version).

    Parses to ``str`` when everything after the first NUL is NUL, else to
    the raw ``bytes`` (kept so the field rebuilds exactly).
    """

    def __init__(self, length: int) -> None:
        super().__init__(c.Bytes(length))
        self.length = length

    def _decode(self, obj: bytes, context: Any, path: str) -> str | bytes:
        text, _, pad = obj.partition(b"\x00")
        if pad.strip(b"\x00"):
            return obj
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            return obj

    def _encode(self, obj: str | bytes, context: Any, path: str) -> bytes:
        raw = obj if isinstance(obj, bytes) else obj.encode("ascii")
        if len(raw) > self.length:
            raise c.ConstructError(f"{path}: {len(raw)} bytes do not fit in {self.length}")
        return raw.ljust(self.length, b"\x00")


class _PackedBytes(c.Construct):  # type: ignore[misc]
    """Bytes preceded by their length as a packed integer."""

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        n = Packed._parse(stream, context, path)
        if n is None:
            raise c.ConstructError(f"NULL length at {path}")
        if n > _remaining(stream):
            raise c.ConstructError(f"length {n} runs past the end at {path}")
        return c.stream_read(stream, n, path)

    def _build(self, obj: bytes, stream: Any, context: Any, path: str) -> bytes:
        c.stream_write(stream, _b := encode_packed(len(obj)) + obj, len(_b), path)
        return obj


PackedBytes = _PackedBytes()


class BoundedBytes(c.Construct):  # type: ignore[misc]
    """``Bytes(n)`` that checks ``n`` against what is left before reading."""

    def __init__(self, length: Any) -> None:
        super().__init__()
        self.length = length

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        n = c.evaluate(self.length, context)
        if n < 0 or n > _remaining(stream):
            raise c.ConstructError(f"length {n} runs past the end of the event at {path}")
        return c.stream_read(stream, n, path)

    def _build(self, obj: bytes, stream: Any, context: Any, path: str) -> bytes:
        c.stream_write(stream, _b := obj, len(_b), path)
        return obj


def parse_error(exc: Exception) -> str:
    """A one-line description of a Construct failure."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


__all__ = [
    "BoundedBytes",
    "FixedText",
    "Int8",
    "Int16",
    "Int24",
    "Int32",
    "Int48",
    "Int56",
    "Int64",
    "Maybe",
    "Packed",
    "PackedBytes",
    "SInt64",
    "WideInt",
    "decode_packed",
    "encode_packed",
    "parse_error",
]


class Whole(c.Subconstruct):  # type: ignore[misc]
    """Parse the whole (bounded) stream with ``subcon``, else keep it raw.

    When ``subcon`` fails or leaves bytes over, the value is the raw ``bytes``
    and builds back unchanged, so a field the spec cannot explain is never
    lost. Use inside ``Prefixed``/``FixedSized``.
    """

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        data = c.stream_read_entire(stream, path)
        sub = io.BytesIO(data)
        try:
            value = self.subcon._parsereport(sub, context, path)
        except c.ConstructError:
            return data
        if sub.tell() != len(data):
            return data
        return value

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if isinstance(obj, bytes):
            c.stream_write(stream, _b := obj, len(_b), path)
            return obj
        return self.subcon._build(obj, stream, context, path)
