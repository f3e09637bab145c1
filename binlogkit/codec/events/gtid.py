"""GTID events: MySQL GTID / ANONYMOUS_GTID / GTID_TAGGED / PREVIOUS_GTIDS and
MariaDB GTID / GTID_LIST / BINLOG_CHECKPOINT."""

from __future__ import annotations

from typing import Any

import construct as c
from construct import this

from binlogkit.codec.primitives import (
    BoundedBytes,
    Int8,
    Int32,
    Int64,
    Maybe,
    Packed,
    SInt64,
)
from binlogkit.codec.serialization import (
    VarLenBytes,
    decode_varlen,
    encode_varlen,
    unzigzag,
    zigzag,
)

ph = this._params.ph

_TS_FLAG = 1 << 55
_SV_FLAG = 1 << 31


class _Flagged(c.Construct):  # type: ignore[misc]
    """An immediate value whose top bit says an "original" value follows.

    Parses to Container(immediate, original); ``original`` is None when the
    flag is clear. Used for GTID commit timestamps (7 bytes) and server
    versions (4 bytes).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.flag = 1 << (8 * width - 1)

    def _parse(self, stream: Any, context: Any, path: str) -> c.Container:
        raw = int.from_bytes(c.stream_read(stream, self.width, path), "little")
        original = None
        if raw & self.flag:
            original = int.from_bytes(c.stream_read(stream, self.width, path), "little")
        return c.Container(immediate=raw & ~self.flag, original=original)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        raw = obj["immediate"] | (self.flag if obj["original"] is not None else 0)
        data = raw.to_bytes(self.width, "little")
        if obj["original"] is not None:
            data += obj["original"].to_bytes(self.width, "little")
        c.stream_write(stream, _b := data, len(_b), path)
        return obj


# GTID (33) and ANONYMOUS_GTID (34)
#
# | size | field                                                          |
# | ---- | -------------------------------------------------------------- |
# | 1    | flags (bit 0: may have statement-based changes)                |
# | 16   | uuid (source id)                                               |
# | 8    | gno                                                            |
# | 1    | lt_type (2 = logical clock; 5.7.6+, post-header 42)            |
# | 8    | last_committed                                                 |
# | 8    | sequence_number                                                |
# | 7(+7)| immediate commit ts (us); top bit set: original ts follows (8.0.1+) |
# | pk   | transaction_length, packed integer (8.0.2+)                    |
# | 4(+4)| immediate server version; top bit: original follows (8.0.14+) |
# | 8    | commit_group_ticket (8.0.33+, only when set)                   |
Gtid = c.Struct(
    "flags" / Int8,
    "uuid" / c.Bytes(16),
    "gno" / SInt64,
    "lt_type" / c.If(ph >= 42, Int8),
    "last_committed" / c.If(ph >= 42, SInt64),
    "sequence_number" / c.If(ph >= 42, SInt64),
    "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 42, 0)),
    "commit_timestamp" / Maybe(_Flagged(7)),
    "transaction_length" / Maybe(Packed),
    "server_version" / Maybe(_Flagged(4)),
    "commit_group_ticket" / Maybe(Int64),
    "rest" / c.GreedyBytes,
)

# GTID_TAGGED (42): one mysql::serialization message.
#
# | varlen | format version (1)                                           |
# | varlen | message size in bytes, from the version byte on             |
# | varlen | last non-ignorable field id (0)                              |
# | (varlen id, value)* in id order; absent optional fields are skipped |
#
# | id | field                      | encoding                         |
# | -- | -------------------------- | -------------------------------- |
# | 0  | flags                      | varlen                           |
# | 1  | uuid                       | 16 x varlen (one per byte)       |
# | 2  | gno                        | signed varlen                    |
# | 3  | tag                        | varlen length + bytes            |
# | 4  | last_committed             | signed varlen                    |
# | 5  | sequence_number            | signed varlen                    |
# | 6  | immediate_commit_timestamp | varlen                           |
# | 7  | original_commit_timestamp  | varlen, only when != immediate   |
# | 8  | transaction_length         | varlen                           |
# | 9  | immediate_server_version   | varlen                           |
# | 10 | original_server_version    | varlen, only when != immediate   |
# | 11 | commit_group_ticket        | varlen, only when != 0           |
TAGGED_FIELDS = (
    "flags", "uuid", "gno", "tag", "last_committed", "sequence_number",
    "immediate_commit_timestamp", "original_commit_timestamp", "transaction_length",
    "immediate_server_version", "original_server_version", "commit_group_ticket",
)
_SIGNED = {2, 4, 5}


class _TaggedGtidMessage(c.Construct):  # type: ignore[misc]
    def _parse(self, stream: Any, context: Any, path: str) -> c.Container:
        data = c.stream_read_entire(stream, path)
        try:
            return _decode_tagged(data)
        except (ValueError, IndexError) as exc:
            raise c.ConstructError(f"{path}: GTID_TAGGED message: {exc}") from exc

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        c.stream_write(stream, _b := _encode_tagged(obj), len(_b), path)
        return obj


def _decode_tagged(data: bytes) -> c.Container:
    out = c.Container(version=0, size=0, last_non_ignorable_field=0)
    out.version, pos = decode_varlen(data, 0)
    out.size, pos = decode_varlen(data, pos)
    out.last_non_ignorable_field, pos = decode_varlen(data, pos)
    if out.size > len(data) + 1 or out.size < pos:
        raise ValueError(f"message size {out.size} does not fit in {len(data)} bytes")
    end = len(data)  # the body is one message; its size field may be one short
    for name in TAGGED_FIELDS:
        out[name] = None
    while pos < end:
        fid, after = decode_varlen(data, pos)
        if fid >= len(TAGGED_FIELDS) or out[TAGGED_FIELDS[fid]] is not None:
            break
        pos = after
        if fid == 1:
            uuid = bytearray()
            for _ in range(16):
                byte, pos = decode_varlen(data, pos)
                if byte > 255:
                    raise ValueError("uuid byte out of range")
                uuid.append(byte)
            out.uuid = bytes(uuid)
        elif fid == 3:
            n, pos = decode_varlen(data, pos)
            if pos + n > end:
                raise ValueError("tag runs past the message")
            out.tag = data[pos : pos + n]
            pos += n
        else:
            value, pos = decode_varlen(data, pos)
            out[TAGGED_FIELDS[fid]] = unzigzag(value) if fid in _SIGNED else value
    if pos > end:
        raise ValueError("field runs past the message")
    out.unknown_fields = data[pos:end]
    out.rest = data[end:]
    return out


def _encode_fields(obj: Any) -> bytes:
    parts = []
    for fid, name in enumerate(TAGGED_FIELDS):
        value = obj.get(name)
        if value is None:
            continue
        parts.append(encode_varlen(fid))
        if fid == 1:
            parts.extend(encode_varlen(b) for b in value)
        elif fid == 3:
            parts.append(encode_varlen(len(value)) + bytes(value))
        else:
            parts.append(encode_varlen(zigzag(value) if fid in _SIGNED else value))
    parts.append(obj.get("unknown_fields") or b"")
    return b"".join(parts)


def _encode_tagged(obj: Any) -> bytes:
    """Encode as the server does: the size field's width is taken from the
    size of the fields alone, so near a width boundary the stored size can be
    one less than the message (MySQL's encode_serializable_metadata)."""
    version = encode_varlen(obj["version"])
    lnif = encode_varlen(obj["last_non_ignorable_field"])
    fields = _encode_fields(obj)
    size = len(version) + len(encode_varlen(len(fields))) + len(lnif) + len(fields)
    return version + encode_varlen(size) + lnif + fields + (obj.get("rest") or b"")


GtidTagged = _TaggedGtidMessage()

# PREVIOUS_GTIDS (35): an encoded GTID set.
#
# | size | field                                                         |
# | ---- | ------------------------------------------------------------- |
# | 8    | untagged: n_sids; tagged (8.3+): 0x01, n_sids (6 bytes), 0x01 |
# | per sid:                                                              |
# | 16   | uuid                                                          |
# | *    | tag (tagged form only): varlen length + bytes                 |
# | 8    | n_intervals, then n x (u64 start, u64 end exclusive)         |
_TAGGED_FORMAT = 1


def _n_sids(ctx: Any) -> int:
    header = ctx.header
    return (header >> 8) & 0xFFFFFFFFFFFF if header >> 56 == _TAGGED_FORMAT else header


def _sid_count_fits(ctx: Any) -> int:
    n = _n_sids(ctx)
    if n * 24 > c.stream_size(ctx._io):
        raise c.ConstructError(f"{n} sids cannot fit in {c.stream_size(ctx._io)} bytes")
    return n


def _interval_count(ctx: Any) -> int:
    n = ctx.n_intervals
    if n * 16 > c.stream_size(ctx._io):
        raise c.ConstructError(f"{n} intervals cannot fit in the event")
    return n


GtidSetEncoding = c.Struct(
    "header" / Int64,
    "sids" / c.Array(
        _sid_count_fits,
        c.Struct(
            "uuid" / c.Bytes(16),
            "tag" / c.If(this._.header >> 56 == _TAGGED_FORMAT, VarLenBytes),
            "n_intervals" / c.Rebuild(Int64, c.len_(this.intervals)),
            "intervals" / c.Array(_interval_count, c.Struct("start" / Int64, "end" / Int64)),
        ),
    ),
    "rest" / c.GreedyBytes,
)
PreviousGtids = GtidSetEncoding

# MARIADB_GTID (162)
#
# | size | field                                                          |
# | ---- | -------------------------------------------------------------- |
# | 8    | seq_no                                                         |
# | 4    | domain_id                                                      |
# | 1    | flags2 (1 STANDALONE, 2 GROUP_COMMIT_ID, 4 TRANSACTIONAL,      |
# |      | 8 ALLOW_PARALLEL, 16 WAITED, 32 DDL, 64 PREPARED_XA,           |
# |      | 128 COMPLETED_XA)                                              |
# | 8    | commit_id (flags2 & GROUP_COMMIT_ID)                           |
# | 6+n  | XA: u32 format_id, u8 gtrid_len, u8 bqual_len, data            |
# |      | (flags2 & (PREPARED_XA | COMPLETED_XA))                        |
# | 1    | flags_extra (10.8+, when bytes remain): 1 MULTI_ENGINE,        |
# |      | 2 START_ALTER, 4 COMMIT_ALTER, 8 ROLLBACK_ALTER, 16 THREAD_ID  |
# | 1    | extra_engines (flags_extra & MULTI_ENGINE)                     |
# | 8    | sa_seq_no (flags_extra & (COMMIT_ALTER | ROLLBACK_ALTER))      |
# | 4    | thread_id (flags_extra & THREAD_ID)                            |
# | rest | zero padding up to 19 bytes                                    |
def _xid_part(sub: c.Construct) -> c.Construct:
    return c.ExprValidator(sub, lambda obj, ctx: obj <= 64)


FL_GROUP_COMMIT_ID = 2
FL_PREPARED_XA = 64
FL_COMPLETED_XA = 128
FL_EXTRA_MULTI_ENGINE = 1
FL_COMMIT_ALTER = 4
FL_ROLLBACK_ALTER = 8
FL_EXTRA_THREAD_ID = 16

MariadbGtid = c.Struct(
    "seq_no" / Int64,
    "domain_id" / Int32,
    "flags2" / Int8,
    "commit_id" / c.If(this.flags2 & FL_GROUP_COMMIT_ID, Int64),
    "xid" / c.If(
        this.flags2 & (FL_PREPARED_XA | FL_COMPLETED_XA),
        c.Struct(
            "format_id" / Int32,
            # the server's XID holds at most 64 + 64 bytes (MAXGTRIDSIZE, MAXBQUALSIZE)
            "gtrid_len" / _xid_part(c.Rebuild(Int8, c.len_(this.gtrid))),
            "bqual_len" / _xid_part(c.Rebuild(Int8, c.len_(this.bqual))),
            "gtrid" / BoundedBytes(this.gtrid_len),
            "bqual" / BoundedBytes(this.bqual_len),
        ),
    ),
    "flags_extra" / Maybe(Int8),
    "extra_engines" / c.If(lambda ctx: (ctx.flags_extra or 0) & FL_EXTRA_MULTI_ENGINE, Int8),
    "sa_seq_no" / c.If(
        lambda ctx: (ctx.flags_extra or 0) & (FL_COMMIT_ALTER | FL_ROLLBACK_ALTER), Int64
    ),
    "thread_id" / c.If(lambda ctx: (ctx.flags_extra or 0) & FL_EXTRA_THREAD_ID, Int32),
    "padding" / c.GreedyBytes,
)

# GTID_LIST (163): u32 count (low 28 bits) | flags << 28, then count x
# (u32 domain_id, u32 server_id, u64 seq_no).
GtidList = c.Struct(
    "count_flags" / c.Rebuild(Int32, lambda ctx: len(ctx.gtids) | (ctx.flags << 28)),
    "flags" / c.Computed(this.count_flags >> 28),
    "gtids" / c.Array(
        lambda ctx: _bounded(ctx, ctx.count_flags & 0x0FFFFFFF, 16),
        c.Struct("domain_id" / Int32, "server_id" / Int32, "seq_no" / Int64),
    ),
    "rest" / c.GreedyBytes,
)


def _bounded(ctx: Any, n: int, item: int) -> int:
    if n * item > c.stream_size(ctx._io):
        raise c.ConstructError(f"{n} items of {item} bytes cannot fit in the event")
    return n


# BINLOG_CHECKPOINT (161): u32 name length, binlog file name.
BinlogCheckpoint = c.Struct(
    "name_len" / c.Rebuild(Int32, c.len_(this.binlog_file)),
    "binlog_file" / BoundedBytes(this.name_len),
    "rest" / c.GreedyBytes,
)

# HEARTBEAT_V2 (41): TLVs of packed integers: type, length, value.
# 1 log file name (bytes), 2 log position (packed integer), 0 end mark.
HeartbeatV2 = c.Struct(
    "fields" / c.RepeatUntil(
        lambda item, lst, ctx: item.type == 0,
        c.Struct(
            "type" / Packed,
            "value" / c.If(this.type != 0, c.Prefixed(Packed, c.GreedyBytes)),
        ),
    ),
    "rest" / c.GreedyBytes,
)
