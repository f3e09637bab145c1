"""MySQL client/server packet framing, both directions.

| bytes | field                                     |
| ----- | ----------------------------------------- |
| 3     | payload length (little-endian, < 2^24)    |
| 1     | sequence id                               |
| n     | payload                                   |

A payload of 2^24-1 bytes or more goes out as several packets of exactly
2^24-1 bytes, then one shorter (possibly empty) packet; the receiver joins
them. Sans-I/O: bytes in, payloads out.
"""

from __future__ import annotations

MAX_PAYLOAD = 0xFFFFFF


class ProtocolError(Exception):
    """The bytes are not what the protocol allows here."""


class ConnectionClosed(ProtocolError):
    """The server closed the connection (possibly inside a packet): unlike
    other protocol errors, worth a reconnect."""


def frame(payload: bytes, seq: int = 0) -> bytes:
    """The packet(s) carrying ``payload``, the first with sequence id ``seq``."""
    out = bytearray()
    view = memoryview(payload)
    while True:
        chunk = view[:MAX_PAYLOAD]
        view = view[MAX_PAYLOAD:]
        out += len(chunk).to_bytes(3, "little") + bytes([seq & 0xFF]) + chunk
        seq += 1
        if len(chunk) < MAX_PAYLOAD:
            return bytes(out)


class PacketReader:
    """Joins received bytes into whole payloads (split packets reassembled).

    ``feed(data)`` then ``next_payload()`` until it returns None. Sequence ids
    must follow one another; a gap is a :class:`ProtocolError`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._seq: int | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data

    def reset_sequence(self) -> None:
        """A new command was sent: the next packet may start at any id."""
        self._seq = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_event_bytes(self) -> bytes | None:
        """The common case of a binlog dump, in one copy: the next packet is
        whole, not split, and starts with the OK byte; returns what follows
        it. None when that is not so (use :meth:`next_payload`)."""
        buf = self._buf
        if len(buf) < 5 or self._parts:
            return None
        n = buf[0] | buf[1] << 8 | buf[2] << 16
        if n >= MAX_PAYLOAD or len(buf) < 4 + n or buf[4] != 0:
            return None
        seq = buf[3]
        if self._seq is not None and seq != (self._seq + 1) & 0xFF:
            return None  # next_payload raises
        self._seq = seq
        data = bytes(buf[5:4 + n])
        del buf[:4 + n]
        return data

    def next_payload(self) -> bytes | None:
        while True:
            if len(self._buf) < 4:
                return None
            n = int.from_bytes(self._buf[:3], "little")
            if len(self._buf) < 4 + n:
                return None
            seq = self._buf[3]
            if self._seq is not None and seq != (self._seq + 1) & 0xFF:
                raise ProtocolError(f"packet sequence id {(self._seq + 1) & 0xFF} expected,"
                                    f" found {seq}")
            self._seq = seq
            chunk = bytes(self._buf[4:4 + n])
            del self._buf[:4 + n]
            self._parts.append(chunk)
            if n < MAX_PAYLOAD:
                payload = chunk if len(self._parts) == 1 else b"".join(self._parts)
                self._parts = []
                return payload
