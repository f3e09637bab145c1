"""How a transaction becomes broker messages: the layout both broker sinks
(NATS JetStream, Redis Streams) write and ``binlogkit apply --from`` reads.

A transaction becomes ``n`` messages, numbered ``0..n-1`` (``seq``): one per
row change, in order, or, for a transaction of DDL, one copy of each
statement for every stream (table, or table partition) it names, so a reader
of any one of those streams meets the DDL in its place. Each message goes to
the stream of its table (``route``): ``(schema, table, partition)``, where
``partition`` is ``None`` unless the table is split in N partitions by a
stable hash (``zlib.crc32``) of the primary-key values. DDL that names no
table (CREATE DATABASE, ...) goes to the reserved route ``(schema, None, None)``.

Every message carries these fields (Redis: entry fields; NATS: headers):

==========  ===============================================================
field       value
==========  ===============================================================
``id``      message ID, unique and the same on every redelivery:
            ``<server>:<gtid or file:pos of the transaction>:<seq>``, with
            ``:<stream>`` added for a DDL copy. NATS: ``Nats-Msg-Id``.
``op``      ``c`` ``u`` ``d`` ``r`` (snapshot read) or ``ddl``
``schema``  the database
``table``   the table ("" for DDL naming no table)
``txn``     the transaction id (file:pos of its first event)
``seq``     the message's index in the transaction, ``0..n-1``
``n``       how many messages the transaction has, over all streams
``row``     the change's index among the transaction's changes ("" for DDL)
``gtid``    the transaction's GTID ("" when none)
``file``    binlog file of the event; ``pos`` its offset
``ts_ms``   the transaction's commit time (ms since the epoch)
==========  ===============================================================

The payload is JSON: for a change the record of
:func:`~binlogkit.cdc.formats.change_json` (or the Debezium envelope), for
DDL ``{"op": "ddl", "db": <default database>, "sql": <statement>}``.

A reader applies a transaction once it holds all ``n`` of its messages and
each is at the head of its stream: within every stream that is source commit
order (a DDL's copies are the barrier that orders it with every table it
names).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from binlogkit.cdc.formats import change_json, debezium_envelope, plain_value
from binlogkit.cdc.model import Change, Txn
from binlogkit.cdc.schema_history import tables_named

Format = Literal["jsonl", "debezium"]
Route = tuple[str, str | None, int | None]  # schema, table (None: DDL naming no table), partition


@dataclass(frozen=True)
class Message:
    """One broker message: its stream (``route``), fields and JSON payload."""

    route: Route
    fields: dict[str, str]
    payload: bytes

    @property
    def id(self) -> str:
        return self.fields["id"]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class Layout:
    """Turns transactions into :class:`Message` lists (see the module doc).

    ``server`` names the source in IDs and stream names; ``partitions`` splits
    each table's stream by primary key; ``key_columns`` gives the key of
    tables whose columns are unknown (``{"db.table": ["id"]}``)."""

    def __init__(self, *, server: str = "src", fmt: Format = "jsonl", partitions: int = 1,
                 key_columns: Mapping[str, Sequence[str]] | None = None) -> None:
        if fmt not in ("jsonl", "debezium"):
            raise ValueError(f"format must be 'jsonl' or 'debezium', not {fmt!r}")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.server = server
        self.fmt = fmt
        self.partitions = partitions
        self.key_columns = {k: tuple(v) for k, v in (key_columns or {}).items()}

    def partition(self, change: Change) -> int | None:
        """The partition of ``change`` (None when not partitioned): crc32 of
        its key values in the after image, else the before image."""
        if self.partitions == 1:
            return None
        image = change.after if change.after is not None else change.before
        image = image or {}
        src = change.source
        keys = self.key_columns.get(f"{src.schema}.{src.table}")
        if keys is None and change.columns is not None:
            keys = tuple(c.key for c in change.columns if c.primary_key) or None
        if keys is not None and all(k in image for k in keys):
            values: Any = [plain_value(image[k]) for k in keys]
        else:  # no known key: the whole image
            values = {k: plain_value(v) for k, v in image.items()}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
        return zlib.crc32(text.encode()) % self.partitions

    def _base(self, txn: Txn, n: int) -> dict[str, str]:
        origin = txn.gtid or txn.id
        return {"txn": txn.id, "n": str(n), "gtid": txn.gtid or "", "ts_ms": str(txn.ts_ms),
                "id": f"{self.server}:{origin}"}

    def messages(self, txn: Txn) -> list[Message]:
        """The messages of ``txn``, in order (empty for a transaction with
        neither changes nor DDL)."""
        if txn.changes:
            return self._changes(txn)
        return self._ddl(txn) if txn.ddl else []

    def _changes(self, txn: Txn) -> list[Message]:
        base = self._base(txn, len(txn.changes))
        origin = base.pop("id")
        out = []
        for i, change in enumerate(txn.changes):
            src = change.source
            if self.fmt == "debezium":
                payload = debezium_envelope(change, txn, i, name=self.server)
            else:
                payload = change_json(change)
            fields = {"id": f"{origin}:{i}", "op": change.op, "schema": src.schema,
                      "table": src.table, "seq": str(i), "row": str(i), "file": src.file,
                      "pos": str(src.pos), **base}
            if src.snapshot:  # snapshot rows: one id per read, never a GTID
                fields["id"] = f"{self.server}:snapshot:{txn.id}:{i}"
            out.append(Message((src.schema, src.table, self.partition(change)), fields,
                               _json(payload)))
        return out

    def _ddl(self, txn: Txn) -> list[Message]:
        copies: list[tuple[Route, str, str]] = []
        for db, sql in txn.ddl:
            named = tables_named(db, sql)
            if not named:
                copies.append(((db, None, None), db, sql))
                continue
            parts: Sequence[int | None] = (
                [None] if self.partitions == 1 else range(self.partitions))
            for schema, table in dict.fromkeys(named):
                copies += [((schema, table, p), db, sql) for p in parts]
        base = self._base(txn, len(copies))
        origin = base.pop("id")
        file, _, pos = txn.id.rpartition(":")
        out = []
        for seq, (route, db, sql) in enumerate(copies):
            fields = {"id": f"{origin}:{seq}:{route_name(route)}", "op": "ddl",
                      "schema": route[0], "table": route[1] or "", "seq": str(seq), "row": "",
                      "file": file, "pos": pos, **base}
            out.append(Message(route, fields, _json({"op": "ddl", "db": db, "sql": sql})))
        return out


def route_name(route: Route) -> str:
    """``schema.table[.partition]``, or ``schema`` for the DDL route (display, IDs)."""
    schema, table, part = route
    if table is None:
        return schema
    return f"{schema}.{table}" if part is None else f"{schema}.{table}.{part}"


_NATS_UNSAFE = frozenset(".*>%") | frozenset(chr(c) for c in range(0x21))


def nats_token(name: str) -> str:
    """``name`` as one NATS subject token: ``.``, ``*``, ``>``, ``%``,
    whitespace and control characters percent-encoded (UTF-8)."""
    if name and not any(ch in _NATS_UNSAFE or ch == "\x7f" for ch in name):
        return name
    if not name:
        return "%00"  # a token cannot be empty
    return "".join("".join(f"%{b:02X}" for b in ch.encode()) if ch in _NATS_UNSAFE
                   or ch == "\x7f" else ch for ch in name)


def nats_subject(prefix: str, server: str, route: Route) -> str:
    """``<prefix>.<server>.<schema>.<table>[.<partition>]``; the DDL route
    (no table) is ``<prefix>.<server>.<schema>``. ``prefix`` may hold dots."""
    schema, table, part = route
    out = f"{prefix}.{nats_token(server)}.{nats_token(schema)}"
    if table is not None:
        out += f".{nats_token(table)}"
        if part is not None:
            out += f".{part}"
    return out


def redis_stream(prefix: str, server: str, route: Route) -> str:
    """``<prefix>:<server>:<schema>.<table>[:<partition>]``; the DDL route
    (no table) is ``<prefix>:<server>:<schema>``."""
    schema, table, part = route
    if table is None:
        return f"{prefix}:{server}:{schema}"
    base = f"{prefix}:{server}:{schema}.{table}"
    return base if part is None else f"{base}:{part}"
