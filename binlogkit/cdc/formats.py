"""Change records as JSON-able dictionaries.

- :func:`change_json`: the default JSON Lines record,
  ``{"op", "before", "after", "source"}``, between :func:`begin_marker` and
  :func:`commit_marker` lines (``{"type": "begin" | "commit", "id", "gtid",
  "events", ...}``, after Debezium's transaction metadata).
- :func:`debezium_envelope`: the value of a Debezium MySQL connector change
  event (``before``, ``after``, ``source``, ``op``, ``ts_ms``,
  ``transaction``), with :func:`debezium_begin` / :func:`debezium_end` for
  its transaction metadata records.

Column values follow docs/json.md (the ``dump --format jsonl`` contract,
:func:`binlogkit.codec.describe.json_value`): DECIMAL as a string, FLOAT as
the shortest decimal of its float32, temporal types as the server's text,
binary strings base64, JSON documents as JSON, VECTOR as a list. A
partial-JSON column whose document is unknown (PARTIAL_UPDATE_ROWS) is left
out of ``after`` and its changes are under ``json_diffs``, as in ``dump``.
Values without column types (changes from elsewhere, e.g. PyMySQL values of
a snapshot) are converted by Python type to the same forms. These values
are also what the Debezium envelope carries (as Debezium's
``decimal.handling.mode=string``; temporal values are text, not Kafka
Connect's logical types).
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from binlogkit import __version__
from binlogkit.cdc.model import Change, Image, Source, Txn
from binlogkit.codec.columns import Column
from binlogkit.codec.describe import b64, json_doc, json_value

_JSON_TYPE = 245
_JSON_OPS = {0: "REPLACE", 1: "INSERT", 2: "REMOVE"}

# ------------------------------------------------------------------ values

_plans: dict[int, tuple[tuple[Column, ...], dict[str, Column]]] = {}


def _columns_by_key(columns: tuple[Column, ...]) -> dict[str, Column]:
    found = _plans.get(id(columns))
    if found is None or found[0] is not columns:
        if len(_plans) > 4096:
            _plans.clear()
        found = _plans[id(columns)] = (columns, {c.key: c for c in columns})
    return found[1]


def _time_text(v: dt.timedelta) -> str:
    us = v // dt.timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    us = abs(us)
    secs, frac = divmod(us, 1_000_000)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    out = f"{sign}{h:02d}:{m:02d}:{s:02d}"
    return out + f".{frac:06d}" if frac else out


def plain_value(v: Any) -> Any:
    """A value without its column's type, as JSON (docs/json.md forms)."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, bytes | bytearray | memoryview):
        return b64(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(" ", "microseconds" if v.microsecond else "seconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return _time_text(v)
    if isinstance(v, dt.time):
        return v.isoformat("microseconds" if v.microsecond else "seconds")
    if isinstance(v, set | frozenset):
        return ",".join(sorted(map(str, v)))
    if isinstance(v, tuple | list):
        return [plain_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain_value(x) for k, x in v.items()}
    if hasattr(v, "known") and hasattr(v, "value"):  # binlogkit.codec.jsonb.Json
        return json_doc(v.value) if v.known else None
    return json_doc(v)


def _diff(d: Any) -> dict[str, Any]:
    out = {"op": _JSON_OPS.get(d.op, d.op), "path": d.path}
    if d.op != 2:
        out["value"] = json_doc(d.value)
    return out


def image_json(image: Image | None, columns: tuple[Column, ...] | None,
               diffs: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A row image as JSON. With ``diffs`` (a dict), the JSON changes of
    partial-JSON columns whose document is unknown go there (the column is
    left out of the image)."""
    if image is None:
        return None
    if columns is None:
        return {k: plain_value(v) for k, v in image.items()}
    by_key = _columns_by_key(columns)
    out: dict[str, Any] = {}
    for k, v in image.items():
        col = by_key.get(k)
        if v is None:
            out[k] = None
        elif col is None:
            out[k] = plain_value(v)
        elif col.type == _JSON_TYPE and not getattr(v, "known", True):
            d = getattr(v, "diffs", None)
            if diffs is not None and d is not None:
                diffs[k] = [_diff(x) for x in d]
        else:
            out[k] = json_value(col, v)
    return out


def _images(change: Change) -> tuple[dict[str, Any] | None, dict[str, Any] | None,
                                     dict[str, Any]]:
    diffs: dict[str, Any] = {}
    before = image_json(change.before, change.columns)
    after = image_json(change.after, change.columns, diffs)
    return before, after, diffs


# --------------------------------------------------------------- JSON Lines


def source_json(source: Source) -> dict[str, Any]:
    return {"flavor": source.flavor, "server_id": source.server_id, "file": source.file,
            "pos": source.pos, "gtid": source.gtid, "ts_ms": source.ts_ms,
            "schema": source.schema, "table": source.table, "row": source.row,
            "snapshot": source.snapshot, "thread": source.thread, "query": source.query}


def change_json(change: Change) -> dict[str, Any]:
    """The JSON Lines record of a change: ``op``, ``before``, ``after``,
    ``source`` (and ``json_diffs`` for partial JSON updates)."""
    before, after, diffs = _images(change)
    out = {"op": change.op, "before": before, "after": after,
           "source": source_json(change.source)}
    if diffs:
        out["json_diffs"] = diffs
    return out


def _collections(txn: Txn) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for c in txn.changes:
        key = f"{c.source.schema}.{c.source.table}"
        counts[key] = counts.get(key, 0) + 1
    return [{"data_collection": k, "event_count": n} for k, n in counts.items()]


def begin_marker(txn: Txn) -> dict[str, Any]:
    """``{"type": "begin", "id", "gtid", "ts_ms", "events"}`` before a
    transaction's changes (``xa`` for XA transactions, ``snapshot``)."""
    out: dict[str, Any] = {"type": "begin", "id": txn.id, "gtid": txn.gtid, "ts_ms": txn.ts_ms,
                           "events": len(txn.changes)}
    if txn.xa is not None:
        out["xa"] = {"state": txn.xa[0], "xid": txn.xa[1]}
    if txn.snapshot:
        out["snapshot"] = True
    return out


def commit_marker(txn: Txn) -> dict[str, Any]:
    """``{"type": "commit", "id", "gtid", "ts_ms", "events", "data_collections",
    "end"}`` after them; ``end`` is the resume position after the transaction."""
    out = begin_marker(txn)
    out["type"] = "commit"
    out["data_collections"] = _collections(txn)
    out["end"] = txn.end.to_json()
    if txn.redelivered:
        out["redelivered"] = True
    return out


# ------------------------------------------------------------------ Debezium
#
# The envelope of the Debezium MySQL connector, as documented in "Debezium
# connector for MySQL", section "Data change events" (create / update /
# delete event values, the `source` and `transaction` fields):
#   https://debezium.io/documentation/reference/connectors/mysql.html
# source: version, connector, name, ts_ms (ts_us, ts_ns), snapshot ("true",
# "last", "false"), db, sequence, table, server_id, gtid, file, pos, row,
# thread, query; envelope: before, after, source, op, ts_ms (ts_us, ts_ns),
# transaction {id, total_order, data_collection_order}. Transaction metadata
# records: status BEGIN / END, id, ts_ms, event_count, data_collections.

_orders: tuple[Txn | None, list[int]] = (None, [])


def _collection_orders(txn: Txn) -> list[int]:
    """For each change of ``txn``, its 1-based order among its table's changes
    (cached for the transaction being written)."""
    global _orders
    if _orders[0] is not txn or len(_orders[1]) != len(txn.changes):
        seen: dict[tuple[str, str], int] = {}
        orders = []
        for c in txn.changes:
            key = (c.source.schema, c.source.table)
            seen[key] = seen.get(key, 0) + 1
            orders.append(seen[key])
        _orders = (txn, orders)
    return _orders[1]


def debezium_envelope(change: Change, txn: Txn | None = None, index: int | None = None, *,
                      name: str = "binlogkit", snapshot_last: bool = False,
                      now_ms: int | None = None) -> dict[str, Any]:
    """The Debezium MySQL connector's change event value for ``change``.

    ``txn`` (the change's transaction) fills ``transaction``; ``index`` is
    the change's place in it (default ``source.row``). ``name`` is the
    connector's logical server name; ``snapshot_last`` marks the last
    snapshot record (``snapshot: "last"``); ``now_ms`` the processing time
    (envelope ``ts_ms``; default now).
    """
    src = change.source
    before, after, _ = _images(change)
    if src.snapshot:
        snap = "last" if snapshot_last else "true"
    else:
        snap = "false"
    now = int(time.time() * 1000) if now_ms is None else now_ms
    source = {
        "version": __version__, "connector": "mysql", "name": name,
        "ts_ms": src.ts_ms, "ts_us": src.ts_ms * 1000, "ts_ns": src.ts_ms * 1_000_000,
        "snapshot": snap, "db": src.schema, "sequence": None, "table": src.table or None,
        "server_id": src.server_id, "gtid": src.gtid, "file": src.file, "pos": src.pos,
        "row": src.row, "thread": src.thread, "query": src.query,
    }
    transaction = None
    if txn is not None and not txn.snapshot:
        i = src.row if index is None else index
        orders = _collection_orders(txn)
        transaction = {"id": txn.id, "total_order": i + 1,
                       "data_collection_order": orders[i] if i < len(orders) else 1}
    return {"before": before, "after": after, "source": source, "op": change.op,
            "ts_ms": now, "ts_us": now * 1000, "ts_ns": now * 1_000_000,
            "transaction": transaction}


def debezium_begin(txn: Txn) -> dict[str, Any]:
    """Debezium's transaction metadata record opening ``txn``."""
    return {"status": "BEGIN", "id": txn.id, "ts_ms": txn.ts_ms, "event_count": None,
            "data_collections": None}


def debezium_end(txn: Txn) -> dict[str, Any]:
    """Debezium's transaction metadata record closing ``txn``."""
    return {"status": "END", "id": txn.id, "ts_ms": txn.ts_ms,
            "event_count": len(txn.changes), "data_collections": _collections(txn)}
