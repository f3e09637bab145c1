"""``binlogkit dump``: every event of binlog files, as text or JSON Lines."""

from __future__ import annotations

import fnmatch
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from binlogkit.cli.common import expand_paths, reports_errors, walk
from binlogkit.cli.remote import open_stream, probe, remote_errors
from binlogkit.cli.servers import ConnectOptions, connection_options, is_server_url
from binlogkit.codec.columns import Schemas
from binlogkit.codec.describe import TableMaps, describe
from binlogkit.codec.event import Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import ROWS_EVENTS, EventType
from binlogkit.protocol.blocking import Discard
from binlogkit.protocol.fetch import StreamFiles
from binlogkit.protocol.replica import Start

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
@click.option("--start-position", "--start-pos", "start_position", type=int,
              help="Skip events before this offset (first file); with a server URL, "
                   "start the dump there (an event's offset in --start-file).")
@click.option("--stop-position", type=int,
              help="Stop at the event at/after this offset (last file; with a server URL: "
                   "in the last binlog the server lists when the dump starts).")
@click.option("--start-datetime", help="Skip events before this UTC time (YYYY-MM-DD HH:MM:SS).")
@click.option("--stop-datetime", help="Stop at the first event at/after this UTC time.")
@click.option("--database", "-d", "databases", multiple=True,
              help="Only events of this schema (QUERY db, table maps, rows); repeatable.")
@click.option("--table", "-t", "tables", multiple=True,
              help="Only table maps and rows of this table (glob, TABLE or SCHEMA.TABLE).")
@click.option("--type", "types", multiple=True,
              help="Only events of this type (e.g. QUERY, GTID, WRITE_ROWS_V2); repeatable.")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@click.option("--follow", "--stop-never", "-f", "follow", is_flag=True,
              help="Wait for the last file to grow and follow rotations, like tail -F; with a "
                   "server URL, wait for new events (blocking dump).")
@click.option("--schema", "schema_file", type=click.Path(dir_okay=False, exists=True),
              help="JSON table definitions for binlogs without column names"
                   " (see docs/rows.md).")
@click.option("--start-file", metavar="NAME",
              help="Server URL: the binlog to start from (default: the first one SHOW BINARY "
                   "LOGS lists).")
@click.option("--start-gtid", metavar="SET",
              help="Server URL: start after these GTIDs (MySQL GTID set, MariaDB GTID "
                   "position).")
@click.option("--server-id", type=click.IntRange(1, 0xFFFFFFFF),
              help="Server URL: the replica server_id to register (default: random).")
@click.option("--heartbeat", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Server URL: seconds between the server's heartbeats (0: none).")
@click.option("--show-artificial", is_flag=True,
              help="Server URL: also print the events that are not in the server's files "
                   "(the ROTATE naming the file, heartbeats, ...), with \"in_file\": false.")
@connection_options
@reports_errors
def dump(files: tuple[str, ...], fmt: str, start_position: int | None,
         stop_position: int | None, start_datetime: str | None, stop_datetime: str | None,
         databases: tuple[str, ...], tables: tuple[str, ...], types: tuple[str, ...],
         verify_checksum: bool, follow: bool, schema_file: str | None,
         start_file: str | None, start_gtid: str | None, server_id: int | None,
         heartbeat: float, show_artificial: bool, conn_opts: ConnectOptions) -> None:
    """Print the events of binlog FILES (or of a .index file's list), or of a
    server's binlogs read over the replication protocol (FILES: one
    mysql://user@host[:port] or mariadb://... URL; see docs/streaming.md)."""
    schemas = load_schemas(schema_file) if schema_file else None
    out = _Output(
        fmt=fmt, start_ts=_parse_datetime(start_datetime), stop_ts=_parse_datetime(stop_datetime),
        wanted={t.upper() for t in types}, databases=databases, tables=tables,
        maps=TableMaps(schemas), follow=follow)
    urls = [f for f in files if is_server_url(f)]
    if not urls:
        for name, value in (("--start-file", start_file), ("--start-gtid", start_gtid),
                            ("--server-id", server_id)):
            if value is not None:
                raise click.UsageError(f"{name} needs a server URL")
        if show_artificial:
            raise click.UsageError("--show-artificial needs a server URL")
        _dump_files(expand_paths(files), out, start_position, stop_position,
                    verify_checksum, follow)
        return
    if len(files) > 1:
        raise click.UsageError("give one server URL, or binlog files, not both or several")
    with remote_errors(files[0], conn_opts):
        _dump_server(files[0], conn_opts, out, start_file=start_file,
                     start_position=start_position, start_gtid=start_gtid,
                     stop_position=stop_position, verify=verify_checksum, follow=follow,
                     server_id=server_id, heartbeat=heartbeat, show_artificial=show_artificial)


class _Output:
    """The filters and the writer shared by files and servers."""

    def __init__(self, *, fmt: str, start_ts: int | None, stop_ts: int | None,
                 wanted: set[str], databases: tuple[str, ...], tables: tuple[str, ...],
                 maps: TableMaps, follow: bool) -> None:
        self.fmt, self.start_ts, self.stop_ts = fmt, start_ts, stop_ts
        self.wanted, self.databases, self.tables = wanted, databases, tables
        self.maps, self.follow = maps, follow
        self.show_file = False
        self.shown_file: str | None = None
        self.out = sys.stdout

    def stops(self, ev: Event) -> bool:
        return (not ev.inner and self.stop_ts is not None and ev.timestamp >= self.stop_ts
                and bool(ev.timestamp))

    def too_early(self, ev: Event) -> bool:
        return self.start_ts is not None and ev.timestamp < self.start_ts

    def write(self, ev: Event, file: str, in_file: bool = True) -> None:
        """Print ``ev`` (of ``file``) unless the type/schema/table filters drop it."""
        if self.wanted and ev.type_name not in self.wanted:
            return
        d = describe(ev, self.maps if ev.type_code in ROWS_EVENTS else None)
        if self.databases or self.tables:
            schema, table = _schema_table(d)
            if self.databases and schema is not None and schema not in self.databases:
                return
            if self.tables and not _table_matches(schema, table, self.tables):
                return
        if not in_file:
            d["in_file"] = False
        if self.fmt == "jsonl":
            if self.show_file:
                d = {"file": file, **d}
            self.out.write(json.dumps(d, separators=(",", ":")) + "\n")
        else:
            if self.show_file and file != self.shown_file:
                self.out.write(f"# file {file}\n")
            self.out.write(text_block(d) + "\n")
        self.shown_file = file
        if self.follow:
            self.out.flush()


def _dump_files(paths: list[str], out: _Output, start_position: int | None,
                stop_position: int | None, verify: bool, follow: bool) -> None:
    out.show_file = len(paths) > 1 or follow
    last = len(paths) - 1
    outer_skipped = False
    for i, reader, ev in walk(paths, verify=verify, follow=follow, progress_label="dump"):
        out.maps.see(ev)
        if not ev.inner:
            if i == last and stop_position is not None and ev.pos >= stop_position:
                break
            if out.stops(ev):
                break
            outer_skipped = (
                (i == 0 and start_position is not None and ev.pos < start_position)
                or out.too_early(ev)
            )
        if outer_skipped:
            continue
        out.write(ev, reader.name or "")
    out.out.flush()


def _dump_server(url_text: str, opts: ConnectOptions, out: _Output, *, start_file: str | None,
                 start_position: int | None, start_gtid: str | None, stop_position: int | None,
                 verify: bool, follow: bool, server_id: int | None, heartbeat: float,
                 show_artificial: bool) -> None:
    if start_gtid is not None and (start_file is not None or start_position is not None):
        raise click.UsageError("--start-gtid starts where the GTIDs say: not with "
                               "--start-file/--start-position")
    need_list = (start_gtid is None and start_file is None) or stop_position is not None
    remote = probe(url_text, opts, list_files=need_list)
    if start_gtid is not None:
        start = Start(gtids=start_gtid)
    else:
        start = Start(file=start_file or remote.files[0], pos=start_position or 4)
    stop_file = remote.files[-1] if stop_position is not None else None
    out.show_file = True
    files = StreamFiles(start.file)
    with open_stream(remote, start, follow=follow, server_id=server_id,
                     heartbeat=heartbeat or None, verify=verify) as stream:
        for item in stream:
            if isinstance(item, Discard):
                out.out.flush()
                click.echo(f"binlogkit: warning: the server no longer has the {item.events} "
                           f"event(s) printed from {item.file} at {item.pos} (it restarted "
                           "before they were durable): drop them", err=True)
                continue
            file = files.see(item)
            ev = item.event
            out.maps.see(ev)
            if item.in_file:
                if stop_file is not None and stop_position is not None and (
                        (file, ev.pos) >= (stop_file, stop_position)):
                    break
                if out.stops(ev):
                    break
            elif not show_artificial:
                continue
            if item.in_file and out.too_early(ev):
                continue
            out.write(ev, file, item.in_file)
            if ev.type_code == T.TRANSACTION_PAYLOAD:
                for inner in inner_events(ev, verify=verify, file=file):
                    out.maps.see(inner)
                    out.write(inner, file)
    out.out.flush()


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
