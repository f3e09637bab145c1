"""The replica protocol (binlogkit.protocol) against live servers, and its
sans-I/O parts on scripted bytes.

Live: what a dump streams equals the server's own binlog files byte for byte
(from a position and from GTIDs, across rotations, compressed events, events
over 16 MB, with and without CRC32); heartbeats; a blocking stream that
survives a SIGKILL and restart of its server; clear errors that are not
retried. Units: packet framing, dump packets, resume points over the fixture
files, and the driver's replay of an unfinished transaction after a reconnect.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binlogkit.codec.types import LOG_EVENT_BINLOG_IN_USE_F, ROWS_EVENTS
from binlogkit.codec.types import EventType as T
from binlogkit.gtid import GtidSet, MariadbGtidPos, MariadbGtidState
from binlogkit.io.reader import BinlogReader
from binlogkit.lab import Server, start_server, unavailable_reason
from binlogkit.protocol.blocking import (
    BinlogStream,
    ConnectError,
    ConnectionLost,
    Discard,
)
from binlogkit.protocol.packets import MAX_PAYLOAD, PacketReader, ProtocolError, frame
from binlogkit.protocol.replica import (
    END,
    NEED_DATA,
    ReplicaProtocol,
    Start,
    StreamError,
    StreamEvent,
)
from binlogkit.replay.transactions import read_transactions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FDE_CODE, ROTATE_CODE = 15, 4
BIG = 20 << 20  # one 20 MB row: its event needs split packets (>= 2^24-1)
PACKET = 64 << 20
ARTIFICIAL = {"ROTATE", "FORMAT_DESCRIPTION", "GTID_LIST", "HEARTBEAT", "HEARTBEAT_V2"}
GTID_TYPES = {"GTID", "GTID_TAGGED", "ANONYMOUS_GTID", "MARIADB_GTID"}


# --------------------------------------------------------------------- helpers


def file_events(path: Path) -> list[tuple[int, bytes]]:
    """(offset, bytes) of every event of a binlog file, framed by event_size."""
    data = path.read_bytes()
    assert data[:4] == b"\xfebin", path
    out, pos = [], 4
    while pos + 19 <= len(data):
        n = int.from_bytes(data[pos + 9:pos + 13], "little")
        if pos + n > len(data):
            break  # the server is still writing it
        out.append((pos, data[pos:pos + n]))
        pos += n
    return out


def in_use_clear(raw: bytes) -> bytes:
    """``raw`` with an FDE's in-use flag cleared (its CRC32 is computed without it)."""
    if len(raw) > 19 and raw[4] == FDE_CODE:
        return raw[:17] + bytes([raw[17] & ~LOG_EVENT_BINLOG_IN_USE_F & 0xFF]) + raw[18:]
    return raw


def digest(items: list[tuple[str, int, bytes]]) -> list[tuple[str, int, int, str]]:
    """Comparable without pytest diffing 20 MB byte strings."""
    return [(f, p, len(r), hashlib.sha1(in_use_clear(r)).hexdigest()) for f, p, r in items]


def expected_from(srv: Server, file: str, pos: int = 4) -> list[tuple[str, int, bytes]]:
    """The events of the server's binlog files from ``file``:``pos`` on."""
    return [(f.name, p, raw) for f in srv.binlog_files() if f.name >= file
            for p, raw in file_events(f) if (f.name, p) >= (file, pos)]


def streamed(events: list[Any]) -> list[tuple[str, int, bytes]]:
    return [(e.file, e.pos, e.raw) for e in events if isinstance(e, StreamEvent) and e.in_file]


def binlog_status(srv: Server) -> tuple[str, int]:
    for sql in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
        try:
            row = srv.execute(sql)[0]
        except pymysql.err.ProgrammingError:
            continue
        return str(row[0]), int(row[1])
    raise AssertionError("no binlog status")


def settle(srv: Server, timeout: float = 15.0) -> None:
    """Wait for MariaDB's last BINLOG_CHECKPOINT: after a rotation its binlog
    background thread writes one naming the newest file once the engines have
    made the older files' transactions durable, some time after the FLUSH (a
    file compared too early misses it)."""
    if srv.flavor != "mariadb":
        return
    deadline = time.monotonic() + timeout
    while True:
        last = srv.binlog_files()[-1]
        if any(raw[4] == 161 and last.name.encode() in raw[19:] for _, raw in file_events(last)):
            return
        assert time.monotonic() < deadline, f"no BINLOG_CHECKPOINT for {last.name}"
        time.sleep(0.05)


def big_connect(srv: Server) -> Callable[[], Any]:
    return lambda: srv.connect(max_allowed_packet=PACKET)


def stream_all(srv: Server, start: Start, **kw: Any) -> tuple[list[Any], BinlogStream]:
    """A non-blocking dump to the end of the server's last binlog."""
    s = BinlogStream(big_connect(srv), start, blocking=False, reconnect=False, **kw)
    with s:
        items = list(s)
    assert not [i for i in items if isinstance(i, Discard)]
    return items, s


def assert_matches_files(items: list[Any], srv: Server, file: str, pos: int = 4,
                         crashed: frozenset[str] = frozenset()) -> None:
    """The in-file events streamed from ``file``:``pos`` are the files' events
    from there, each once, in order; the artificial ones are of the expected
    kinds. The one difference allowed: the FDE of the active file (or of one
    the server was killed writing, ``crashed``) has the in-use flag on disk,
    never in the stream."""
    got = streamed(items)
    want = expected_from(srv, file, pos)
    assert digest(got) == digest(want)
    active = srv.binlog_files()[-1].name
    for (f, _, raw), (_, _, disk) in zip(got, want, strict=True):
        if raw[4] == FDE_CODE:
            assert not raw[17] & LOG_EVENT_BINLOG_IN_USE_F
        if raw != disk:
            assert raw[4] == FDE_CODE and (f == active or f in crashed), (f, raw[:19].hex())
            assert disk[17] & LOG_EVENT_BINLOG_IN_USE_F
    others = {i.type_name for i in items if isinstance(i, StreamEvent) and not i.in_file}
    assert others <= ARTIFICIAL, others
    # literally: each file after its magic is the streamed events, concatenated
    for path in srv.binlog_files():
        if path.name > file or (path.name == file and pos == 4):
            data = path.read_bytes()
            joined = b"".join(raw for f, _, raw in got if f == path.name)
            assert len(joined) == len(data) - 4
            assert in_use_clear(joined) == in_use_clear(data[4:])


# ------------------------------------------------------ 1. streams == the files

CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "mysql-zstd-crc32": ("mysql", {"binlog_transaction_compression": "ON",
                                   "max_allowed_packet": "64M"}),
    "mysql-nocrc": ("mysql", {"binlog_checksum": "NONE", "max_allowed_packet": "64M"}),
    "mariadb-compressed-crc32": ("mariadb", {"log_bin_compress": "ON",
                                             "log_bin_compress_min_len": 10,
                                             "max_allowed_packet": "64M"}),
    "mariadb-nocrc": ("mariadb", {"binlog_checksum": "NONE", "max_allowed_packet": "64M"}),
}


@dataclass
class Workload:
    srv: Server
    file: str  # the binlog it starts in (fresh: only its header before it)
    gtids: str  # gtid_executed / gtid_binlog_pos before it


def run_workload(srv: Server) -> Workload:
    """DDL, multi-row transactions, a 20 MB row, XA, a foreign server id
    (MariaDB), rotated by FLUSH BINARY LOGS four times."""
    srv.flush_logs()
    file, _ = binlog_status(srv)
    gtids = str(srv.variable("gtid_executed" if srv.flavor == "mysql" else "gtid_binlog_pos"))
    db = f"stream_{uuid.uuid4().hex[:8]}"
    conn = big_connect(srv)()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {db}")
            cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(255), b LONGBLOB)")
            for r in range(3):
                cur.execute("BEGIN")
                for i in range(20):
                    cur.execute(f"INSERT INTO {db}.t VALUES (%s, %s, NULL)",
                                (r * 100 + i, f"row {i} " * i))
                cur.execute(f"UPDATE {db}.t SET v = CONCAT(v, '!') WHERE id % 3 = 0")
                cur.execute(f"DELETE FROM {db}.t WHERE id % 7 = 0")
                cur.execute("COMMIT")
                if r == 1 and srv.flavor == "mariadb":
                    cur.execute("SET SESSION server_id = 2")  # domain 0 gets 0-2-n too
                    cur.execute(f"INSERT INTO {db}.t VALUES (1000, 'other server id', NULL)")
                    cur.execute("SET SESSION server_id = 1")
                cur.execute("FLUSH BINARY LOGS")
            cur.execute(f"INSERT INTO {db}.t VALUES (2000, 'big', %s)", (os.urandom(BIG),))
            for sql in ("XA START 'x1'", f"INSERT INTO {db}.t VALUES (3000, 'xa', NULL)",
                        "XA END 'x1'", "XA PREPARE 'x1'", "XA COMMIT 'x1'"):
                cur.execute(sql)
            cur.execute("FLUSH BINARY LOGS")
            cur.execute(f"INSERT INTO {db}.t VALUES (4000, 'in the active file', NULL)")
    finally:
        conn.close()
    settle(srv)
    return Workload(srv, file, gtids)


@pytest.fixture(scope="module")
def workloads(server_factory: Callable[..., Server]) -> Callable[[str], Workload]:
    done: dict[str, Workload] = {}

    def get(name: str) -> Workload:
        if name not in done:
            flavor, options = CONFIGS[name]
            done[name] = run_workload(server_factory(flavor, **options))
        return done[name]

    return get


def _checks_config(name: str, items: list[Any]) -> None:
    events = [i for i in items if isinstance(i, StreamEvent)]
    types = {e.type_name for e in events}
    assert any(len(e.raw) + 1 > MAX_PAYLOAD for e in events)  # came as split packets
    assert any(e.type_name == "ROTATE" and e.in_file for e in events)
    if name == "mysql-zstd-crc32":
        assert "TRANSACTION_PAYLOAD" in types
    if name == "mariadb-compressed-crc32":
        assert {"QUERY_COMPRESSED", "WRITE_ROWS_COMPRESSED_V1"} <= types
    fde = next(e for e in events if e.type_name == "FORMAT_DESCRIPTION")
    assert fde.event.body.checksum_alg == (0 if "nocrc" in name else 1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stream_from_position_equals_files(name: str, workloads: Callable[[str], Workload]) -> None:
    w = workloads(name)
    items, s = stream_all(w.srv, Start(w.file, 4))
    assert_matches_files(items, w.srv, w.file)
    _checks_config(name, items)
    # the first event names the file (the artificial ROTATE, CRC32 or not)
    first = items[0]
    assert first.type_name == "ROTATE" and not first.in_file
    assert bytes(first.event.body.next_file).decode() == w.file
    # the resume point is the end of the last file; no transaction is open
    last = w.srv.binlog_files()[-1]
    assert s.proto is not None and s.proto.resume_point == (last.name, last.stat().st_size)
    assert not s.proto.in_transaction


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stream_from_gtids_equals_files(name: str, workloads: Callable[[str], Workload]) -> None:
    w = workloads(name)
    items, s = stream_all(w.srv, Start(gtids=w.gtids))
    got = streamed(items)
    # the header events the server sends first are the file's own
    disk = {(f, p): raw for f, p, raw in expected_from(w.srv, w.file)}
    for f, p, raw in got:
        assert in_use_clear(raw) == in_use_clear(disk[(f, p)])
    # from the first transaction the set lacks on, everything, once
    first = next(i for i, e in enumerate(items)
                 if isinstance(e, StreamEvent) and e.in_file and e.type_name in GTID_TYPES)
    start = (items[first].file, items[first].pos)
    want_first = next((f, p) for f, p, raw in expected_from(w.srv, w.file)
                      if raw[4] in (33, 162))  # GTID, MARIADB_GTID
    assert start == want_first
    assert_matches_files(items[first:], w.srv, *start)
    _checks_config(name, items)
    # the GTIDs streamed: the server's
    assert s.proto is not None
    resume = s.proto.resume
    if w.srv.flavor == "mysql":
        assert resume.mysql_gtids == GtidSet.parse(str(w.srv.variable("gtid_executed")))
    else:
        assert str(MariadbGtidPos.parse(resume.mariadb_gtids)) == str(
            MariadbGtidPos.parse(str(w.srv.variable("gtid_binlog_pos"))))
    # and they are a valid start: nothing after them
    again, _ = stream_all(w.srv, resume.start(use_gtids=True))
    assert not [e for e in again if isinstance(e, StreamEvent) and e.in_file
                and e.type_name in GTID_TYPES]


# ------------------------------------------------------------- 2. heartbeats


@pytest.mark.server
@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_heartbeats_while_idle(flavor: str, request: pytest.FixtureRequest) -> None:
    srv: Server = request.getfixturevalue(f"{flavor}_server")
    settle(srv)
    file, pos = binlog_status(srv)
    beats: list[StreamEvent] = []
    t0 = time.monotonic()
    with BinlogStream(srv.connect, Start(file, pos), heartbeat=1.0, reconnect=False) as s:
        for item in s:
            assert isinstance(item, StreamEvent)
            if item.type_name in ("HEARTBEAT", "HEARTBEAT_V2"):
                assert not item.in_file
                beats.append(item)
                if len(beats) == 2:
                    break
            assert time.monotonic() - t0 < 8
    assert 1.0 <= time.monotonic() - t0 < 5
    hb = beats[-1]
    assert (hb.file, hb.event.log_pos) == (file, pos)  # where the source is
    if hb.type_name == "HEARTBEAT":
        assert bytes(hb.event.body.log_file).decode() == file


# ---------------------------------------------------- 3. kill -9 and restart


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Server]]:
    """A server per flavor this module may kill, restart and purge."""
    started: dict[str, Server] = {}

    def get(flavor: str) -> Server:
        if flavor not in started:
            reason = unavailable_reason(flavor)  # type: ignore[arg-type]
            if reason:
                pytest.skip(reason)
            started[flavor] = start_server(flavor,  # type: ignore[arg-type]
                                           basedir=tmp_path_factory.mktemp(flavor))
        return started[flavor]

    yield get
    for srv in started.values():
        with contextlib.suppress(Exception):
            srv.stop(remove_data=True)


def _port_free(port: int) -> bool:
    """Nothing listens (connections of the killed server may be in TIME_WAIT:
    the server binds with SO_REUSEADDR, so does this check)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def kill_and_restart(srv: Server, timeout: float = 60.0, down: float = 0.0) -> None:
    """SIGKILL the server, then (``down`` seconds later) start it again with
    the same command line (same datadir, port and options)."""
    assert srv.pid is not None and srv.instance_dir is not None
    argv = [a.decode() for a in
            Path(f"/proc/{srv.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    if srv.root is not None:  # MySQL: `chroot ROOT mysqld ...` became `mysqld ...`
        argv = ["chroot", str(srv.root), *argv]
    os.kill(srv.pid, signal.SIGKILL)
    if srv._proc is not None:
        srv._proc.wait(30)
    time.sleep(down)
    deadline = time.monotonic() + timeout
    while not _port_free(srv.port):
        assert time.monotonic() < deadline, "the port stayed busy"
        time.sleep(0.05)
    env = {**os.environ, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    with open(srv.instance_dir / "console.log", "ab") as console:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=console, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=str(srv.instance_dir))
    old, srv.pid, srv._proc = srv.pid, proc.pid, proc
    _repoint_registry(srv, old)
    while True:
        try:
            srv.execute("SELECT 1")
            return
        except pymysql.MySQLError:
            assert proc.poll() is None, "the server did not start again"
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.1)


def _repoint_registry(srv: Server, old_pid: int) -> None:
    """Keep `binlogkit lab list/stop` right about the restarted server."""
    from binlogkit.lab import servers as lab

    with lab._registry_lock():
        reg = lab._read_registry()
        rec = reg.get(srv.name or "")
        if rec is not None and rec.get("pid") == old_pid:
            rec["pid"] = srv.pid
            lab._write_registry(reg)


@pytest.mark.server
@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_reconnect_after_kill_and_restart(flavor: str,
                                          private_server: Callable[[str], Server]) -> None:
    srv = private_server(flavor)
    db = f"crash_{uuid.uuid4().hex[:6]}"
    srv.execute([f"CREATE DATABASE {db}", f"CREATE TABLE {db}.t (id INT PRIMARY KEY)"])
    srv.flush_logs()
    file, _ = binlog_status(srv)
    committed: list[int] = []
    end: list[tuple[str, int]] = []
    failed: list[BaseException] = []
    done = threading.Event()
    progress = threading.Event()

    def insert(ids: range, multi: bool = False) -> None:
        if multi:
            srv.execute(["BEGIN", *(f"INSERT INTO {db}.t VALUES ({i})" for i in ids), "COMMIT"])
            committed.append(ids[0])
            return
        for i in ids:
            srv.execute(f"INSERT INTO {db}.t VALUES ({i})")
            committed.append(i)

    def workload() -> None:
        try:
            insert(range(0, 5))
            insert(range(10, 15), multi=True)
            progress.wait(10)  # the stream has seen something
            time.sleep(0.3)
            kill_and_restart(srv)
            insert(range(20, 25))
            insert(range(30, 35), multi=True)
            settle(srv)
            end.append(binlog_status(srv))
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            failed.append(exc)
        finally:
            done.set()

    reconnects: list[BaseException] = []
    seen: list[StreamEvent] = []
    worker = threading.Thread(target=workload, daemon=True)
    worker.start()
    deadline = time.monotonic() + 90
    s = BinlogStream(srv.connect, Start(file, 4), heartbeat=1.0, reconnect=True,
                     max_backoff=0.3, max_attempts=300,
                     on_reconnect=lambda n, exc: reconnects.append(exc))
    try:
        with s:
            for item in s:
                assert not isinstance(item, Discard), item
                if item.in_file:
                    seen.append(item)
                    progress.set()
                assert time.monotonic() < deadline, "the stream did not catch up"
                if failed:
                    raise failed[0]
                if end and s.proto is not None and (s.proto.file, s.proto.pos) >= end[0]:
                    break
    finally:
        worker.join(60)
    assert not failed
    assert reconnects and s.reconnects >= 1
    # the file the server was killed writing: no ROTATE at its end; its FDE
    # still says "in use" on disk with MariaDB (MySQL's recovery clears it)
    crashed = frozenset(f.name for f in srv.binlog_files()[:-1]
                        if f.name >= file and file_events(f)[-1][1][4] != ROTATE_CODE)
    assert len(crashed) == 1
    fde = file_events(srv.binlog_files()[0].with_name(min(crashed)))[0][1]
    assert bool(fde[17] & LOG_EVENT_BINLOG_IN_USE_F) == (flavor == "mariadb")
    # every event of the files from the start, once, in order
    assert_matches_files(seen, srv, file, crashed=crashed)
    xids = [e for e in seen if e.type_name == "XID"]
    assert len(xids) == len(committed) == 12


# ------------------------------------------------------------------ 4. errors


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


@pytest.mark.server
@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_wrong_password_raises_at_once(flavor: str, request: pytest.FixtureRequest) -> None:
    srv: Server = request.getfixturevalue(f"{flavor}_server")
    secret = "s3cret-Pa55word"
    s = BinlogStream(lambda: srv.connect(password=secret), Start("binlog.000001", 4),
                     reconnect=True)
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as info:
        next(iter(s))
    assert time.monotonic() - t0 < 5
    text = _one_line(info.value)
    assert text.startswith("cannot connect: Access denied for user 'root'")
    assert "(error 1045)" in text and info.value.code == 1045
    assert secret not in text and secret not in repr(info.value.__cause__)


def test_unreachable_host_raises_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed

    def connect() -> Any:
        return pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=3)

    s = BinlogStream(connect, Start("binlog.000001", 4), reconnect=True)
    t0 = time.monotonic()
    with pytest.raises(ConnectError) as info:
        next(iter(s))
    assert time.monotonic() - t0 < 5
    text = _one_line(info.value)
    assert text.startswith("cannot connect: Can't connect to MySQL server on '127.0.0.1'")
    assert "Connection refused" in text and text.endswith("(error 2003)")


@pytest.mark.server
@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_purged_start_position(flavor: str, private_server: Callable[[str], Server]) -> None:
    srv = private_server(flavor)
    srv.flush_logs()
    srv.flush_logs()
    files = srv.binlog_files()
    srv.execute(f"PURGE BINARY LOGS TO '{files[-1].name}'")
    assert srv.binlog_files()[0].name == files[-1].name
    for reconnect in (False, True):
        s = BinlogStream(srv.connect, Start(files[0].name, 4), reconnect=reconnect)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            list(s)
        assert time.monotonic() - t0 < 5 and s.reconnects == 0
        assert info.value.code == 1236
        text = _one_line(info.value)
        assert text.startswith("server error 1236 (HY000): ")
        assert "Could not find first log file name in binary log index file" in text


@pytest.mark.parametrize("flavor,option", [("mariadb", "skip_log_bin"),
                                           ("mysql", "disable_log_bin")])
def test_server_without_binary_log(flavor: str, option: str,
                                   server_factory: Callable[..., Server]) -> None:
    srv = server_factory(flavor, **{option: None})
    assert str(srv.variable("log_bin")) in ("0", "OFF")
    s = BinlogStream(srv.connect, Start("binlog.000001", 4), reconnect=True)
    with pytest.raises(StreamError) as info:
        list(s)
    assert s.reconnects == 0
    assert _one_line(info.value) == ("server error 1381: "
                                     "binary logging is not enabled on the server")
    # what the server itself says to a dump, bypassing that check
    conn = srv.connect()
    try:
        proto = ReplicaProtocol(flavor, Start("binlog.000001", 4), server_id=4242,  # type: ignore[arg-type]
                                heartbeat=None)
        conn._sock.sendall(proto.register_packet())
        reply = conn._rfile.read1(1 << 16)
        try:
            proto.expect_ok(reply)
        except StreamError as exc:
            err: StreamError | None = exc
        else:
            conn._sock.sendall(proto.dump_packet())
            err = None
            while err is None:
                proto.receive_data(conn._rfile.read1(1 << 16))
                try:
                    while proto.next_event() is not NEED_DATA:
                        pass
                except StreamError as exc:
                    err = exc
    finally:
        conn.close()
    assert err is not None and err.code in (1236, 1381), err
    _one_line(err)


# ------------------------------------------------------- 5. sans-I/O units

_PATTERN = bytes(range(251)) * ((2 * MAX_PAYLOAD + 600) // 251 + 1)
SIZES = st.one_of(
    st.integers(0, 300),
    st.sampled_from([MAX_PAYLOAD - 2, MAX_PAYLOAD - 1, MAX_PAYLOAD, MAX_PAYLOAD + 1,
                     2 * MAX_PAYLOAD - 1, 2 * MAX_PAYLOAD, 2 * MAX_PAYLOAD + 7]),
)


def _payload(n: int, salt: int) -> bytes:
    return _PATTERN[salt % 251:salt % 251 + n]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(SIZES, min_size=1, max_size=3), seq=st.integers(0, 255),
       cuts=st.lists(st.integers(0, 1 << 26), max_size=12))
def test_frame_and_reader_round_trip(sizes: list[int], seq: int, cuts: list[int]) -> None:
    payloads = [_payload(n, i) for i, n in enumerate(sizes)]
    wire = b""
    for p in payloads:
        packet = frame(p, seq)
        wire += packet
        seq = (seq + len(p) // MAX_PAYLOAD + 1) & 0xFF
    reader = PacketReader()
    got = []
    for chunk in _cut(wire, cuts):
        reader.feed(chunk)
        while (one := reader.next_payload()) is not None:
            got.append(one)
    assert [len(g) for g in got] == sizes and got == payloads
    assert reader.buffered == 0


def test_frame_layout() -> None:
    assert frame(b"", 7) == b"\x00\x00\x00\x07"
    assert frame(b"ab", 255) == b"\x02\x00\x00\xffab"
    two = frame(_payload(MAX_PAYLOAD, 0), 255)
    assert len(two) == 4 + MAX_PAYLOAD + 4
    assert two[:4] == b"\xff\xff\xff\xff" and two[-4:] == b"\x00\x00\x00\x00"  # seq wraps


def test_reader_rejects_a_sequence_gap() -> None:
    reader = PacketReader()
    reader.feed(frame(b"a", 1) + frame(b"b", 3))
    assert reader.next_payload() == b"a"
    with pytest.raises(ProtocolError, match="packet sequence id 2 expected, found 3"):
        reader.next_payload()


def fake_rotate(name: str, pos: int, crc: bool, server_id: int = 1) -> bytes:
    """The artificial ROTATE a dump opens with (log_pos 0, flag 0x20)."""
    body = pos.to_bytes(8, "little") + name.encode()
    size = 19 + len(body) + (4 if crc else 0)
    ev = ((0).to_bytes(4, "little") + bytes([ROTATE_CODE]) + server_id.to_bytes(4, "little")
          + size.to_bytes(4, "little") + (0).to_bytes(4, "little")
          + (0x20).to_bytes(2, "little") + body)
    return ev + zlib.crc32(ev).to_bytes(4, "little") if crc else ev


def dump_wire(payloads: list[bytes], seq: int = 1) -> bytes:
    out = b""
    for p in payloads:
        out += frame(p, seq)
        seq = (seq + len(p) // MAX_PAYLOAD + 1) & 0xFF
    return out


def drain(proto: ReplicaProtocol) -> list[Any]:
    out = []
    while (item := proto.next_event()) is not NEED_DATA:
        out.append(item)
        if item is END:
            break
    return out


def test_next_event_eof_err_and_bad_packets() -> None:
    row = FIXTURES / "mysql/row-minimal.000001"
    fde = file_events(row)[0][1]
    proto = ReplicaProtocol("mysql", Start(row.name, 4), server_id=9)
    proto.receive_data(dump_wire([b"\x00" + fake_rotate(row.name, 4, True), b"\x00" + fde,
                                  b"\xfe\x00\x00\x02\x00"]))
    items = drain(proto)
    assert [i.type_name for i in items[:2]] == ["ROTATE", "FORMAT_DESCRIPTION"]
    assert not items[0].in_file and items[1].in_file and items[1].pos == 4
    assert items[2] is END and proto.next_event() is END
    # ERR with an SQL state, then nothing more
    proto = ReplicaProtocol("mariadb", Start("x.000001", 4), server_id=9)
    msg = b"Could not find first log file name in binary log index file"
    proto.receive_data(dump_wire([b"\xff" + (1236).to_bytes(2, "little") + b"#HY000" + msg]))
    with pytest.raises(StreamError) as info:
        proto.next_event()
    assert (info.value.code, info.value.state, info.value.message) == (1236, "HY000", msg.decode())
    assert str(info.value) == f"server error 1236 (HY000): {msg.decode()}"
    assert proto.next_event() is END
    # ERR without a state (pre-4.1 style)
    proto = ReplicaProtocol("mysql", Start("x.000001", 4), server_id=9)
    proto.receive_data(dump_wire([b"\xff" + (1053).to_bytes(2, "little") + b"shutdown"]))
    with pytest.raises(StreamError, match=r"^server error 1053: shutdown$"):
        proto.next_event()
    # neither an event nor EOF/ERR
    proto = ReplicaProtocol("mysql", Start("x.000001", 4), server_id=9)
    proto.receive_data(dump_wire([b"\x01abc"]))
    with pytest.raises(ProtocolError, match="0x01"):
        proto.next_event()
    with pytest.raises(ProtocolError, match="closed"):
        proto.receive_data(b"")
    # the reply to COM_REGISTER_SLAVE
    proto.expect_ok(frame(b"\x00\x00\x00\x02\x00\x00\x00", 1))
    with pytest.raises(StreamError, match="1227"):
        proto.expect_ok(frame(b"\xff" + (1227).to_bytes(2, "little") + b"#42000denied", 1))


@pytest.mark.parametrize("flag", [0, 1])
def test_semi_sync_header(flag: int) -> None:
    row = FIXTURES / "mariadb/row.000001"
    events = file_events(row)
    proto = ReplicaProtocol("mariadb", Start(row.name, 4), server_id=9, semi_sync=True)
    proto.receive_data(dump_wire([b"\x00\xef\x00" + fake_rotate(row.name, 4, True)]
                                 + [b"\x00\xef" + bytes([flag]) + raw for _, raw in events[:3]]))
    items = drain(proto)
    assert [i.raw for i in items[1:]] == [raw for _, raw in events[:3]]
    assert [i.ack for i in items[1:]] == [bool(flag)] * 3
    if flag:
        ack = proto.ack_packet(items[-1])
        assert ack[3] == 0 and ack[4] == 0xEF
        assert int.from_bytes(ack[5:13], "little") == items[-1].next_pos
        assert ack[13:] == row.name.encode()


def test_semi_sync_requested_but_the_source_adds_no_header() -> None:
    """A source without semi-sync sends bare events: one whose first byte (the
    timestamp's low byte) is EF must not lose two bytes."""
    row = FIXTURES / "mariadb/row.000001"
    events = file_events(row)
    raws = []
    for _, raw in events[:4]:
        patched = bytearray(raw)
        patched[0], patched[1] = 0xEF, 0x01  # timestamp low bytes that look like a header
        raws.append(bytes(patched))
    proto = ReplicaProtocol("mariadb", Start(row.name, 4), server_id=9, semi_sync=True,
                            verify_checksum=False)
    proto.receive_data(dump_wire([b"\x00" + fake_rotate(row.name, 4, True)]
                                 + [b"\x00" + raw for raw in raws]))
    items = drain(proto)
    assert [i.raw for i in items[1:]] == raws
    assert not any(i.ack for i in items)


def test_dump_packets() -> None:
    p = ReplicaProtocol("mysql", Start("binlog.000007", 1234), server_id=77, blocking=False)
    pkt = p.dump_packet()
    assert pkt[3] == 0 and pkt[4] == 0x12
    assert int.from_bytes(pkt[5:9], "little") == 1234
    assert int.from_bytes(pkt[9:11], "little") == 1  # non-blocking
    assert int.from_bytes(pkt[11:15], "little") == 77 and pkt[15:] == b"binlog.000007"
    gtids = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"
    p = ReplicaProtocol("mysql", Start(gtids=gtids), server_id=77)
    pkt = p.dump_packet()
    block = GtidSet.parse(gtids).encode()
    assert pkt[4] == 0x1E and int.from_bytes(pkt[5:7], "little") == 4  # through GTID
    assert pkt.endswith(len(block).to_bytes(4, "little") + block)
    p = ReplicaProtocol("mariadb", Start(gtids="0-1-5,1-2-3"), server_id=77)
    assert "SET @slave_connect_state = '0-1-5,1-2-3'" in p.setup_queries()
    pkt = p.dump_packet()
    assert pkt[4] == 0x12 and pkt[15:] == b"" and int.from_bytes(pkt[5:9], "little") == 4
    with pytest.raises(ValueError):
        Start()
    with pytest.raises(ValueError):
        ReplicaProtocol("mysql", Start("f", 4), server_id=0)


FIXTURE_FILES = sorted(p for p in FIXTURES.glob("*/*.0000*"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 1 << 20), max_size=20))
def test_resume_points_over_fixture_files(path: Path, cuts: list[int]) -> None:
    """Each fixture file streamed as a dump (split anywhere): after each event
    the resume point is the end of the last transaction (read_transactions
    says where they end), and the GTIDs are those of every transaction."""
    flavor = path.parent.name
    events, txns, _ = _scripted(path)
    crc = not path.name.startswith("statement-nocrc")
    ends = {t.end for t in txns}
    starts = {t.start: t for t in txns}
    proto = ReplicaProtocol(flavor, Start(path.name, 4), server_id=9)  # type: ignore[arg-type]
    wire = dump_wire([b"\x00" + fake_rotate(path.name, 4, crc)]
                     + [b"\x00" + raw for _, raw in events] + [b"\xfe\x00\x00\x02\x00"])
    got: list[StreamEvent] = []
    open_txn = None
    for chunk in _cut(wire, cuts):
        if chunk:
            proto.receive_data(chunk)
        while (item := proto.next_event()) not in (NEED_DATA, END):
            assert isinstance(item, StreamEvent)
            got.append(item)
            if not item.in_file:
                continue
            if item.pos in starts:
                open_txn = starts[item.pos]
            point = proto.resume_point
            if item.type_name == "ROTATE":
                assert open_txn is None or open_txn.end <= item.pos
                assert point[1] == 4 and point[0] != path.name
            elif open_txn is not None and item.next_pos < open_txn.end:
                assert point == (path.name, open_txn.start), item.type_name
                assert proto.in_transaction
            else:
                if open_txn is not None:
                    assert item.next_pos == open_txn.end
                    open_txn = None
                assert point == (path.name, item.next_pos), item.type_name
                assert not proto.in_transaction
    assert [(e.pos, e.raw) for e in got if e.in_file] == events
    assert ends <= {e.next_pos for e in got if e.in_file}
    resume = proto.resume
    gtids = [t.gtid for t in txns if t.gtid is not None]
    if flavor == "mysql":
        assert resume.mysql_gtids == GtidSet.parse(",".join(gtids))
    else:
        assert resume.mariadb_gtids == str(MariadbGtidState(gtids).pos)


# -------------------------------------------- 3b. replay and Discard, scripted


class _Cursor:
    def __init__(self, conn: _FakeConn) -> None:
        self.conn = conn

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.conn.queries.append(sql)

    def fetchone(self) -> tuple[Any, ...]:
        return (1,)


class _Sock:
    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    def settimeout(self, t: float | None) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)


class _FakeConn:
    """What BinlogStream uses of a PyMySQL connection: cursor(), _sock, _rfile."""

    def __init__(self, script: bytes, sent: list[bytes]) -> None:
        self.queries: list[str] = []
        self._sock = _Sock(sent)
        self._rfile = io.BufferedReader(io.BytesIO(frame(b"\x00\x00\x00\x02\x00\x00\x00", 1)
                                                   + script))  # type: ignore[arg-type]

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    def close(self) -> None:
        pass


def _at(raw: bytes, pos: int, crc: bool) -> bytes:
    """``raw`` moved to ``pos`` (its log_pos rewritten, CRC32 recomputed)."""
    ev = raw[:13] + (pos + len(raw)).to_bytes(4, "little") + raw[17:len(raw) - (4 if crc else 0)]
    return ev + zlib.crc32(ev).to_bytes(4, "little") if crc else ev


@functools.cache
def _scripted(path: Path) -> tuple[list[tuple[int, bytes]], list[Any], list[Any]]:
    """The file's events, its transactions, and those of 4 events or more."""
    txns = list(read_transactions(path))
    return file_events(path), txns, [t for t in txns if len(t.events) >= 4]


@pytest.mark.parametrize("fixture", ["mysql/row-full-metadata.000001", "mariadb/row.000001"])
@pytest.mark.parametrize("server_lost_it", [False, True])
def test_reconnect_replays_an_unfinished_transaction(fixture: str, server_lost_it: bool) -> None:
    path = FIXTURES / fixture
    flavor = path.parent.name
    events, every, txns = _scripted(path)
    txn, later = txns[1], txns[2]
    by_pos = dict(events)
    cut = [p for p, _ in events if txn.start < p < txn.end][1]  # 2 events of txn sent
    before = [raw for p, raw in events if p < cut]
    rotate = b"\x00" + fake_rotate(path.name, 4, True)
    first = dump_wire([rotate] + [b"\x00" + r for r in before])  # then the connection drops
    fde_again = b"\x00" + _at(events[0][1], -len(events[0][1]), True)  # log_pos 0: re-sent
    resent = dump_wire([b"\x00" + fake_rotate(path.name, txn.start, True), fde_again])
    if server_lost_it:
        # another transaction took its place (the server restarted without it)
        pos, moved = txn.start, []
        for p, raw in events:
            if later.start <= p < later.end:
                moved.append(_at(raw, pos, True))
                pos += len(raw)
        tail = moved
    else:
        tail = [raw for p, raw in events if p >= txn.start]
    second = resent + dump_wire([b"\x00" + r for r in tail] + [b"\xfe\x00\x00\x02\x00"], seq=3)
    scripts = [first, second]
    sent: list[bytes] = []
    s = BinlogStream(lambda: _FakeConn(scripts.pop(0), sent), Start(path.name, 4),
                     flavor=flavor, blocking=False, reconnect=True)  # type: ignore[arg-type]
    items = list(s)
    assert s.reconnects == 1
    dumps = [p for p in sent if p[4] == 0x12]
    assert int.from_bytes(dumps[1][5:9], "little") == txn.start  # resumed at its start
    assert dumps[1][15:] == path.name.encode()
    got = [(i.pos, i.raw) for i in items if isinstance(i, StreamEvent) and i.in_file]
    discards = [i for i in items if isinstance(i, Discard)]
    if not server_lost_it:
        assert not discards
        assert got == events  # each once
    else:
        unfinished = [p for p, _ in events if txn.start <= p < cut]
        assert discards == [Discard(path.name, txn.start, len(unfinished))]
        k = items.index(discards[0])
        kept = [(i.pos, i.raw) for i in items[:k] if isinstance(i, StreamEvent) and i.in_file]
        assert kept == [(p, by_pos[p]) for p, _ in events if p < cut]
        after = [(i.pos, i.raw) for i in items[k + 1:] if isinstance(i, StreamEvent) and i.in_file]
        assert [r for _, r in after] == tail
        # what survives: the events before the transaction, then the server's new ones
        survived = kept[:len(kept) - discards[0].events] + after
        assert [p for p, _ in survived] == sorted(p for p, _ in survived)
    # the GTIDs of both sessions
    assert s.proto is not None and not s.proto.in_transaction
    done = [t.gtid for t in every if t.end <= txn.start]
    done += [later.gtid] if server_lost_it else [t.gtid for t in every if t.start >= txn.start]
    if flavor == "mysql":
        assert s.proto.resume.mysql_gtids == GtidSet.parse(",".join(done))
    else:
        assert s.proto.resume.mariadb_gtids == str(MariadbGtidState(done).pos)


def test_reconnect_at_end_of_dump_discards_the_unfinished_transaction() -> None:
    path = FIXTURES / "mysql/row-full-metadata.000001"
    events, _, txns = _scripted(path)
    txn = txns[1]
    cut = [p for p, _ in events if txn.start < p < txn.end][0]
    first = dump_wire([b"\x00" + fake_rotate(path.name, 4, True)]
                      + [b"\x00" + r for p, r in events if p < cut])
    second = dump_wire([b"\x00" + fake_rotate(path.name, txn.start, True),
                        b"\xfe\x00\x00\x02\x00"])
    scripts = [first, second]
    s = BinlogStream(lambda: _FakeConn(scripts.pop(0), []), Start(path.name, 4),
                     flavor="mysql", blocking=False, reconnect=True)
    items = list(s)
    assert items[-1] == Discard(path.name, txn.start, 1)


def test_reconnect_gives_up_after_max_attempts() -> None:
    calls = []

    def connect() -> Any:
        calls.append(1)
        if len(calls) == 1:
            return _FakeConn(dump_wire([b"\x00" + fake_rotate("binlog.000001", 4, True)]), [])
        raise pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'h' (111)")

    s = BinlogStream(connect, Start("binlog.000001", 4), flavor="mysql", max_backoff=0.01,
                     max_attempts=2, reconnect=True)
    with pytest.raises(ConnectionLost) as info:
        list(s)
    assert not isinstance(info.value, ConnectError) and len(calls) == 3
    assert _one_line(info.value) == ("gave up after 2 reconnect attempts: cannot connect: "
                                     "Can't connect to MySQL server on 'h' (111) (error 2003)")


def test_garbage_from_the_server_is_not_retried() -> None:
    calls = []

    def connect() -> Any:
        calls.append(1)
        return _FakeConn(dump_wire([b"\x00" + fake_rotate("binlog.000001", 4, True),
                                    b"\x01garbage"]), [])

    s = BinlogStream(connect, Start("binlog.000001", 4), flavor="mysql", reconnect=True)
    with pytest.raises(ProtocolError) as info:
        list(s)
    assert len(calls) == 1 and s.reconnects == 0
    assert _one_line(info.value) == "a binlog event packet (00) expected, found 0x01"


def test_truncated_register_reply_is_a_closed_connection() -> None:
    class Short(_FakeConn):
        def __init__(self) -> None:
            super().__init__(b"", [])
            self._rfile = io.BufferedReader(io.BytesIO(b"\x07\x00\x00\x01\x00"))  # type: ignore[arg-type]

    s = BinlogStream(Short, Start("binlog.000001", 4), flavor="mysql", reconnect=False)
    with pytest.raises(ConnectionLost, match="^cannot start the dump: the server closed the "
                                             "connection$"):
        list(s)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_streamed_events_decode_as_the_file_reader_does(path: Path) -> None:
    """Every event of a fixture, streamed (row events take their own fast
    path), has the type, position, header fields and body the file reader gives."""
    flavor = path.parent.name
    crc = not path.name.startswith("statement-nocrc")
    events = file_events(path)
    proto = ReplicaProtocol(flavor, Start(path.name, 4), server_id=9)  # type: ignore[arg-type]
    proto.receive_data(dump_wire([b"\x00" + fake_rotate(path.name, 4, crc)]
                                 + [b"\x00" + raw for _, raw in events]
                                 + [b"\xfe\x00\x00\x02\x00"]))
    got = {i.pos: i.event for i in drain(proto)[:-1] if i.in_file}
    want = {ev.pos: ev for ev in BinlogReader(path)}
    assert set(got) == set(want)
    for pos, ev in want.items():
        g = got[pos]
        assert (g.type_code, g.timestamp, g.server_id, g.log_pos, g.flags, g.checksum,
                g.size) == (ev.type_code, ev.timestamp, ev.server_id, ev.log_pos, ev.flags,
                            ev.checksum, ev.size), pos
        assert g.body == ev.body, (pos, ev.type_name)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_types_filter_returns_only_what_was_asked(path: Path) -> None:
    """``types``: only those events come back, the same objects the unfiltered
    stream gives, and the resume point at the end is the same."""
    flavor = path.parent.name
    crc = not path.name.startswith("statement-nocrc")
    wire = dump_wire([b"\x00" + fake_rotate(path.name, 4, crc)]
                     + [b"\x00" + raw for _, raw in file_events(path)] + [b"\xfe\x00\x00\x02\x00"])
    wanted = ROWS_EVENTS | {T.TABLE_MAP}
    every = ReplicaProtocol(flavor, Start(path.name, 4), server_id=9)  # type: ignore[arg-type]
    some = ReplicaProtocol(flavor, Start(path.name, 4), server_id=9,  # type: ignore[arg-type]
                           types=wanted)
    every.receive_data(wire)
    some.receive_data(wire)
    all_items = [i for i in drain(every)[:-1] if i.in_file]
    got = drain(some)
    assert got[-1] is END
    assert [(i.pos, i.raw) for i in got[:-1]] == [
        (i.pos, i.raw) for i in all_items if i.event.type_code in wanted]
    assert some.resume == every.resume and some.pos == every.pos


def test_mariadb_gtid_start_with_a_types_filter() -> None:
    """MariaDB, a GTID start and types without ANNOTATE_ROWS: still
    COM_BINLOG_DUMP with an empty file (the GTIDs go in @slave_connect_state),
    just without the annotate flag."""
    p = ReplicaProtocol("mariadb", Start(gtids="0-1-57"), server_id=9,
                        types={T.TABLE_MAP})
    payload = p.dump_packet()[4:]
    assert payload[0] == 0x12 and payload[5:7] == b"\x00\x00" and payload[11:] == b""
    assert "SET @slave_connect_state = '0-1-57'" in p.setup_queries()
