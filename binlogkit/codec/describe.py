"""Events as plain JSON-able values (the ``dump --format jsonl`` contract).

Text fields (query, schema, file names ...) become strings when they are
valid UTF-8, else ``{"base64": ...}``; other bytes become base64 strings;
UUIDs are printed the server's way. Row values are not decoded yet: each is
``{"raw": base64}`` (see docs/json.md).
"""

from __future__ import annotations

import base64
import uuid as uuidlib
from typing import Any

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
from binlogkit.codec.rowimage import Image, RowFramingError, TableLayout, split_rows
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
    """The table maps seen so far in a stream, by table id."""

    def __init__(self) -> None:
        self.maps: dict[int, Any] = {}
        self.layouts: dict[int, TableLayout | None] = {}

    def see(self, ev: Event) -> None:
        if ev.type_code == T.TABLE_MAP:
            self.maps[ev.body.table_id] = ev.body
            self.layouts.pop(ev.body.table_id, None)

    def name(self, table_id: int) -> tuple[str | None, str | None]:
        tm = self.maps.get(table_id)
        if tm is None:
            return None, None
        return _str(tm.schema), _str(tm.table)

    def layout(self, table_id: int) -> TableLayout | None:
        if table_id not in self.layouts:
            tm = self.maps.get(table_id)
            try:
                self.layouts[table_id] = TableLayout.from_table_map(tm) if tm else None
            except RowFramingError:
                self.layouts[table_id] = None
        return self.layouts[table_id]

    def column_names(self, table_id: int) -> list[str] | None:
        tm = self.maps.get(table_id)
        for item in (tm.optional_metadata if tm else []):
            if item.type == 4 and isinstance(item.value, list):
                return [_str(n) for n in item.value]
        return None


def _str(data: bytes) -> str:
    return bytes(data).decode("utf-8", "replace")


def _image(img: Image | None, names: list[str] | None) -> dict[str, Any] | None:
    if img is None:
        return None
    out: dict[str, Any] = {}
    for col, raw in img.values.items():
        key = names[col] if names and col < len(names) else f"@{col + 1}"
        if raw is None:
            out[key] = None
        elif col in img.partial:
            out[key] = {"raw": b64(raw), "partial_json": True}
        else:
            out[key] = {"raw": b64(raw)}
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
    layout = tables.layout(b.table_id)
    if layout is None:
        f["warnings"] = ["no usable TABLE_MAP for this table id; rows not framed"]
        f["rows_raw"] = b64(bytes(b.rows))
        return
    names = tables.column_names(b.table_id)
    try:
        changes = split_rows(ev.type_code, b, layout)
    except (RowFramingError, CompressionError) as exc:
        f["warnings"] = [f"rows not framed: {exc}"]
        f["rows_raw"] = b64(bytes(b.rows))
        return
    f["rows"] = [{"before": _image(ch.before, names), "after": _image(ch.after, names)}
                 for ch in changes]


_SPECIAL: dict[int, Any] = {
    T.QUERY: _query, T.QUERY_COMPRESSED: _query, T.EXECUTE_LOAD_QUERY: _query,
    T.FORMAT_DESCRIPTION: _fde, T.GTID: _gtid, T.ANONYMOUS_GTID: _gtid,
    T.GTID_TAGGED: _gtid_tagged, T.PREVIOUS_GTIDS: _previous, T.MARIADB_GTID: _mariadb_gtid,
    T.GTID_LIST: _gtid_list, T.TABLE_MAP: _table_map, T.TRANSACTION_PAYLOAD: _payload,
    T.USER_VAR: _uservar,
}
