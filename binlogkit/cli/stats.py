"""``binlogkit stats``: what a set of binlog files holds."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC
from typing import Any

import click

from binlogkit.cli.common import expand_paths, reports_errors, walk
from binlogkit.codec.compression import CompressionError
from binlogkit.codec.describe import TableMaps, uuid_text
from binlogkit.codec.event import Event
from binlogkit.codec.rowcodec import WRITE_TYPES, decode_rows
from binlogkit.codec.rowimage import RowFramingError
from binlogkit.codec.types import ROWS_EVENTS, UPDATE_ROWS, EventType

T = EventType
_GTID_START = {T.GTID, T.ANONYMOUS_GTID, T.GTID_TAGGED, T.MARIADB_GTID}
_SIZE_BUCKETS = (1 << 10, 1 << 14, 1 << 17, 1 << 20, 1 << 24)


class _Transactions:
    """Transaction boundaries: a GTID event or BEGIN opens, XID / COMMIT /
    ROLLBACK / XA PREPARE closes; a statement outside a transaction is one."""

    def __init__(self) -> None:
        self.start: int | None = None
        self.sizes: list[int] = []
        self.largest: tuple[int, int] = (0, 0)
        self.in_begin = False

    def close(self, end: int) -> None:
        if self.start is None:
            return
        size = end - self.start
        self.sizes.append(size)
        if size > self.largest[0]:
            self.largest = (size, self.start)
        self.start = None
        self.in_begin = False

    def see(self, ev: Event) -> None:
        if ev.inner:
            return
        code = ev.type_code
        if code in _GTID_START:
            self.start = ev.pos
            return
        if code in (T.QUERY, T.QUERY_COMPRESSED):
            q = bytes(ev.body.query[:16]).strip().upper()
            if q == b"BEGIN" or q.startswith(b"XA START"):
                self.start = ev.pos if self.start is None else self.start
                self.in_begin = True
                return
            if q.startswith((b"COMMIT", b"ROLLBACK", b"XA COMMIT", b"XA ROLLBACK")) \
                    or not self.in_begin:
                self.start = ev.pos if self.start is None else self.start
                self.close(ev.next_pos)
            return
        # a TRANSACTION_PAYLOAD carries the whole transaction, commit included
        if code in (T.XID, T.XA_PREPARE, T.TRANSACTION_PAYLOAD) and self.start is not None:
            self.close(ev.next_pos)


class _TableCounts:
    """Per table: row events, rows inserted / updated / deleted, bytes of row events."""

    def __init__(self) -> None:
        self.tables: dict[str, Counter[str]] = defaultdict(Counter)

    def see(self, ev: Event, maps: TableMaps) -> None:
        schema, table = maps.name(ev.body.table_id)
        c = self.tables[f"{schema}.{table}"]
        c["events"] += 1
        c["bytes"] += ev.size
        kind = ("inserted" if ev.type_code in WRITE_TYPES else
                "updated" if ev.type_code in UPDATE_ROWS else "deleted")
        try:
            codec = maps.codec(ev.body.table_id)
            if codec is None:
                raise RowFramingError("no table map")
            c[kind] += len(decode_rows(ev.type_code, ev.body, codec))
        except (RowFramingError, CompressionError):
            c["undecoded_events"] += 1

    def report(self) -> dict[str, dict[str, int]]:
        order = sorted(self.tables.items(), key=lambda kv: -kv[1]["bytes"])
        keys = ("events", "inserted", "updated", "deleted", "bytes", "undecoded_events")
        return {name: {k: c[k] for k in keys if k in c or k != "undecoded_events"}
                for name, c in order}


def _ranges(gnos: list[int]) -> str:
    gnos.sort()
    out: list[str] = []
    lo = prev = gnos[0]
    for g in gnos[1:] + [None]:  # type: ignore[list-item]
        if g is not None and g <= prev + 1:
            prev = max(prev, g)
            continue
        out.append(str(lo) if lo == prev else f"{lo}-{prev}")
        if g is not None:
            lo = prev = g
    return ":".join(out)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--verify-checksum/--no-verify-checksum", default=True, show_default=True)
@reports_errors
def stats(files: tuple[str, ...], as_json: bool, verify_checksum: bool) -> None:
    """Event histogram, transactions, GTID range, time span and per-table counts."""
    types: Counter[str] = Counter()
    tables = _TableCounts()
    mysql_gtids: dict[str, list[int]] = defaultdict(list)
    mariadb: dict[str, list[int]] = {}
    trx = _Transactions()
    maps = TableMaps()
    first_ts = last_ts = None
    nbytes = 0
    for _, _reader, ev in walk(expand_paths(files), verify=verify_checksum,
                               progress_label="stats"):
        types[ev.type_name] += 1
        maps.see(ev)
        trx.see(ev)
        if not ev.inner:
            nbytes += ev.size
        if ev.timestamp:
            first_ts = ev.timestamp if first_ts is None else min(first_ts, ev.timestamp)
            last_ts = ev.timestamp if last_ts is None else max(last_ts, ev.timestamp)
        code = ev.type_code
        if code == T.GTID:
            mysql_gtids[uuid_text(ev.body.uuid)].append(ev.body.gno)
        elif code == T.GTID_TAGGED:
            tag = bytes(ev.body.tag or b"").decode()
            key = uuid_text(ev.body.uuid) + (f":{tag}" if tag else "")
            mysql_gtids[key].append(ev.body.gno)
        elif code == T.MARIADB_GTID:
            key = f"{ev.body.domain_id}-{ev.server_id}"
            lo_hi = mariadb.setdefault(key, [ev.body.seq_no, ev.body.seq_no])
            lo_hi[0] = min(lo_hi[0], ev.body.seq_no)
            lo_hi[1] = max(lo_hi[1], ev.body.seq_no)
        elif code in ROWS_EVENTS:
            tables.see(ev, maps)
    buckets: Counter[str] = Counter()
    for size in trx.sizes:
        label = next((f"<{b}" for b in _SIZE_BUCKETS if size < b), f">={_SIZE_BUCKETS[-1]}")
        buckets[label] += 1
    report: dict[str, Any] = {
        "bytes": nbytes,
        "events": sum(types.values()),
        "event_types": dict(types.most_common()),
        "transactions": {
            "count": len(trx.sizes),
            "total_bytes": sum(trx.sizes),
            "size_histogram": {k: buckets[k] for k in
                               [f"<{b}" for b in _SIZE_BUCKETS] + [f">={_SIZE_BUCKETS[-1]}"]
                               if buckets[k]},
            "largest": {"bytes": trx.largest[0], "pos": trx.largest[1]} if trx.sizes else None,
        },
        "gtids": ",".join(f"{k}:{_ranges(v)}" for k, v in sorted(mysql_gtids.items()))
        or None,
        "mariadb_gtids": {k: f"{k}-{lo}..{k}-{hi}" for k, (lo, hi) in sorted(mariadb.items())}
        or None,
        "first_timestamp": first_ts,
        "last_timestamp": last_ts,
        "tables": tables.report(),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"bytes:        {nbytes}")
    click.echo(f"events:       {report['events']}")
    for name, n in types.most_common():
        click.echo(f"  {name:<28} {n}")
    t = report["transactions"]
    click.echo(f"transactions: {t['count']} ({t['total_bytes']} bytes)")
    for k, v in t["size_histogram"].items():
        click.echo(f"  {k:<10} {v}")
    if t["largest"]:
        click.echo(f"  largest: {t['largest']['bytes']} bytes at {t['largest']['pos']}")
    if report["gtids"]:
        click.echo(f"gtids:        {report['gtids']}")
    for k, v in (report["mariadb_gtids"] or {}).items():
        click.echo(f"gtids {k}:  {v}")
    if first_ts is not None:
        from datetime import datetime

        def fmt(ts: int) -> str:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")

        click.echo(f"time span:    {fmt(first_ts)} .. {fmt(last_ts or first_ts)} UTC"
                   f" ({(last_ts or first_ts) - first_ts} s)")
    if report["tables"]:
        click.echo("row changes per table:")
        click.echo(f"  {'table':<32} {'events':>8} {'inserted':>9} {'updated':>9}"
                   f" {'deleted':>9} {'bytes':>11}")
        for name, c in report["tables"].items():
            click.echo(f"  {name:<32} {c['events']:>8} {c['inserted']:>9} {c['updated']:>9}"
                       f" {c['deleted']:>9} {c['bytes']:>11}"
                       + (f"  ({c['undecoded_events']} events not decoded)"
                          if c.get("undecoded_events") else ""))
