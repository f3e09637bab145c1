"""Events as plain JSON-able values (the ``dump --format jsonl`` contract).

Text fields (query, schema, file names ...) become strings when they are
valid UTF-8, else ``{"base64": ...}``; other bytes become base64 strings;
UUIDs are printed the server's way. Row values follow the table in
docs/json.md (:func:`json_value`).
"""

from __future__ import annotations

import base64
import json
import struct
import uuid as uuidlib
from decimal import Decimal
from typing import Any

from binlogkit.codec.columns import Column, Schemas, columns_from_table_map
from binlogkit.codec.compression import CompressionError, mariadb_decompress
from binlogkit.codec.event import ENCRYPTED, Event
from binlogkit.codec.events.payload import (
    COMPRESSION_TYPE,
    PAYLOAD_SIZE,
    UNCOMPRESSED_SIZE,
    header_field,
)
from binlogkit.codec.events.rows import OPT_METADATA_NAMES
from binlogkit.codec.events.statement import STATUS_VAR_NAMES
from binlogkit.codec.rowcodec import Row, TableCodec, decode_rows
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.types import ROWS_EVENTS, EventType

T = EventType
TEXT_FIELDS = frozenset({
    "query", "db", "schema", "table", "next_file", "log_file", "binlog_file", "name",
    "file_name", "message", "server_uuid", "master_host", "master_log", "tag", "time_zone",
    "catalog", "catalog_nz", "user", "host", "names", "fields", "view_id", "server_version",
})
CHECKSUM_NAMES = {0: "NONE", 1: "CRC32", 255: "UNDEF"}


def b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def text(data: bytes | bytearray | memoryview) -> str | dict[str, str]:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": b64(data)}


def uuid_text(data: bytes) -> str:
    return str(uuidlib.UUID(bytes=bytes(data)))


def gtid_text(ev: Event) -> str | None:
    """The GTID a GTID event assigns (None for ANONYMOUS_GTID)."""
    b = ev.body
    if ev.type_code == EventType.GTID:
        return f"{uuid_text(b.uuid)}:{b.gno}"
    if ev.type_code == EventType.GTID_TAGGED:
        tag = bytes(b.tag or b"").decode("ascii", "replace")
        uuid = uuid_text(b.uuid) if b.uuid is not None else "?"
        return f"{uuid}:{tag}:{b.gno}" if tag else f"{uuid}:{b.gno}"
    if ev.type_code == EventType.MARIADB_GTID:
        return f"{b.domain_id}-{ev.server_id}-{b.seq_no}"
    return None


def plain(value: Any, key: str = "") -> Any:
    """A parsed field as JSON-able data."""
    if isinstance(value, bytes | bytearray | memoryview):
        return text(value) if key in TEXT_FIELDS else b64(value)
    if isinstance(value, dict):
        return {k: plain(v, k) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list | tuple):
        return [plain(v, key) for v in value]
    return value


def gtid_set_text(sids: Any) -> str:
    """MySQL text of an encoded GTID set (intervals end-exclusive on the wire)."""
    parts = []
    for sid in sids:
        head = uuid_text(sid.uuid)
        if sid.tag:
            head += ":" + bytes(sid.tag).decode("ascii", "replace")
        ivs = [f"{iv.start}" if iv.end - 1 == iv.start else f"{iv.start}-{iv.end - 1}"
               for iv in sid.intervals]
        parts.append(":".join([head, *ivs]))
    return ",".join(parts)


class TableMaps:
    """The table maps seen so far in a stream, by table id, with the columns
    row decoding uses (completed by caller ``schemas`` where the binlog is silent)."""

    def __init__(self, schemas: Schemas | None = None) -> None:
        self.maps: dict[int, Any] = {}
        self.codecs: dict[int, TableCodec | RowFramingError] = {}
        self.flavors: dict[int, str] = {}
        self.schemas = schemas
        self._derived: dict[tuple[Any, ...], TableCodec | RowFramingError] = {}
        self._names: dict[int, tuple[Any, str, str]] = {}

    def see(self, ev: Event) -> None:
        if ev.type_code == T.TABLE_MAP:
            tid = ev.body.table_id
            self.maps[tid] = ev.body
            self.codecs.pop(tid, None)
            self.flavors[tid] = ev.ctx.flavor if ev.ctx is not None else "mysql"

    def name(self, table_id: int) -> tuple[str | None, str | None]:
        tm = self.maps.get(table_id)
        if tm is None:
            return None, None
        found = self._names.get(table_id)
        if found is None or found[0] is not tm:
            found = self._names[table_id] = (tm, _str(tm.schema), _str(tm.table))
        return found[1], found[2]

    def codec(self, table_id: int) -> TableCodec | None:
        """The table's row codec, or None without a table map; raises
        RowFramingError when the table map's metadata does not fit its types.
        Codecs are shared by identical table maps (the same table in every
        transaction)."""
        found = self.codecs.get(table_id)
        if found is None:
            tm = self.maps.get(table_id)
            if tm is None:
                return None
            flavor = self.flavors.get(table_id, "mysql")
            raw = tm.get("_raw")
            key = (raw, flavor) if raw is not None else None
            found = self._derived.get(key) if key is not None else None
            if found is None:
                found = self._build(table_id, tm, flavor)
                if key is not None:
                    if len(self._derived) > 4096:
                        self._derived.clear()
                    self._derived[key] = found
            self.codecs[table_id] = found
        if isinstance(found, RowFramingError):
            raise found
        return found

    def _build(self, table_id: int, tm: Any, flavor: str) -> TableCodec | RowFramingError:
        schema, table = self.name(table_id)
        tdef = self.schemas.get(schema or "", table or "") if self.schemas else None
        try:
            return TableCodec(columns_from_table_map(tm, tdef, flavor))
        except RowFramingError as exc:
            return exc

    def table_columns(self, table_id: int) -> tuple[Column, ...] | None:
        """Columns of the table (see :meth:`codec`)."""
        codec = self.codec(table_id)
        return codec.columns if codec is not None else None

    def column_names(self, table_id: int) -> list[str] | None:
        tm = self.maps.get(table_id)
        for item in (tm.optional_metadata if tm else []):
            if item.type == 4 and isinstance(item.value, list):
                return [_str(n) for n in item.value]
        return None


def _str(data: bytes) -> str:
    return bytes(data).decode("utf-8", "replace")


def float32(v: float) -> float:
    """The shortest double that reads back as the same float32 (how FLOAT prints)."""
    packed = struct.pack("<f", v)
    for digits in range(6, 10):
        short = float(f"{v:.{digits}g}")
        if struct.pack("<f", short) == packed:
            return short
    return v


def json_value(col: Column, v: Any) -> Any:
    """A decoded column value under the JSON contract of docs/json.md (the same
    conversion ``dump --format jsonl`` applies per table)."""
    if v is None:
        return None
    if col.type == 245:
        return json_doc(v.value) if getattr(v, "known", True) else None
    conv = _converter(col)
    return v if conv is None else conv(v)


def json_doc(v: Any) -> Any:
    """A MySQL JSON document as plain JSON: opaque DECIMAL as a number when a
    double holds it exactly (else its text), other opaque values as MySQL's text."""
    if isinstance(v, dict):
        return {k: json_doc(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_doc(x) for x in v]
    if v is None or isinstance(v, bool | int | float | str):
        return v
    inner = getattr(v, "value", None)  # binlogkit.codec.jsonb.JsonOpaque
    if isinstance(inner, Decimal):
        if inner == inner.to_integral_value() and abs(inner) < 2**63:
            return int(inner)
        return float(inner) if Decimal(repr(float(inner))) == inner else format(inner, "f")
    return inner if isinstance(inner, str) else json.loads(v.text())


_NATIVE = frozenset({1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 247, 248})


def _text_or_b64(v: Any) -> Any:
    return v if isinstance(v, str) else b64(v)


def _decimal_text(v: Decimal) -> str:
    return format(v, "f")


def _vector(v: tuple[float, ...]) -> list[float]:
    return [float32(x) for x in v]


def _converter(col: Column) -> Any:
    """What turns this column's Python values into JSON values (None: nothing)."""
    t = col.type
    if t in _NATIVE:
        return None
    if t == 4:
        return float32
    if t in (0, 246):
        return _decimal_text
    if t == 242:
        return _vector
    return _text_or_b64  # text, BINARY/BLOB, GEOMETRY; MariaDB UUID/INET text


class _JsonPlan:
    """Per table: the converters of the columns that need one, and the JSON columns."""

    def __init__(self, columns: tuple[Column, ...]) -> None:
        self.convs = [(c.key, f) for c in columns if c.type != 245
                      for f in [_converter(c)] if f is not None]
        self.json_keys = [c.key for c in columns if c.type == 245]


def _plan_of(codec: TableCodec) -> _JsonPlan:
    plan = codec.extra.get("json")
    if plan is None:
        plan = codec.extra["json"] = _JsonPlan(codec.columns)
    return plan  # type: ignore[no-any-return]


def _image(img: dict[str, Any] | None, plan: _JsonPlan) -> dict[str, Any] | None:
    """An image as JSON; a partial-JSON column whose document is unknown (only
    its diffs, under ``json_diffs``) is left out."""
    if img is None:
        return None
    out = dict(img)
    for k, conv in plan.convs:
        v = out.get(k)
        if v is not None:
            out[k] = conv(v)
    for k in plan.json_keys:
        v = out.get(k)
        if v is not None:
            if v.known:
                out[k] = json_doc(v.value)
            else:
                del out[k]
    return out


def row_json(row: Row, codec: TableCodec) -> dict[str, Any]:
    """A row change under the JSON contract (docs/json.md)."""
    plan = _plan_of(codec)
    out = {"before": _image(row.before, plan), "after": _image(row.after, plan)}
    if plan.json_keys and row.after:
        diffs = {}
        for k in plan.json_keys:
            d = getattr(row.after.get(k), "diffs", None)
            if d is not None:
                diffs[k] = [_diff(x) for x in d]
        if diffs:
            out["json_diffs"] = diffs
    return out


_JSON_OPS = {0: "REPLACE", 1: "INSERT", 2: "REMOVE"}


def _diff(d: Any) -> dict[str, Any]:
    out = {"op": _JSON_OPS.get(d.op, d.op), "path": d.path}
    if d.op != 2:
        out["value"] = json_doc(d.value)
    return out


def describe(ev: Event, tables: TableMaps | None = None) -> dict[str, Any]:
    """The event as a flat dict: common fields, then the type's own fields."""
    out: dict[str, Any] = {
        "pos": ev.pos,
        "next_pos": ev.next_pos,
        "type": ev.type_name,
        "timestamp": ev.timestamp,
        "server_id": ev.server_id,
    }
    if ev.inner:
        out["inner"] = True
    if ev.log_pos is not None:
        out["log_pos"] = ev.log_pos
    out["header_flags"] = ev.flags
    if ev.checksum is not None:
        out["checksum"] = ev.checksum
    if ev.type_code == ENCRYPTED:
        out["encrypted"] = True
        return out
    body = ev.body
    code = ev.type_code
    fields = plain(body)
    handler = _SPECIAL.get(code)
    if handler is not None:
        handler(ev, fields, tables)
    elif code in ROWS_EVENTS:
        _rows(ev, fields, tables)
    if ev.warnings:
        fields["warnings"] = list(ev.warnings)
    for k, v in fields.items():
        # fields absent from the wire (None) and empty raw tails are left out
        if v is not None and (k not in ("rest", "post_extra", "padding") or v):
            out[k] = v
    return out


def _query(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    sv = ev.body.status_vars
    if sv is not None:
        f["status_vars"] = {
            STATUS_VAR_NAMES.get(v.code, f"unknown_{v.code}"): plain(v.value, STATUS_VAR_NAMES.get(
                v.code, ""))
            for v in sv.vars
        }
        if sv.rest:
            f["status_vars"]["unparsed"] = b64(sv.rest)
    if ev.type_code == T.QUERY_COMPRESSED:
        try:
            f["query"] = text(mariadb_decompress(bytes(ev.body.query)))
        except CompressionError as exc:
            f["query"] = None
            f["warnings"] = [f"cannot decompress query: {exc}"]
    for k in ("db_len", "status_vars_len"):
        f.pop(k, None)


def _fde(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    f["post_header_lengths"] = list(bytes(ev.body.post_header_lengths))
    alg = ev.body.checksum_alg
    f["checksum_alg"] = None if alg is None else CHECKSUM_NAMES.get(alg, alg)


def _gtid(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    b = ev.body
    f["uuid"] = uuid_text(b.uuid)
    f["gtid"] = f"{f['uuid']}:{b.gno}"
    ct = b.commit_timestamp
    if ct is not None:
        f["immediate_commit_timestamp"] = ct.immediate
        f["original_commit_timestamp"] = ct.original if ct.original is not None else ct.immediate
        del f["commit_timestamp"]
    sv = b.server_version
    if sv is not None:
        f["immediate_server_version"] = sv.immediate
        f["original_server_version"] = sv.original if sv.original is not None else sv.immediate
        del f["server_version"]


def _gtid_tagged(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    b = ev.body
    f["uuid"] = uuid_text(b.uuid) if b.uuid is not None else None
    tag = bytes(b.tag or b"").decode("ascii", "replace")
    f["tag"] = tag
    f["gtid"] = f"{f['uuid']}:{tag + ':' if tag else ''}{b.gno}"


def _previous(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    f["tagged_format"] = ev.body.header >> 56 == 1
    f["gtid_set"] = gtid_set_text(ev.body.sids)
    for sid, parsed in zip(f["sids"], ev.body.sids, strict=True):
        sid["uuid"] = uuid_text(parsed.uuid)


def _mariadb_gtid(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    b = ev.body
    f["gtid"] = f"{b.domain_id}-{ev.server_id}-{b.seq_no}"


def _gtid_list(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    f["gtid_list"] = ",".join(f"{g.domain_id}-{g.server_id}-{g.seq_no}" for g in ev.body.gtids)
    f.pop("count_flags", None)


def _table_map(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    f["column_types"] = list(bytes(ev.body.column_types))
    f["optional_metadata"] = {
        OPT_METADATA_NAMES.get(m.type, f"unknown_{m.type}"): plain(
            m.value, "names" if m.type in _NAME_LISTS else "")
        for m in ev.body.optional_metadata
    }


_NAME_LISTS = frozenset({4, 5, 6})  # column names, SET and ENUM strings


def _payload(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    fields = ev.body.fields
    ctype = header_field(fields, COMPRESSION_TYPE)
    f["compression_type"] = {0: "ZSTD", 255: "NONE"}.get(ctype or 0, ctype)
    f["payload_size"] = header_field(fields, PAYLOAD_SIZE)
    f["uncompressed_size"] = header_field(fields, UNCOMPRESSED_SIZE)
    del f["fields"], f["payload"]


def _uservar(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    f.pop("name_len", None)
    f.pop("value_len", None)


def _rows(ev: Event, f: dict[str, Any], tables: TableMaps | None) -> None:
    b = ev.body
    f.pop("rows", None)
    f.pop("extra_len", None)
    if tables is None:
        return
    tm = tables.maps.get(b.table_id)
    if tm is not None:
        f["schema"], f["table"] = text(tm.schema), text(tm.table)
    try:
        codec = tables.codec(b.table_id)
        if codec is None:
            f["warnings"] = ["no TABLE_MAP for this table id; rows not decoded"]
            f["rows_raw"] = b64(bytes(b.rows))
            return
        rows = decode_rows(ev.type_code, b, codec)
    except (RowFramingError, CompressionError) as exc:
        f["warnings"] = [f"rows not decoded: {exc}"]
        f["rows_raw"] = b64(bytes(b.rows))
        return
    f["rows"] = [row_json(r, codec) for r in rows]


_SPECIAL: dict[int, Any] = {
    T.QUERY: _query, T.QUERY_COMPRESSED: _query, T.EXECUTE_LOAD_QUERY: _query,
    T.FORMAT_DESCRIPTION: _fde, T.GTID: _gtid, T.ANONYMOUS_GTID: _gtid,
    T.GTID_TAGGED: _gtid_tagged, T.PREVIOUS_GTIDS: _previous, T.MARIADB_GTID: _mariadb_gtid,
    T.GTID_LIST: _gtid_list, T.TABLE_MAP: _table_map, T.TRANSACTION_PAYLOAD: _payload,
    T.USER_VAR: _uservar,
}
