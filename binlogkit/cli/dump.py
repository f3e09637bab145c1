"""``binlogkit dump``: every event of binlog files, as text or JSON Lines."""

from __future__ import annotations

import fnmatch
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from binlogkit.cli.common import expand_paths, reports_errors, walk
from binlogkit.codec.columns import Schemas
from binlogkit.codec.describe import TableMaps, describe
from binlogkit.codec.types import ROWS_EVENTS, EventType

T = EventType
_SQL_FIELDS = ("query",)
_COMMON = ("pos", "next_pos", "type", "timestamp", "server_id", "inner")
_BARE_SQL = ("QUERY", "QUERY_COMPRESSED", "EXECUTE_LOAD_QUERY")


def _parse_datetime(value: str | None) -> int | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not YYYY-MM-DD[ HH:MM:SS]")


def _schema_table(d: dict[str, Any]) -> tuple[str | None, str | None]:
    if d["type"] in ("QUERY", "QUERY_COMPRESSED", "EXECUTE_LOAD_QUERY"):
        db = d.get("db")
        return (db if isinstance(db, str) else None), None
    return d.get("schema"), d.get("table")


def text_block(d: dict[str, Any]) -> str:
    """A readable block: one header line, fields, then SQL for statement events."""
    if d.get("encrypted"):
        return (f"# at {d['pos']}  next {d['next_pos']}  ENCRYPTED"
                "  (MariaDB binlog encryption: header and body need the key)")
    ts = datetime.fromtimestamp(d["timestamp"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    indent = "    " if d.get("inner") else ""
    lines = [
        f"{indent}# at {d['pos']}{' (inner)' if d.get('inner') else ''}  next {d['next_pos']}"
        f"  {d['type']}  {ts} UTC  server_id {d['server_id']}"
    ]
    sql = None
    for k, v in d.items():
        if k in _COMMON or v is None:
            continue
        if k in _SQL_FIELDS and isinstance(v, str):
            sql = v
            continue
        if k == "rows":
            for n, row in enumerate(v):
                lines.append(f"{indent}#   row {n}: {json.dumps(row, separators=(',', ':'))}")
            continue
        value = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        lines.append(f"{indent}#   {k}: {value}")
    if sql is not None and d["type"] in _BARE_SQL:
        lines.append(indent + sql.rstrip() + ";")
    elif sql is not None:  # ANNOTATE_ROWS / ROWS_QUERY: the statement, as a comment
        lines.extend(f"{indent}#   > {line}" for line in sql.splitlines())
    return "\n".join(lines)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
              show_default=True, help="Readable blocks, or one JSON object per line.")
@click.option("--start-position", type=int, help="Skip events before this offset (first file).")
@click.option("--stop-position", type=int,
              help="Stop at the event at/after this offset (last file).")
@click.option("--start-datetime", help="Skip events before this UTC time (YYYY-MM-DD HH:MM:SS).")
@click.option("--stop-datetime", help="Stop at the first event at/after this UTC time.")
@click.option("--database", "-d", "databases", multiple=True,
              help="Only events of this schema (QUERY db, table maps, rows); repeatable.")
@click.option("--table", "-t", "tables", multiple=True,
              help="Only table maps and rows of this table (glob, TABLE or SCHEMA.TABLE).")
@click.option("--type", "types", multiple=True,
              help="Only events of this type (e.g. QUERY, GTID, WRITE_ROWS_V2); repeatable.")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@click.option("--follow", "-f", is_flag=True,
              help="Wait for the last file to grow and follow rotations, like tail -F.")
@click.option("--schema", "schema_file", type=click.Path(dir_okay=False, exists=True),
              help="JSON table definitions for binlogs without column names"
                   " (see docs/rows.md).")
@reports_errors
def dump(files: tuple[str, ...], fmt: str, start_position: int | None,
         stop_position: int | None, start_datetime: str | None, stop_datetime: str | None,
         databases: tuple[str, ...], tables: tuple[str, ...], types: tuple[str, ...],
         verify_checksum: bool, follow: bool, schema_file: str | None) -> None:
    """Print the events of binlog FILES (or of a .index file's list)."""
    paths = expand_paths(files)
    schemas = load_schemas(schema_file) if schema_file else None
    start_ts = _parse_datetime(start_datetime)
    stop_ts = _parse_datetime(stop_datetime)
    wanted = {t.upper() for t in types}
    maps = TableMaps(schemas)
    out = sys.stdout
    last = len(paths) - 1
    outer_skipped = False
    for i, _reader, ev in walk(paths, verify=verify_checksum, follow=follow,
                               progress_label="dump"):
        maps.see(ev)
        if not ev.inner:
            if i == last and stop_position is not None and ev.pos >= stop_position:
                break
            if stop_ts is not None and ev.timestamp >= stop_ts and ev.timestamp:
                break
            outer_skipped = (
                (i == 0 and start_position is not None and ev.pos < start_position)
                or (start_ts is not None and ev.timestamp < start_ts)
            )
        if outer_skipped:
            continue
        if wanted and ev.type_name not in wanted:
            continue
        d = describe(ev, maps if ev.type_code in ROWS_EVENTS else None)
        if databases or tables:
            schema, table = _schema_table(d)
            if databases and schema is not None and schema not in databases:
                continue
            if tables and not _table_matches(schema, table, tables):
                continue
        if fmt == "jsonl":
            out.write(json.dumps(d, separators=(",", ":")) + "\n")
        else:
            out.write(text_block(d) + "\n")
        if follow:
            out.flush()
    out.flush()


def load_schemas(path: str) -> Schemas:
    """Table definitions from a JSON file: {"db": {"table": [column, ...]}}."""
    try:
        with open(path, encoding="utf-8") as fh:
            return Schemas.from_mapping(json.load(fh))
    except (ValueError, TypeError, AttributeError) as exc:
        raise click.UsageError(f"{path}: not a schema file ({exc})") from None


def _table_matches(schema: str | None, table: str | None, patterns: tuple[str, ...]) -> bool:
    if table is None:
        return False
    full = f"{schema}.{table}"
    return any(fnmatch.fnmatchcase(full if "." in p else table, p) for p in patterns)
