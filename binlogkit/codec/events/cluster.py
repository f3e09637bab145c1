"""Group replication and XA events: TRANSACTION_CONTEXT, VIEW_CHANGE,
XA_PREPARE."""

from __future__ import annotations

from typing import Any

import construct as c
from construct import this

from binlogkit.codec.primitives import BoundedBytes, FixedText, Int8, Int16, Int32, Int64


def _count(field: str, item_min: int) -> Any:
    def count(ctx: Any) -> int:
        n = ctx[field]
        if n * item_min > c.stream_size(ctx._io):
            raise c.ConstructError(f"{field}={n} cannot fit in the event")
        return int(n)

    return count


_Item16 = c.Prefixed(Int16, c.GreedyBytes)

# TRANSACTION_CONTEXT (36, group replication)
#
# | size | field                                      |
# | ---- | ------------------------------------------ |
# | 1    | server_uuid_len                            |
# | 4    | thread_id                                  |
# | 1    | gtid_specified                             |
# | 4    | snapshot_version_len                       |
# | 4    | write_set_len (items)                      |
# | 4    | read_set_len (items)                       |
# | *    | server_uuid, snapshot_version (encoded     |
# |      | GTID set), write set and read set items,   |
# |      | each u16 length + bytes                    |
TransactionContext = c.Struct(
    "server_uuid_len" / c.Rebuild(Int8, c.len_(this.server_uuid)),
    "thread_id" / Int32,
    "gtid_specified" / Int8,
    "snapshot_version_len" / c.Rebuild(Int32, c.len_(this.snapshot_version)),
    "write_set_len" / c.Rebuild(Int32, c.len_(this.write_set)),
    "read_set_len" / c.Rebuild(Int32, c.len_(this.read_set)),
    "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 18, 0)),
    "server_uuid" / BoundedBytes(this.server_uuid_len),
    "snapshot_version" / BoundedBytes(this.snapshot_version_len),
    "write_set" / c.Array(_count("write_set_len", 2), _Item16),
    "read_set" / c.Array(_count("read_set_len", 2), _Item16),
    "rest" / c.GreedyBytes,
)

# VIEW_CHANGE (37, group replication)
#
# | size | field                                                   |
# | ---- | ------------------------------------------------------- |
# | 40   | view_id, NUL-padded                                     |
# | 8    | seq_number                                              |
# | 4    | cert_info_size (entries)                                |
# | *    | entries: u16 key len, key, u32 value len, value         |
ViewChange = c.Struct(
    "view_id" / FixedText(40),
    "seq_number" / Int64,
    "cert_info_size" / c.Rebuild(Int32, c.len_(this.cert_info)),
    "post_extra" / BoundedBytes(lambda ctx: max(ctx._params.ph - 52, 0)),
    "cert_info" / c.Array(
        _count("cert_info_size", 6),
        c.Struct("key" / _Item16, "value" / c.Prefixed(Int32, c.GreedyBytes)),
    ),
    "rest" / c.GreedyBytes,
)

# XA_PREPARE (38)
#
# | size | field                        |
# | ---- | ---------------------------- |
# | 1    | one_phase                    |
# | 4    | format_id                    |
# | 4    | gtrid_length                 |
# | 4    | bqual_length                 |
# | n    | gtrid then bqual             |
XaPrepare = c.Struct(
    "one_phase" / Int8,
    "format_id" / Int32,
    "gtrid_length" / c.Rebuild(Int32, c.len_(this.gtrid)),
    "bqual_length" / c.Rebuild(Int32, c.len_(this.bqual)),
    "gtrid" / BoundedBytes(this.gtrid_length),
    "bqual" / BoundedBytes(this.bqual_length),
    "rest" / c.GreedyBytes,
)
