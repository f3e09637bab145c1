"""Run the servers' own binlog decoders and parse what they print.

``reference_events(path, (flavor, major))`` runs

* MySQL 9.7's ``mysqlbinlog`` inside the Debian sid root (``$BINLOGKIT_SID_ROOT``, default
  ``/opt/binlogkit-sid``) for MySQL 8.0+ files (and MySQL files of unknown version, e.g.
  encrypted ones); the file is copied to ``<root>/tmp/binlogkit-ref-XXXX/`` first;
* MariaDB's ``mariadb-binlog`` on the host for everything else (MariaDB, MySQL < 8.0:
  MySQL 9.7 cannot read v1 row events, START_V3 files, or MariaDB events),

with ``--no-defaults --hexdump --force-read --force-if-open --base64-output=decode-rows``
(``--skip-gtid-strict-mode`` for mariadb-binlog, ``--local-load`` in a private directory),
and returns a ``RefResult`` with one ``RefEvent`` per ``# at N`` the tool printed:
position, end_log_pos, the name the tool printed, the type code (read from the file at
that position for outer events, else from the tool's hexdump, else from the name), and
for QUERY events the exact SQL.  Events that mysqlbinlog prints from inside a
TRANSACTION_PAYLOAD are flagged ``inner=True``; a ``# at N`` the tool printed nothing
else for is a ``silent=True`` event.  See docs/corpus.md for the output quirks.

``mariadb-binlog --force-read`` loops forever on a truncated event (it prints
``# Encrypted event`` at the same position again and again), so the output is streamed,
a loop is detected and the tool killed, and the file is decoded again without
``--force-read``; ``RefResult.looped_at`` tells where.

``python tests/reference.py`` decodes the whole corpus and prints a report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MYSQLBINLOG = "mysqlbinlog"
MARIADB_BINLOG = "mariadb-binlog"

DELIMITER = "/*!*/;"


def sid_root() -> Path:
    return Path(os.environ.get("BINLOGKIT_SID_ROOT", "/opt/binlogkit-sid"))


def mariadb_binlog_path() -> str | None:
    return os.environ.get("BINLOGKIT_MARIADB_BINLOG") or shutil.which("mariadb-binlog")


def tools_available() -> dict[str, bool]:
    return {
        MARIADB_BINLOG: mariadb_binlog_path() is not None,
        MYSQLBINLOG: (sid_root() / "usr/bin/mysqlbinlog").exists() and os.geteuid() == 0,
    }


# --------------------------------------------------------------------------------------
# Type codes and the names the tools print
# --------------------------------------------------------------------------------------

# Same names as binlogkit.codec.types.EventType (kept separate on purpose: the reference
# side must not depend on the code under test).
TYPE_NAMES: dict[int, str] = {
    0: "UNKNOWN", 1: "START_V3", 2: "QUERY", 3: "STOP", 4: "ROTATE", 5: "INTVAR",
    6: "LOAD", 7: "SLAVE", 8: "CREATE_FILE", 9: "APPEND_BLOCK", 10: "EXEC_LOAD",
    11: "DELETE_FILE", 12: "NEW_LOAD", 13: "RAND", 14: "USER_VAR",
    15: "FORMAT_DESCRIPTION", 16: "XID", 17: "BEGIN_LOAD_QUERY", 18: "EXECUTE_LOAD_QUERY",
    19: "TABLE_MAP", 20: "PRE_GA_WRITE_ROWS", 21: "PRE_GA_UPDATE_ROWS",
    22: "PRE_GA_DELETE_ROWS", 23: "WRITE_ROWS_V1", 24: "UPDATE_ROWS_V1",
    25: "DELETE_ROWS_V1", 26: "INCIDENT", 27: "HEARTBEAT", 28: "IGNORABLE",
    29: "ROWS_QUERY", 30: "WRITE_ROWS_V2", 31: "UPDATE_ROWS_V2", 32: "DELETE_ROWS_V2",
    33: "GTID", 34: "ANONYMOUS_GTID", 35: "PREVIOUS_GTIDS", 36: "TRANSACTION_CONTEXT",
    37: "VIEW_CHANGE", 38: "XA_PREPARE", 39: "PARTIAL_UPDATE_ROWS",
    40: "TRANSACTION_PAYLOAD", 41: "HEARTBEAT_V2", 42: "GTID_TAGGED",
    160: "ANNOTATE_ROWS", 161: "BINLOG_CHECKPOINT", 162: "MARIADB_GTID", 163: "GTID_LIST",
    164: "START_ENCRYPTION", 165: "QUERY_COMPRESSED", 166: "WRITE_ROWS_COMPRESSED_V1",
    167: "UPDATE_ROWS_COMPRESSED_V1", 168: "DELETE_ROWS_COMPRESSED_V1",
    169: "WRITE_ROWS_COMPRESSED", 170: "UPDATE_ROWS_COMPRESSED",
    171: "DELETE_ROWS_COMPRESSED",
}  # fmt: skip


def type_name(code: int) -> str:
    return TYPE_NAMES.get(code, f"UNKNOWN_{code}")


@dataclass(frozen=True)
class ToolName:
    """A name a tool prints for an event: the canonical family and every type code that
    the tool prints under that name."""

    name: str
    family: str
    codes: frozenset[int]
    note: str = ""


def _tn(name: str, family: str, codes: Iterable[int], note: str = "") -> ToolName:
    return ToolName(name, family, frozenset(codes), note)


# Names are matched case-sensitively as a prefix of the description, longest first.
# Collected from the corpus run and from the tools' sources (log_event_client.cc /
# log_event.cc print() methods).
TOOL_NAMES: dict[str, list[ToolName]] = {
    MARIADB_BINLOG: [
        _tn("Start", "FORMAT_DESCRIPTION", [1, 15], "'Start: binlog v N': v4 = FDE (15), else 1"),
        _tn("Query_compressed", "QUERY_COMPRESSED", [165]),
        _tn("Query", "QUERY", [2, 6, 8, 12],
            "LOAD/NEW_LOAD print as Query, and so does a CREATE_FILE re-printed after EXEC_LOAD"),
        _tn("Stop", "STOP", [3]),
        _tn("Rotate", "ROTATE", [4], "'Rotate to <file>  pos: N'"),
        _tn("Intvar", "INTVAR", [5]),
        _tn("Create_file", "CREATE_FILE", [8]),
        _tn("Append_block", "APPEND_BLOCK", [9], "printed on the line after '# Event:'"),
        _tn("Exec_load", "EXEC_LOAD", [10]),
        _tn("Delete_file", "DELETE_FILE", [11]),
        _tn("Rand", "RAND", [13]),
        _tn("User_var", "USER_VAR", [14]),
        _tn("Xid", "XID", [16], "'Xid = N'"),
        _tn("Begin_load_query", "BEGIN_LOAD_QUERY", [17]),
        _tn("Execute_load_query", "EXECUTE_LOAD_QUERY", [18]),
        _tn("Table_map", "TABLE_MAP", [19]),
        _tn("Write_rows_old", "PRE_GA_WRITE_ROWS", [20]),
        _tn("Update_rows_old", "PRE_GA_UPDATE_ROWS", [21]),
        _tn("Delete_rows_old", "PRE_GA_DELETE_ROWS", [22]),
        _tn("Write_compressed_rows", "WRITE_ROWS_COMPRESSED", [166, 169]),
        _tn("Update_compressed_rows", "UPDATE_ROWS_COMPRESSED", [167, 170]),
        _tn("Delete_compressed_rows", "DELETE_ROWS_COMPRESSED", [168, 171]),
        _tn("Write_rows", "WRITE_ROWS", [23, 30], "v1 and v2 look the same"),
        _tn("Update_rows", "UPDATE_ROWS", [24, 31], "v1 and v2 look the same"),
        _tn("Delete_rows", "DELETE_ROWS", [25, 32], "v1 and v2 look the same"),
        _tn("Incident", "INCIDENT", [26]),
        _tn("Ignorable", "IGNORABLE", [28, 29, 33, 34, 35, 36, 37, 39, 40],
            "MySQL events with LOG_EVENT_IGNORABLE_F; the code is on the next line: "
            "'# Ignorable event type N (MySQL ...)'"),
        _tn("GTID", "MARIADB_GTID", [162], "'GTID D-S-N [cid=..]'"),
        _tn("XID", "XA_PREPARE", [38], "'XID = X'..',X'..',N' (XA PREPARE of MariaDB/MySQL)"),
        _tn("Gtid list", "GTID_LIST", [163]),
        _tn("Binlog checkpoint", "BINLOG_CHECKPOINT", [161]),
        _tn("Annotate_rows", "ANNOTATE_ROWS", [160], "query on following '#Q> ' lines"),
        _tn("Encryption scheme", "START_ENCRYPTION", [164], "no header line at all"),
        _tn("Encrypted event", "ENCRYPTED", [], "no header line; any code"),
        _tn("Unknown event", "UNKNOWN", [], "--force-read; any code the tool can't parse"),
    ],
    MYSQLBINLOG: [
        _tn("Start", "FORMAT_DESCRIPTION", [15], "'Start: binlog v 4'"),
        _tn("Query", "QUERY", [2]),
        _tn("Stop", "STOP", [3]),
        _tn("Rotate", "ROTATE", [4], "'Rotate to <file>  pos: N'"),
        _tn("Intvar", "INTVAR", [5]),
        _tn("Append_block", "APPEND_BLOCK", [9]),
        _tn("Delete_file", "DELETE_FILE", [11]),
        _tn("Rand", "RAND", [13]),
        _tn("User_var", "USER_VAR", [14]),
        _tn("Xid", "XID", [16], "'Xid = N'"),
        _tn("Begin_load_query", "BEGIN_LOAD_QUERY", [17]),
        _tn("Execute_load_query", "EXECUTE_LOAD_QUERY", [18]),
        _tn("Table_map", "TABLE_MAP", [19]),
        _tn("Update_rows_partial", "PARTIAL_UPDATE_ROWS", [39]),
        _tn("Write_rows", "WRITE_ROWS", [23, 30], "v1 and v2 look the same"),
        _tn("Update_rows", "UPDATE_ROWS", [24, 31], "v1 and v2 look the same"),
        _tn("Delete_rows", "DELETE_ROWS", [25, 32], "v1 and v2 look the same"),
        _tn("Incident", "INCIDENT", [26]),
        _tn("Ignorable", "IGNORABLE", [28]),
        _tn("Rows_query", "ROWS_QUERY", [29]),
        _tn("Anonymous_GTID", "ANONYMOUS_GTID", [34]),
        _tn("GTID", "GTID", [33, 42], "tagged GTIDs (42) print as 'GTID' too"),
        _tn("Previous-GTIDs", "PREVIOUS_GTIDS", [35]),
        _tn("Transaction_context", "TRANSACTION_CONTEXT", [36]),
        _tn("View_change", "VIEW_CHANGE", [37]),
        _tn("XA PREPARE", "XA_PREPARE", [38], "'XA PREPARE <xid>'"),
        _tn("XA COMMIT", "XA_PREPARE", [38], "one-phase: 'XA COMMIT <xid> ONE PHASE'"),
        _tn("Transaction_Payload", "TRANSACTION_PAYLOAD", [40]),
        _tn("Unknown event", "UNKNOWN", []),
    ],
}  # fmt: skip
for _names in TOOL_NAMES.values():
    _names.sort(key=lambda t: -len(t.name))


def lookup_name(tool: str, description: str) -> ToolName | None:
    for tn in TOOL_NAMES[tool]:
        if description.startswith(tn.name):
            rest = description[len(tn.name) : len(tn.name) + 1]
            if rest == "" or not (rest.isalnum() or rest == "_"):
                return tn
    return None


# --------------------------------------------------------------------------------------
# Parsed output
# --------------------------------------------------------------------------------------


@dataclass
class RefEvent:
    """One event as the tool printed it.

    ``type_code`` is read from the file at ``pos`` for outer events (the tool's hexdump
    shows its *internal* buffer: mariadb-binlog dumps compressed row events decompressed,
    as type 23-25); for inner events it comes from mysqlbinlog's hexdump; failing both,
    from an 'Ignorable event type N' line or from the name when the name has one code.
    The tool's own opinion is ``tool_name`` / ``possible_codes`` / ``hex_type_code``.
    """

    pos: int | None  # from '# at N' (inner: as mysqlbinlog prints it); None for re-prints
    end_log_pos: int | None
    tool_name: str  # as printed: 'Query', 'Write_rows', 'Gtid list'; '' for silent events
    description: str  # the whole description text the tool printed
    canonical: str  # TYPE_NAMES[type_code] when the code is known, else the name's family
    type_code: int | None
    type_code_source: str | None  # 'file' | 'hexdump' | 'ignorable' | 'name' | None
    possible_codes: frozenset[int] = frozenset()  # codes the tool prints under this name
    size: int | None = None  # event length (file header for outer events, else hexdump)
    hex_type_code: int | None = None  # from the tool's hexdump header row
    hex_size: int | None = None
    hex_pos: int | None = None  # position in the hexdump (mariadb-binlog's is unreliable)
    server_id: int | None = None
    timestamp: str | None = None  # as printed: 'YYMMDD HH:MM:SS'
    crc32: str | None = None  # as printed: '0x1234abcd'
    inner: bool = False  # printed from inside a TRANSACTION_PAYLOAD
    silent: bool = False  # the tool printed '# at N' and then nothing for this event
    reprint_of: int | None = None  # printed again with no '# at' (pos is None then)
    query: str | None = None  # QUERY (and LOAD) events: the SQL exactly as printed
    annotation: str | None = None  # ANNOTATE_ROWS ('#Q> ') / ROWS_QUERY text
    body: tuple[str, ...] = field(default=(), repr=False)  # lines after the description

    @property
    def query_bytes(self) -> bytes | None:
        """The query as bytes (output is decoded with surrogateescape, so this is exact)."""
        return None if self.query is None else self.query.encode("utf-8", "surrogateescape")


@dataclass
class RefResult:
    path: Path
    tool: str
    argv: list[str]
    returncode: int | None
    stderr: str
    events: list[RefEvent]
    errors: list[str]  # 'ERROR: ...' lines (stdout and stderr)
    warnings: list[str]  # 'WARNING: ...' lines and other stderr lines
    error_offset: int | None  # from 'Could not read entry at offset N'
    end_of_log: bool  # the tool printed '# End of log file'
    dangling: list[int]  # '# at N' with no event printed after it
    looped_at: int | None = None  # --force-read looped here; decoded again without it
    timed_out: bool = False
    force_read: bool = True
    elapsed: float = 0.0
    raw_output: str = field(default="", repr=False)

    @property
    def outer(self) -> list[RefEvent]:
        return [e for e in self.events if not e.inner]

    @property
    def inner(self) -> list[RefEvent]:
        return [e for e in self.events if e.inner]

    @property
    def positions(self) -> list[int]:
        return [e.pos for e in self.outer if e.pos is not None]

    @property
    def clean(self) -> bool:
        """The tool read the whole file without complaint."""
        return (
            self.returncode == 0
            and not self.errors
            and self.end_of_log
            and self.looped_at is None
            and not self.timed_out
            and not self.dangling
            and not any(e.tool_name in ("Unknown event", "Encrypted event") for e in self.events)
        )

    @property
    def stopped_at(self) -> int | None:
        """Where the tool gave up, if it did."""
        if self.error_offset is not None:
            return self.error_offset
        if self.dangling:
            return self.dangling[0]
        if self.looped_at is not None:
            return self.looped_at
        return None

    @property
    def first_error(self) -> str | None:
        if self.errors:
            return self.errors[0]
        for line in self.stderr.splitlines():
            if line.strip():
                return line.strip()
        return None


# --------------------------------------------------------------------------------------
# Output parser
# --------------------------------------------------------------------------------------

_AT_RE = re.compile(r"^# at (\d+)\s*$")
_HEADER_RE = re.compile(
    r"^#(\d{6}) +(\d{1,2}:\d{2}:\d{2}) server id (\d+)\s+end_log_pos (\d+)"
    r"(?: CRC32 (0x[0-9a-fA-F]+))?(.*)$"
)
_HEX_TITLE_RE = re.compile(r"^#\s+\|Timestamp")  # mariadb-binlog's column titles
_HEX_ROW_RE = re.compile(r"^#\s+[0-9a-f]+\s+\|?[0-9a-f]{2}(\s|$)")
_IGNORABLE_RE = re.compile(r"^# Ignorable event type (\d+)")
_OFFSET_RE = re.compile(r"at offset (\d+)")
_START_V_RE = re.compile(r"binlog v (\d+)")
_SETUP_START = ("use ", "SET ", "/*!", "/*M!")


def _parse_hex_header(line: str) -> tuple[int, int, int] | None:
    """(position, type code, event size) from a hexdump header row of either tool."""
    toks = line[1:].replace("|", " ").split()
    if len(toks) < 14:
        return None
    try:
        vals = [int(t, 16) for t in toks[:14]]
    except ValueError:
        return None
    if any(v > 0xFF for v in vals[1:14]):
        return None
    size = vals[10] | vals[11] << 8 | vals[12] << 16 | vals[13] << 24
    return vals[0], vals[5], size


def extract_query(body: Sequence[str]) -> str | None:
    """The statement of a Query event from the lines the tool printed after its header.

    The tool prints session-setup lines (``use `db```, ``SET TIMESTAMP=..``,
    ``SET @@session...``, ``/*!\\C utf8mb4 */``), each ending in the delimiter on the
    same line, then the statement, then a newline and the delimiter on a line of its own.
    """
    lines = list(body)
    end = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i] == DELIMITER:
            end = i
            break
    if end is None:
        return None
    start = 0
    while start < end:
        ln = lines[start]
        if ln.startswith("#") or (
            ln.endswith(DELIMITER) and ln != DELIMITER and ln.startswith(_SETUP_START)
        ):
            start += 1
            continue
        break
    return "\n".join(lines[start:end])


def _annotation(tool: str, body: Sequence[str]) -> str | None:
    if tool == MARIADB_BINLOG:
        got = [ln[4:] for ln in body if ln.startswith("#Q> ")]
    else:
        got = [ln[2:] for ln in body if ln.startswith("# ") and not ln.startswith("###")]
    return "\n".join(got) if got else None


@dataclass
class _Slot:
    """One '# at N' line."""

    pos: int
    inner: bool
    order: int
    taken: bool = False


@dataclass
class _Pending:
    """An event being read: header fields, hexdump fields, description, body."""

    inner: bool
    order: float
    desc: str = ""
    timestamp: str | None = None
    server_id: int | None = None
    end_log_pos: int | None = None
    crc32: str | None = None
    hex_pos: int | None = None
    hex_code: int | None = None
    hex_size: int | None = None
    headerless: bool = False
    body: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, tool: str, file_bytes: bytes | None) -> None:
        self.tool = tool
        fb = file_bytes if file_bytes is not None and file_bytes[:4] == b"\xfebin" else None
        self.file_bytes = fb
        self.slots: list[_Slot] = []
        self.done: list[tuple[float, RefEvent]] = []
        self.inner = False
        self.end_of_log = False
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.state = "out"  # out | desc | desc2 | body
        self.expect_hex_header = False
        self.cur: _Pending | None = None

    # -- file side
    def _file_event(self, pos: int) -> tuple[int, int, int] | None:
        """(type, length, log_pos) of the event header at ``pos`` in the file."""
        fb = self.file_bytes
        if fb is None or pos < 4 or pos + 17 > len(fb):
            return None
        typ = fb[pos + 4]
        length = int.from_bytes(fb[pos + 9 : pos + 13], "little")
        log_pos = int.from_bytes(fb[pos + 13 : pos + 17], "little")
        return typ, length, log_pos

    # -- slots
    def _pending_slots(self) -> list[_Slot]:
        return [s for s in self.slots if not s.taken and s.inner == self.inner]

    def _file_match(self, slot: _Slot, end_log_pos: int) -> bool:
        fe = self._file_event(slot.pos)
        return fe is not None and end_log_pos in (fe[2], slot.pos + fe[1])

    def _take_slot(self, ev: _Pending) -> _Slot | None:
        cands = [s for s in self.slots if not s.taken and s.inner == ev.inner]
        if not cands:
            return None
        chosen: _Slot | None = None
        if ev.headerless:
            chosen = cands[-1]
        if chosen is None and not ev.inner and ev.end_log_pos is not None:
            chosen = next((s for s in cands if self._file_match(s, ev.end_log_pos)), None)
        # mysqlbinlog's hexdump shows the event's position; mariadb-binlog's shows the
        # last '# at' (wrong for a held-back ANNOTATE_ROWS), so it is not used there.
        if chosen is None and ev.hex_pos is not None and self.tool == MYSQLBINLOG:
            chosen = next((s for s in cands if s.pos == ev.hex_pos), None)
        if chosen is None:
            # mariadb-binlog prints a held-back ANNOTATE_ROWS after the next '# at';
            # mysqlbinlog prints '# at' for events it then prints nothing for.
            chosen = cands[0] if self.tool == MARIADB_BINLOG else cands[-1]
        chosen.taken = True
        return chosen

    def _reprint_of(self, ev: _Pending) -> int | None:
        """mariadb-binlog prints a LOAD's CREATE_FILE again (as 'Query') after EXEC_LOAD,
        with no '# at': find the original by its end_log_pos."""
        if ev.inner or ev.end_log_pos is None:
            return None
        for s in self.slots:
            if s.taken and not s.inner and self._file_match(s, ev.end_log_pos):
                return s.pos
        return None

    # -- events
    def _open(self, **kw: object) -> None:
        self._close()
        order = self.slots[-1].order + 0.5 if self.slots else -0.5
        self.cur = _Pending(inner=self.inner, order=order)
        for k, v in kw.items():
            setattr(self.cur, k, v)

    def _make_event(
        self, ev: _Pending | None, slot: _Slot | None, silent: bool = False
    ) -> RefEvent:
        desc = ev.desc if ev is not None else ""
        body = tuple(ev.body) if ev is not None else ()
        inner = ev.inner if ev is not None else bool(slot and slot.inner)
        pos = slot.pos if slot is not None else None
        tn = lookup_name(self.tool, desc) if desc else None
        if tn is not None:
            name = tn.name
        elif desc:
            m = re.match(r"[A-Za-z][A-Za-z_\- ]*[A-Za-z]", desc)
            name = m.group(0) if m else desc.split()[0]
        else:
            name = ""
        fe = None
        if pos is not None and not inner and name != "Encrypted event":
            fe = self._file_event(pos)
        hex_code = ev.hex_code if ev is not None else None
        code: int | None = None
        source: str | None = None
        if fe is not None:
            code, source = fe[0], "file"
        elif hex_code is not None:
            code, source = hex_code, "hexdump"
        elif name == "Ignorable":
            for ln in body:
                mi = _IGNORABLE_RE.match(ln)
                if mi:
                    code, source = int(mi.group(1)), "ignorable"
                    break
        if code is None and tn is not None and len(tn.codes) == 1:
            code, source = next(iter(tn.codes)), "name"
        if code is None and name == "Start":
            ms = _START_V_RE.search(desc)
            if ms:
                code, source = (15 if int(ms.group(1)) >= 4 else 1), "name"
        if code is not None:
            canonical = type_name(code)
        elif tn is not None:
            canonical = tn.family
        elif name:
            canonical = name.upper().replace(" ", "_").replace("-", "_")
        else:
            canonical = "UNKNOWN"
        query = extract_query(body) if name in ("Query", "Execute_load_query") else None
        annotation = None
        if name in ("Annotate_rows", "Rows_query"):
            annotation = _annotation(self.tool, body)
        return RefEvent(
            pos=pos,
            end_log_pos=ev.end_log_pos if ev is not None else None,
            tool_name=name,
            description=desc,
            canonical=canonical,
            type_code=code,
            type_code_source=source,
            possible_codes=tn.codes if tn is not None else frozenset(),
            size=fe[1] if fe is not None else (ev.hex_size if ev is not None else None),
            hex_type_code=hex_code,
            hex_size=ev.hex_size if ev is not None else None,
            hex_pos=ev.hex_pos if ev is not None else None,
            server_id=ev.server_id if ev is not None else None,
            timestamp=ev.timestamp if ev is not None else None,
            crc32=ev.crc32 if ev is not None else None,
            inner=inner,
            silent=silent,
            query=query,
            annotation=annotation,
            body=body,
        )

    def _close(self) -> None:
        ev = self.cur
        if ev is None:
            return
        self.cur = None
        slot = self._take_slot(ev)
        order = slot.order if slot is not None else ev.order
        made = self._make_event(ev, slot)
        if slot is None:
            made.reprint_of = self._reprint_of(ev)
        self.done.append((order, made))

    # -- lines
    def feed(self, line: str) -> None:
        m = _AT_RE.match(line)
        if m:
            self._close()
            self.state = "out"
            self.slots.append(_Slot(int(m.group(1)), self.inner, len(self.slots)))
            return
        m = _HEADER_RE.match(line)
        if m:
            rest = m.group(6).strip(" \t")
            self._open(
                timestamp=f"{m.group(1)} {m.group(2)}",
                server_id=int(m.group(3)),
                end_log_pos=int(m.group(4)),
                crc32=m.group(5),
                desc=rest,
            )
            self.state = "body" if rest else "desc"
            self.expect_hex_header = False
            return
        if line == "# Encrypted event" or (
            line.startswith("# Encryption scheme:") and self._pending_slots()
        ):
            self._open(desc=line[2:], headerless=True)
            self.state = "body"
            return
        if line == "# Start of compressed events.":
            self._close()
            self.state = "out"
            self.inner = True
            return
        if line == "# End of compressed events.":
            self._close()
            self.state = "out"
            self.inner = False
            return
        if line == "DELIMITER ;":
            self._close()
            self.state = "out"
            return
        if line == "# End of log file":
            self._close()
            self.state = "out"
            self.end_of_log = True
            return
        if line.startswith("ERROR:"):
            self.errors.append(line)
            return
        if line.startswith("WARNING:"):
            self.warnings.append(line)
            return
        if self.cur is None:
            return
        if self.state == "desc":
            self._feed_desc(self.cur, line)
        elif self.state == "desc2":
            if line.startswith("#"):
                self.cur.desc = line.lstrip("#").strip()
            else:
                self.cur.body.append(line)
            self.state = "body"
        elif self.state == "body":
            self.cur.body.append(line)

    def _feed_desc(self, cur: _Pending, line: str) -> None:
        if line == "# Position" or line.startswith("# Position "):
            self.expect_hex_header = True
            return
        if _HEX_TITLE_RE.match(line):
            self.expect_hex_header = True
            return
        if line.rstrip() == "#":
            self.expect_hex_header = False
            return
        if line.startswith("# Event:"):
            desc = line[len("# Event:") :].strip(" \t")
            if desc:
                cur.desc = desc
                self.state = "body"
            else:
                self.state = "desc2"
            return
        if line.startswith("# \t"):
            cur.desc = line[3:].strip(" \t")
            self.state = "body"
            return
        if _HEX_ROW_RE.match(line):
            if self.expect_hex_header:
                hdr = _parse_hex_header(line)
                if hdr is not None:
                    cur.hex_pos, cur.hex_code, cur.hex_size = hdr
                self.expect_hex_header = False
            return
        # no hexdump (or a format we don't know): the first other line is the description
        if line.startswith("#"):
            cur.desc = line.lstrip("#").strip()
        else:
            cur.body.append(line)
        self.state = "body"

    def finish(self) -> tuple[list[RefEvent], list[int]]:
        self._close()
        for s in self.slots:
            if not s.taken:
                self.done.append((s.order, self._make_event(None, s, silent=True)))
        self.done.sort(key=lambda x: x[0])
        events = [e for _, e in self.done]
        return events, _dangling(events, bool(self.errors), self.end_of_log)


def _dangling(events: Sequence[RefEvent], failed: bool, end_of_log: bool) -> list[int]:
    """'# at N' lines at the very end that the tool printed nothing for, when it did not
    finish cleanly: where it stopped."""
    out: list[int] = []
    if failed or not end_of_log:
        for e in reversed(events):
            if not e.silent or e.pos is None:
                break
            out.insert(0, e.pos)
    return out


def parse_output(
    text: str | Iterable[str], tool: str, file_bytes: bytes | None = None
) -> tuple[list[RefEvent], list[str], list[str], bool, list[int]]:
    """Parse a tool's stdout: (events, errors, warnings, end_of_log, dangling positions)."""
    p = _Parser(tool, file_bytes)
    lines = text.split("\n") if isinstance(text, str) else text
    for line in lines:
        p.feed(line.rstrip("\n"))
    events, dangling = p.finish()
    return events, p.errors, p.warnings, p.end_of_log, dangling


# --------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------


def choose_tool(flavor: str | None, major: object) -> str:
    """mysqlbinlog for MySQL 8.0+ (and MySQL of unknown version), else mariadb-binlog."""
    if flavor != "mysql":
        return MARIADB_BINLOG
    if major is None:
        return MYSQLBINLOG
    first = major[0] if isinstance(major, tuple) else major
    return MYSQLBINLOG if isinstance(first, int) and first >= 8 else MARIADB_BINLOG


def _options(tool: str, force_read: bool, hexdump: bool) -> list[str]:
    opts = ["--force-if-open", "--base64-output=decode-rows"]
    if hexdump:
        opts.append("--hexdump")
    if force_read:
        opts.append("--force-read")
    if tool == MARIADB_BINLOG:
        opts.append("--skip-gtid-strict-mode")
    return opts


@dataclass
class _Run:
    returncode: int | None
    lines: list[str]
    stderr: str
    looped_at: int | None
    timed_out: bool
    truncated_output: bool


def _stream(argv: list[str], timeout: float, max_bytes: int, loop_limit: int) -> _Run:
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
        assert proc.stdout is not None
        timed_out = threading.Event()

        def _kill() -> None:
            if proc.poll() is None:
                timed_out.set()
                proc.kill()

        timer = threading.Timer(timeout, _kill)
        timer.start()
        lines: list[str] = []
        total = 0
        looped_at: int | None = None
        truncated = False
        last_at: int | None = None
        repeats = 0
        inner = False
        try:
            for raw in proc.stdout:
                total += len(raw)
                line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
                lines.append(line)
                if line.startswith("# Start of compressed events"):
                    inner = True
                elif line.startswith("# End of compressed events"):
                    inner = False
                elif not inner and line.startswith("# at "):
                    m = _AT_RE.match(line)
                    if m:
                        n = int(m.group(1))
                        repeats = repeats + 1 if n == last_at else 0
                        last_at = n
                        if repeats >= loop_limit:
                            looped_at = n
                            proc.kill()
                            break
                if total > max_bytes:
                    truncated = True
                    proc.kill()
                    break
        finally:
            proc.stdout.close()
            rc = proc.wait()
            timer.cancel()
        errf.seek(0)
        stderr = errf.read().decode("utf-8", "replace")
    return _Run(rc, lines, stderr, looped_at, timed_out.is_set(), truncated)


def reference_events(
    path: str | os.PathLike[str],
    flavor_major: tuple[str | None, object] = ("mariadb", None),
    *,
    tool: str | None = None,
    hexdump: bool = True,
    force_read: bool = True,
    verbose: int = 0,
    timeout: float = 60.0,
    max_output_bytes: int = 512 << 20,
) -> RefResult:
    """Decode ``path`` with the server's own decoder and parse its output.

    ``flavor_major`` is ``(flavor, major)`` as in ``corpus.CorpusFile.flavor_major``:
    ``("mysql", (8, 0))``, ``("mariadb", (10, 6))``, ``("mysql", None)``...  ``tool``
    forces ``"mysqlbinlog"`` or ``"mariadb-binlog"``.  ``verbose`` adds ``-v`` flags
    (mysqlbinlog prints ROWS_QUERY events only with ``-vv``; the ``###`` row dumps are
    ignored; mariadb-binlog ``-v`` stops early on some MySQL 8 row events).  The text of
    LOAD DATA statements names a temporary file the tool wrote: ``--local-load`` points
    at a private directory (removed afterwards) that is shown as ``/tmp`` in the text.
    """
    src = Path(path)
    flavor, major = flavor_major
    tool = tool or choose_tool(flavor, major)
    try:
        file_bytes: bytes | None = src.read_bytes()
    except OSError:
        file_bytes = None
    t0 = time.monotonic()
    # Both tools write the data of LOAD DATA events to SQL_LOAD_MB-* files in
    # --local-load (default /tmp) and leave them there: give them a private directory.
    if tool == MYSQLBINLOG:
        root = sid_root()
        (root / "tmp").mkdir(exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix="binlogkit-ref-", dir=root / "tmp"))
    elif tool == MARIADB_BINLOG:
        tmpdir = Path(tempfile.mkdtemp(prefix="binlogkit-ref-"))
    else:
        raise ValueError(f"unknown tool {tool!r}")
    try:
        load_dir = tmpdir / "load"
        load_dir.mkdir()
        if tool == MYSQLBINLOG:
            inside = tmpdir / src.name
            shutil.copyfile(src, inside)
            target = "/" + inside.relative_to(root).as_posix()
            local_load = "/" + load_dir.relative_to(root).as_posix()
            base = ["chroot", str(root), "/usr/bin/mysqlbinlog", "--no-defaults"]
        else:
            exe = mariadb_binlog_path()
            if exe is None:
                raise FileNotFoundError("mariadb-binlog not found")
            target = str(src)
            local_load = str(load_dir)
            base = [exe, "--no-defaults"]  # must come first
        base += ["--local-load=" + local_load] + ["-v"] * verbose
        loop_limit = 20
        argv = base + _options(tool, force_read, hexdump) + [target]
        run = _stream(argv, timeout, max_output_bytes, loop_limit)
        looped_at = run.looped_at
        used_force = force_read
        if looped_at is not None and force_read:
            used_force = False
            argv = base + _options(tool, False, hexdump) + [target]
            run = _stream(argv, timeout, max_output_bytes, loop_limit)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    lines = run.lines
    if any("SQL_LOAD_MB-" in ln for ln in lines):
        # make LOAD DATA text independent of the private directory: what the tool prints
        # with its default --local-load=/tmp (and a /tmp with no SQL_LOAD_MB-* files yet)
        lines = [ln.replace(local_load + "/", "/tmp/") for ln in lines]
    events, errors, warnings, end_of_log, dangling = parse_output(lines, tool, file_bytes)
    for line in run.stderr.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("ERROR"):
            errors.append(s)
        else:
            warnings.append(s)
    dangling = _dangling(events, bool(errors) or run.returncode != 0, end_of_log)
    error_offset = None
    for e in errors:
        m = _OFFSET_RE.search(e)
        if m:
            error_offset = int(m.group(1))
            break
    return RefResult(
        path=src,
        tool=tool,
        argv=argv,
        returncode=run.returncode,
        stderr=run.stderr,
        events=events,
        errors=errors,
        warnings=warnings,
        error_offset=error_offset,
        end_of_log=end_of_log,
        dangling=dangling,
        looped_at=looped_at,
        timed_out=run.timed_out or run.truncated_output,
        force_read=used_force,
        elapsed=time.monotonic() - t0,
        raw_output="\n".join(lines),
    )


# --------------------------------------------------------------------------------------
# Whole-corpus report
# --------------------------------------------------------------------------------------


def check_positions(res: RefResult) -> list[str]:
    """Self-consistency of a result: outer positions strictly increase, each outer event
    ends where the next one starts (sizes from the file), and the type code is one the
    tool prints under that name (validates TOOL_NAMES)."""
    problems: list[str] = []
    outer = [e for e in res.outer if e.pos is not None]
    for a, b in zip(outer, outer[1:], strict=False):
        assert a.pos is not None and b.pos is not None
        if b.pos <= a.pos:
            problems.append(f"position {b.pos} after {a.pos}")
        elif a.size is not None and a.pos + a.size != b.pos:
            problems.append(f"event at {a.pos} size {a.size} but next at {b.pos}")
    for e in res.events:
        if e.possible_codes and e.type_code is not None and e.type_code not in e.possible_codes:
            problems.append(f"{e.tool_name!r} at {e.pos} has type {e.type_code}")
    return problems


def _main(argv: list[str]) -> int:
    import argparse
    import json
    from concurrent.futures import ThreadPoolExecutor

    from corpus import CorpusFile, find_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--both", action="store_true", help="also run the other tool on every file")
    ap.add_argument("--json", help="write per-file results here")
    ap.add_argument("--jobs", type=int, default=min(16, (os.cpu_count() or 4) * 2))
    ap.add_argument("--no-hexdump", action="store_true")
    args = ap.parse_args(argv)

    corpus = find_corpus()

    def assigned(cf: CorpusFile) -> str:
        flavor = cf.flavor or ("mysql" if cf.origin == "mysql-testsuite" else None)
        return choose_tool(flavor, cf.major)

    jobs: list[tuple[CorpusFile, str]] = []
    for cf in corpus:
        t = assigned(cf)
        jobs.append((cf, t))
        if args.both:
            jobs.append((cf, MYSQLBINLOG if t == MARIADB_BINLOG else MARIADB_BINLOG))

    def run(job: tuple[CorpusFile, str]) -> tuple[CorpusFile, str, RefResult]:
        cf, t = job
        return (
            cf,
            t,
            reference_events(cf.path, cf.flavor_major, tool=t, hexdump=not args.no_hexdump),
        )

    t0 = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(run, jobs))
    wall = time.monotonic() - t0

    out: list[dict[str, object]] = []
    names: dict[str, dict[str, set[str]]] = {MYSQLBINLOG: {}, MARIADB_BINLOG: {}}
    for scope in ("assigned", "cross"):
        rows = [(cf, t, r) for cf, t, r in results if (t == assigned(cf)) == (scope == "assigned")]
        if not rows:
            continue
        print(f"=== {scope}: {len(rows)} runs")
        for tool in (MARIADB_BINLOG, MYSQLBINLOG):
            mine = [x for x in rows if x[1] == tool]
            clean = [x for x in mine if x[2].clean]
            print(f"  {tool}: {len(mine)} files, {len(clean)} clean")
            for cf, _t, r in mine:
                probs = check_positions(r)
                if r.clean and not probs:
                    continue
                what = r.first_error or ""
                if r.looped_at is not None:
                    what = f"looped at {r.looped_at} with --force-read; then: {what}"
                flags = []
                if r.dangling:
                    flags.append(f"dangling {r.dangling}")
                unk = [e.pos for e in r.events if e.tool_name == "Unknown event"]
                enc = [e.pos for e in r.events if e.tool_name == "Encrypted event"]
                if unk:
                    flags.append(f"Unknown event at {unk}")
                if enc:
                    flags.append(f"{len(enc)} Encrypted events")
                if not r.end_of_log:
                    flags.append("no '# End of log file'")
                flags += probs
                print(
                    f"    {cf.short}: rc={r.returncode} events={len(r.events)} "
                    f"stopped_at={r.stopped_at} {what[:160]} {'; '.join(flags)}"
                )
    for cf, t, r in results:
        for e in r.events:
            names[t].setdefault(e.tool_name, set()).add(e.canonical)
        out.append(
            {
                "path": str(cf.path),
                "tool": t,
                "assigned": t == assigned(cf),
                "returncode": r.returncode,
                "clean": r.clean,
                "events": len(r.events),
                "inner": len(r.inner),
                "errors": r.errors,
                "stopped_at": r.stopped_at,
                "looped_at": r.looped_at,
                "elapsed": round(r.elapsed, 3),
            }
        )
    print("=== names seen (tool name -> canonical names)")
    for tool, d in names.items():
        print(f"  {tool}:")
        for n in sorted(d):
            print(f"    {n!r:28} -> {', '.join(sorted(d[n]))}")
    print(f"=== {len(results)} runs in {wall:.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
