"""A primary's binlog: :class:`~binlogkit.replay.model.Transaction` objects written as
the events MySQL 9.7 or MariaDB 10.11 would log for them (see docs/replay-binlogs.md).

- :class:`BinlogEncoder` turns transactions into :class:`~binlogkit.codec.event.Event`
  objects (header events, one transaction's events, the closing event), for callers
  that stream events themselves;
- :class:`PrimaryBinlog` writes them to a file with
  :class:`~binlogkit.io.writer.BinlogWriter` (``write(txn)``, ``close()``);
- :func:`write_binlog` writes a whole file; :func:`transaction_events` is the one-off
  form of :meth:`BinlogEncoder.transaction_events`.

Formats: ``statement`` logs every statement as a QUERY (with the INTVAR / RAND /
USER_VAR events its context needs), ``row`` logs DML as TABLE_MAP + row events with
full images and DDL as QUERY, ``mixed`` logs a statement as rows when
``Executed.unsafe`` is non-empty, else as a statement.
"""

from __future__ import annotations

import os
import re
import struct
import time
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import construct as c

from binlogkit.codec import temporal as tp
from binlogkit.codec.columns import Column
from binlogkit.codec.context import CHECKSUM_CRC32, CHECKSUM_OFF, FormatContext
from binlogkit.codec.event import Event, context_after, encode_event
from binlogkit.codec.events.statement import StatusVars
from binlogkit.codec.registry import spec_for
from binlogkit.codec.rowcodec import Row, encode_rows
from binlogkit.codec.types import LOG_EVENT_IGNORABLE_F
from binlogkit.codec.types import EventType as T
from binlogkit.gtid.mysql import GtidSet
from binlogkit.io.writer import BinlogWriter
from binlogkit.replay.binlog_columns import table_columns, table_map_body
from binlogkit.replay.model import Context, Executed, RowChange, TableInfo, Transaction

Format = Literal["statement", "row", "mixed"]
Flavor = Literal["mysql", "mariadb"]

# FORMAT_DESCRIPTION bodies of the servers whose files this imitates
# (fixtures/mysql/*.000001: MySQL 9.7.4; fixtures/mariadb/*.000001: MariaDB 10.11.19).
MYSQL_VERSION = "9.7.4-2"
MYSQL_VERSION_ID = 90704
MYSQL_POST_HEADER = bytes.fromhex(
    "000d0008000000000400040000006300041a08000000000000020000000a0a0a2a2a001234000a280000")
MARIADB_VERSION = "10.11.19-MariaDB-0+deb12u1-log"
MARIADB_POST_HEADER = bytes.fromhex(
    "380d000800120004040404120000e400041a08000000080808020000000a0a0a0000000000000a0a0a"
    + "00" * 119 + "041304000d0808080a0a0a")

LOG_EVENT_SUPPRESS_USE_F = 0x0008
STMT_END_F = 1
# MariaDB GTID flags2
FL_STANDALONE, FL_TRANSACTIONAL, FL_ALLOW_PARALLEL, FL_DDL = 1, 4, 8, 32
# QUERY flags2: MariaDB's explicit_defaults_for_timestamp=1 (what 10.11 writes)
MARIADB_FLAGS2 = 1 << 24
INTVAR_LAST_INSERT_ID, INTVAR_INSERT_ID = 1, 2
USERVAR_STRING, USERVAR_REAL, USERVAR_INT, USERVAR_DECIMAL = 0, 1, 2, 4

_DB_DDL = re.compile(r"^\s*(CREATE|DROP|ALTER)\s+(DATABASE|SCHEMA)\b", re.I)
_MYSQL_GTID = re.compile(r"^([0-9a-fA-F-]{32,36}):(\d+)$")
_MARIADB_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


@dataclass
class BinlogInfo:
    """What :func:`write_binlog` / :class:`PrimaryBinlog` wrote."""

    path: str
    flavor: str
    fmt: str
    size: int = 0
    events: int = 0
    transactions: int = 0
    gtids: list[str] = field(default_factory=list)
    server_uuid: str | None = None
    next_file: str | None = None


def _next_name(path: str) -> str | None:
    """``binlog.000001`` -> ``binlog.000002`` (None: no numeric extension)."""
    name = os.path.basename(path)
    m = re.match(r"^(.*\.)(\d+)$", name)
    if not m:
        return None
    return f"{m.group(1)}{int(m.group(2)) + 1:0{len(m.group(2))}d}"


class BinlogEncoder:
    """Transactions to events, keeping what a server keeps across a file: the next
    GTID, table ids, XIDs, the logical clock.

    ``start_seq`` is the first GTID number (MySQL gno / MariaDB seq_no) given to a
    transaction without ``gtid``; a transaction with ``gtid`` keeps it (MySQL
    ``uuid:n``, MariaDB ``domain-server-seq``) and later ones continue after it.
    ``previous_gtids`` (MySQL: a GTID set text; MariaDB: ``d-s-n,...``) goes into
    PREVIOUS_GTIDS / GTID_LIST. ``time_zone`` (None: not written) is the session
    time zone QUERY events carry: TIMESTAMP values are UTC text in the model, so
    statements are logged to run in UTC. Events whose context has no timestamp get
    ``timestamp`` (default: now).
    """

    def __init__(
        self,
        *,
        fmt: Format | str = "row",
        flavor: Flavor | str = "mysql",
        server_id: int = 1,
        server_uuid: str | None = None,
        domain_id: int = 0,
        start_seq: int = 1,
        previous_gtids: str = "",
        checksum: bool = True,
        rows_query: bool = True,
        time_zone: str | None = "+00:00",
        binlog_name: str = "binlog.000001",
        timestamp: int | None = None,
        max_rows_bytes: int = 8192,
        first_table_id: int = 100,
    ) -> None:
        if fmt not in ("statement", "row", "mixed"):
            raise ValueError(f"fmt must be statement, row or mixed, not {fmt!r}")
        if flavor not in ("mysql", "mariadb"):
            raise ValueError(f"flavor must be mysql or mariadb, not {flavor!r}")
        self.fmt = fmt
        self.flavor = flavor
        self.server_id = server_id
        self.server_uuid = str(uuidlib.UUID(server_uuid)) if server_uuid else str(uuidlib.uuid4())
        self.domain_id = domain_id
        self.next_seq = start_seq
        self.previous_gtids = previous_gtids
        self.checksum = checksum
        self.rows_query = rows_query
        self.time_zone = time_zone
        self.binlog_name = binlog_name
        self.timestamp = int(time.time()) if timestamp is None else timestamp
        self.max_rows_bytes = max_rows_bytes
        self.next_table_id = first_table_id
        self.next_xid = 1
        self.sequence_number = 0
        self.tables: dict[Any, tuple[int, c.Container, tuple[Column, ...]]] = {}
        self.gtids: list[str] = []
        self.ctx = context_after(self.format_description(), FormatContext())

    # ------------------------------------------------------------ file-level events

    def format_description(self) -> Event:
        mysql = self.flavor == "mysql"
        body = c.Container(
            binlog_version=4,
            server_version=MYSQL_VERSION if mysql else MARIADB_VERSION,
            create_timestamp=0,
            header_length=19,
            post_header_lengths=MYSQL_POST_HEADER if mysql else MARIADB_POST_HEADER,
            checksum_alg=CHECKSUM_CRC32 if self.checksum else CHECKSUM_OFF,
        )
        return self._event(T.FORMAT_DESCRIPTION, body, self.timestamp)

    def header_events(self) -> list[Event]:
        """FDE, then PREVIOUS_GTIDS (MySQL) or GTID_LIST + BINLOG_CHECKPOINT (MariaDB)."""
        out = [self.format_description()]
        if self.flavor == "mysql":
            data = GtidSet.parse(self.previous_gtids).encode()
            body = self._parse(T.PREVIOUS_GTIDS, data)
            out.append(self._event(T.PREVIOUS_GTIDS, body, self.timestamp,
                                   flags=LOG_EVENT_IGNORABLE_F))
        else:
            gtids = []
            for item in filter(None, (s.strip() for s in self.previous_gtids.split(","))):
                d, s, n = (int(x) for x in item.split("-"))
                gtids.append(c.Container(domain_id=d, server_id=s, seq_no=n))
            # an empty list is padded as MariaDB pads it (the decoder wants >= 6 bytes)
            rest = b"" if gtids else b"\x00\x00"
            out.append(self._event(T.GTID_LIST, c.Container(flags=0, gtids=gtids, rest=rest),
                                   self.timestamp))
            out.append(self._event(T.BINLOG_CHECKPOINT, c.Container(
                binlog_file=self.binlog_name.encode(), rest=b""), self.timestamp))
        return out

    def footer_events(self, next_file: str | None) -> list[Event]:
        """ROTATE to ``next_file`` (what FLUSH BINARY LOGS writes), or STOP when None."""
        if next_file:
            body = c.Container(position=4, post_extra=b"", next_file=next_file.encode())
            return [self._event(T.ROTATE, body, self.timestamp)]
        return [self._event(T.STOP, c.Container(data=b""), self.timestamp)]

    # ------------------------------------------------------------ transactions

    def transaction_events(self, txn: Transaction) -> list[Event]:
        """The events of one transaction, GTID event first."""
        if not txn.statements:
            raise ValueError("a transaction needs at least one statement")
        ddl = txn.ddl or any(st.ddl for st in txn.statements)
        if ddl and len(txn.statements) != 1:
            raise ValueError("a DDL transaction holds exactly one statement "
                             f"(got {len(txn.statements)})")
        first, last = txn.statements[0].context, txn.statements[-1].context
        ts0 = first.timestamp or self.timestamp
        body: list[Event] = []
        if ddl:
            st = txn.statements[0]
            xid = self._xid()
            body.append(self._query(st.sql, st.context, ddl=True, xid=xid,
                                    dbs=self._dbs(st)))
        else:
            if self.flavor == "mysql":
                body.append(self._query("BEGIN", first, begin=True, dbs=[first.db] if first.db
                                        else []))
            for st in txn.statements:
                if self._as_rows(st):
                    body.extend(self._row_events(st))
                else:
                    body.extend(self._statement_events(st))
            body.append(self._event(T.XID, c.Container(xid=self._xid(), rest=b""),
                                    last.timestamp or self.timestamp))
        gtid = self._gtid_event(txn, ddl, ts0, last, body)
        return [gtid, *body]

    def _as_rows(self, st: Executed) -> bool:
        if st.ddl:
            return False
        if self.fmt == "row":
            return True
        return self.fmt == "mixed" and bool(st.unsafe)

    def _xid(self) -> int:
        xid = self.next_xid
        self.next_xid += 1
        return xid

    def _gtid_event(self, txn: Transaction, ddl: bool, ts: int, last: Context,
                    body: list[Event]) -> Event:
        if self.flavor == "mariadb":
            domain, server, seq = self.domain_id, self.server_id, self.next_seq
            if txn.gtid:
                m = _MARIADB_GTID.match(txn.gtid)
                if not m:
                    raise ValueError(f"{txn.gtid!r} is not a MariaDB GTID (domain-server-seq)")
                domain, server, seq = (int(x) for x in m.groups())
            self.next_seq = seq + 1
            self.gtids.append(f"{domain}-{server}-{seq}")
            flags2 = (FL_STANDALONE | FL_ALLOW_PARALLEL | FL_DDL if ddl
                      else FL_TRANSACTIONAL | FL_ALLOW_PARALLEL)
            b = c.Container(seq_no=seq, domain_id=domain, flags2=flags2, commit_id=None,
                            xid=None, flags_extra=0, extra_engines=None, sa_seq_no=None,
                            thread_id=None, padding=b"\x00" * 5)
            ev = self._event(T.MARIADB_GTID, b, ts, flags=LOG_EVENT_SUPPRESS_USE_F)
            ev.server_id = server
            return ev
        sid, gno = self.server_uuid, self.next_seq
        if txn.gtid:
            m = _MYSQL_GTID.match(txn.gtid)
            if not m:
                raise ValueError(f"{txn.gtid!r} is not a MySQL GTID (uuid:n)")
            sid, gno = str(uuidlib.UUID(m.group(1))), int(m.group(2))
        if sid == self.server_uuid:
            self.next_seq = gno + 1
        self.gtids.append(f"{sid}:{gno}")
        if txn.sequence_number:
            last_committed, seqno = txn.last_committed, txn.sequence_number
            self.sequence_number = max(self.sequence_number, seqno)
        else:
            self.sequence_number += 1
            seqno = self.sequence_number
            last_committed = seqno - 1
        commit_us = (last.timestamp or self.timestamp) * 1_000_000 + last.usec
        may_have_sbr = ddl or not all(self._as_rows(st) for st in txn.statements)
        b = c.Container(
            flags=1 if may_have_sbr else 0, uuid=uuidlib.UUID(sid).bytes, gno=gno, lt_type=2,
            last_committed=last_committed, sequence_number=seqno, post_extra=b"",
            commit_timestamp=c.Container(immediate=commit_us, original=None),
            transaction_length=0,
            server_version=c.Container(immediate=MYSQL_VERSION_ID, original=None),
            commit_group_ticket=None, rest=b"")
        ev = self._event(T.GTID, b, ts)
        rest = sum(len(encode_event(e, self.ctx)) for e in body)
        # transaction_length counts the GTID event itself, whose size depends on it
        for _ in range(3):
            b.transaction_length = rest + len(encode_event(ev, self.ctx))
        return ev

    # ------------------------------------------------------------ statements

    def _dbs(self, st: Executed) -> list[str]:
        dbs = list(dict.fromkeys(ch.table.schema for ch in st.changes))
        if not dbs and st.context.db:
            dbs = [st.context.db]
        return dbs

    def _statement_events(self, st: Executed) -> list[Event]:
        ctx = st.context
        ts = ctx.timestamp or self.timestamp
        out = []
        if ctx.last_insert_id is not None:
            out.append(self._event(T.INTVAR, c.Container(
                subtype=INTVAR_LAST_INSERT_ID, value=ctx.last_insert_id, rest=b""), ts))
        if ctx.insert_id is not None:
            out.append(self._event(T.INTVAR, c.Container(
                subtype=INTVAR_INSERT_ID, value=ctx.insert_id, rest=b""), ts))
        if ctx.rand_seed is not None:
            out.append(self._event(T.RAND, c.Container(
                seed1=ctx.rand_seed[0], seed2=ctx.rand_seed[1], rest=b""), ts))
        for name, value in ctx.user_vars.items():
            out.append(self._event(T.USER_VAR, user_var_body(name, value, ctx.charset[0]), ts))
        out.append(self._query(st.sql, ctx, dbs=self._dbs(st)))
        return out

    def _status_vars(self, ctx: Context, *, ddl: bool, xid: int | None,
                     dbs: Sequence[str], begin: bool) -> list[c.Container]:
        v: list[tuple[int, Any]] = []
        mysql = self.flavor == "mysql"
        v.append((0, 0 if mysql else MARIADB_FLAGS2))
        v.append((1, ctx.sql_mode))
        v.append((6, b"std"))
        if not mysql:
            v.append((3, c.Container(increment=1, offset=1)))
        v.append((4, c.Container(client=ctx.charset[0], connection=ctx.charset[1],
                                 server=ctx.charset[2])))
        if self.time_zone and not begin:
            v.append((5, self.time_zone.encode()))
        if mysql:
            if dbs:
                v.append((12, c.Container(count=len(dbs), names=list(dbs))))
            if ctx.usec and not begin:
                v.append((13, ctx.usec))
            if ddl and xid is not None:
                v.append((17, xid))
            v.append((18, 255))
        else:
            if ctx.usec and not begin:
                v.append((128, ctx.usec))
            if ddl and xid is not None:
                v.append((129, xid))
        return [c.Container(code=code, value=value) for code, value in v]

    def _query(self, sql: str, ctx: Context, *, ddl: bool = False, xid: int | None = None,
               dbs: Sequence[str] = (), begin: bool = False) -> Event:
        svars = c.Container(vars=self._status_vars(ctx, ddl=ddl, xid=xid, dbs=dbs,
                                                   begin=begin), rest=b"")
        flags = LOG_EVENT_SUPPRESS_USE_F if begin or _DB_DDL.match(sql) else 0
        body = c.Container(
            thread_id=ctx.thread_id, exec_time=0, error_code=0,
            status_vars_len=len(StatusVars.build(svars)), post_extra=b"",
            status_vars=svars, db=(ctx.db or "").encode(), query=sql.encode())
        return self._event(T.QUERY, body, ctx.timestamp or self.timestamp, flags=flags)

    # ------------------------------------------------------------ rows

    def table(self, table: TableInfo) -> tuple[int, c.Container, tuple[Column, ...]]:
        """(table id, TABLE_MAP body, columns) of a table; a new id when its
        definition changes."""
        key = (table.schema, table.name, table.columns, table.primary_key)
        found = self.tables.get(key)
        if found is None:
            tid = self.next_table_id
            self.next_table_id += 1
            body = table_map_body(table, tid, self.flavor)
            found = self.tables[key] = (tid, body, table_columns(body, self.flavor))
        return found

    def _row_events(self, st: Executed) -> list[Event]:
        if not st.changes:
            return []
        ts = st.context.timestamp or self.timestamp
        out: list[Event] = []
        if self.rows_query:
            if self.flavor == "mysql":
                out.append(self._event(T.ROWS_QUERY, c.Container(length=0, query=st.sql.encode()),
                                       ts, flags=LOG_EVENT_IGNORABLE_F))
            else:
                out.append(self._event(T.ANNOTATE_ROWS, c.Container(query=st.sql.encode()), ts))
        seen: dict[int, None] = {}
        for ch in st.changes:
            tid, body, _ = self.table(ch.table)
            if tid not in seen:
                seen[tid] = None
                out.append(self._event(T.TABLE_MAP, c.Container(body), ts))
        rows_events: list[Event] = []
        run: list[RowChange] = []
        for ch in st.changes:
            if run and (ch.kind != run[0].kind or ch.table is not run[0].table
                        and ch.table != run[0].table):
                rows_events.extend(self._rows_run(run, ts))
                run = []
            run.append(ch)
        rows_events.extend(self._rows_run(run, ts))
        rows_events[-1].body.flags |= STMT_END_F
        return out + rows_events

    def _rows_run(self, run: list[RowChange], ts: int) -> list[Event]:
        """Row events for consecutive changes of one kind on one table, split near
        ``max_rows_bytes`` as servers split at binlog_row_event_max_size."""
        tid, _, cols = self.table(run[0].table)
        kind = run[0].kind
        mysql = self.flavor == "mysql"
        code = {"insert": (T.WRITE_ROWS_V2, T.WRITE_ROWS_V1),
                "update": (T.UPDATE_ROWS_V2, T.UPDATE_ROWS_V1),
                "delete": (T.DELETE_ROWS_V2, T.DELETE_ROWS_V1)}[kind][0 if mysql else 1]
        bitmap = b"\xff" * ((len(cols) + 7) // 8)
        if len(cols) % 8:
            bitmap = bitmap[:-1] + bytes(((1 << (len(cols) % 8)) - 1,))
        out: list[Event] = []
        chunk = bytearray()
        for ch in run:
            row = Row(before=_image(ch.before, cols), after=_image(ch.after, cols))
            body = self._rows_body(tid, len(cols), bitmap, kind, b"")
            data = encode_rows(code, body, cols, [row])
            if chunk and len(chunk) + len(data) > self.max_rows_bytes:
                out.append(self._event(code, self._rows_body(tid, len(cols), bitmap, kind,
                                                             bytes(chunk)), ts))
                chunk = bytearray()
            chunk += data
        out.append(self._event(code, self._rows_body(tid, len(cols), bitmap, kind, bytes(chunk)),
                               ts))
        return out

    def _rows_body(self, tid: int, width: int, bitmap: bytes, kind: str,
                   rows: bytes) -> c.Container:
        mysql = self.flavor == "mysql"
        return c.Container(
            table_id=tid, flags=0, extra_len=2 if mysql else None, post_extra=b"",
            extra=[] if mysql else None, width=width, columns=bitmap,
            columns_after=bitmap if kind == "update" else None, rows=rows)

    # ------------------------------------------------------------ helpers

    def _event(self, code: int, body: Any, ts: int, *, flags: int = 0) -> Event:
        return Event(type_code=code, timestamp=ts, server_id=self.server_id, body=body,
                     log_pos=0, flags=flags)

    def _parse(self, code: int, data: bytes) -> Any:
        return spec_for(code).parse(data, ph=self.ctx.post_header_len(code), has_alg=False)


def _image(values: dict[str, Any] | None, cols: Sequence[Column]) -> dict[str, Any] | None:
    """An image keyed the way the columns are (case of the TABLE_MAP names)."""
    if values is None:
        return None
    lower = {k.lower(): v for k, v in values.items()}
    out = {}
    for col in cols:
        v = lower.get(col.key.lower())
        if isinstance(v, bool):
            v = int(v)
        out[col.key] = v
    return out


def user_var_body(name: str, value: Any, collation: int = 45) -> c.Container:
    """A USER_VAR body: ``None`` NULL, ``int`` INT (UNSIGNED above 2**63-1),
    ``float`` REAL, ``Decimal`` DECIMAL, ``str`` STRING in ``collation``, ``bytes``
    STRING in binary."""
    raw_name = name.lstrip("@").encode()
    if value is None:
        return c.Container(name=raw_name, is_null=1, value_type=None, charset=None,
                           value=None, flags=None, rest=b"")
    flags = None
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        vtype, cs, flags = USERVAR_INT, collation, 0
        if value < 0:
            data = value.to_bytes(8, "little", signed=True)
        else:
            data = value.to_bytes(8, "little")
            flags = 1 if value >= 1 << 63 else 0
    elif isinstance(value, float):
        vtype, cs, data = USERVAR_REAL, collation, struct.pack("<d", value)
    elif isinstance(value, Decimal):
        intpart, _, frac = format(abs(value), "f").partition(".")
        scale = len(frac)
        precision = (len(intpart.lstrip("0")) or 1) + scale
        vtype, cs = USERVAR_DECIMAL, collation
        data = bytes((precision, scale)) + tp.encode_decimal(value, precision, scale)
    elif isinstance(value, str):
        vtype, cs, data = USERVAR_STRING, collation, value.encode("utf-8")
    elif isinstance(value, bytes | bytearray):
        vtype, cs, data = USERVAR_STRING, 63, bytes(value)
    else:
        raise TypeError(f"user variable @{name}: cannot log a {type(value).__name__}")
    return c.Container(name=raw_name, is_null=0, value_type=vtype, charset=cs, value=data,
                       flags=flags, rest=b"")


def transaction_events(txn: Transaction, **options: Any) -> list[Event]:
    """The events of one transaction from a fresh :class:`BinlogEncoder`
    (``options`` as its constructor takes them)."""
    return BinlogEncoder(**options).transaction_events(txn)


class PrimaryBinlog:
    """A binlog file being written: header events at once, ``write(txn)`` per
    transaction, ``close()`` ends it with ROTATE to the next file name (STOP with
    ``rotate=False``). ``encoder_options`` go to :class:`BinlogEncoder`."""

    def __init__(self, path: str | os.PathLike[str], *, rotate: bool = True,
                 **encoder_options: Any) -> None:
        self.path = str(path)
        encoder_options.setdefault("binlog_name", os.path.basename(self.path))
        self.encoder = BinlogEncoder(**encoder_options)
        self.rotate = rotate
        self.writer = BinlogWriter(self.path, fix_positions=True)
        self.info = BinlogInfo(self.path, self.encoder.flavor, self.encoder.fmt,
                               server_uuid=self.encoder.server_uuid
                               if self.encoder.flavor == "mysql" else None)
        self._closed = False
        self._write(self.encoder.header_events())

    def _write(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.writer.write(ev)
            self.info.events += 1

    def write(self, txn: Transaction) -> str:
        """Log one transaction; return its GTID."""
        self._write(self.encoder.transaction_events(txn))
        self.info.transactions += 1
        gtid = self.encoder.gtids[-1]
        self.info.gtids.append(gtid)
        return gtid

    def close(self) -> BinlogInfo:
        if not self._closed:
            nxt = _next_name(self.path) if self.rotate else None
            self._write(self.encoder.footer_events(nxt))
            self.writer.close()
            self.info.next_file = nxt
            self.info.size = Path(self.path).stat().st_size
            self._closed = True
        return self.info

    def __enter__(self) -> PrimaryBinlog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_binlog(
    path: str | os.PathLike[str],
    transactions: Iterable[Transaction],
    *,
    fmt: Format | str = "row",
    flavor: Flavor | str = "mysql",
    server_id: int = 1,
    server_uuid: str | None = None,
    domain_id: int = 0,
    start_seq: int = 1,
    checksum: bool = True,
    rotate: bool = True,
    **options: Any,
) -> BinlogInfo:
    """Write ``transactions`` as a binlog file of ``flavor`` in ``fmt``."""
    with PrimaryBinlog(path, fmt=fmt, flavor=flavor, server_id=server_id,
                       server_uuid=server_uuid, domain_id=domain_id, start_seq=start_seq,
                       checksum=checksum, rotate=rotate, **options) as binlog:
        for txn in transactions:
            binlog.write(txn)
    return binlog.info
