"""``binlogkit dump URL`` and ``binlogkit fetch`` against live lab servers:
the stream reads like the server's files, fetched files are the server's
files byte for byte, --follow sees new events and files, errors are one line."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_stream import settle

from binlogkit.cli import main
from binlogkit.codec.context import FormatContext
from binlogkit.codec.event import decode_event
from binlogkit.io.reader import BinlogReader
from binlogkit.lab import Server
from binlogkit.protocol.blocking import Discard
from binlogkit.protocol.fetch import BinlogFetcher, FetchError, StreamFiles, rotate_target
from binlogkit.protocol.replica import StreamEvent

FLAVORS = ["mariadb", "mysql"]
ServerFactory = Callable[..., Server]


# ------------------------------------------------------------------ helpers


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def server(request: pytest.FixtureRequest, flavor: str) -> Server:
    return request.getfixturevalue(f"{flavor}_server")  # type: ignore[no-any-return]


def workload(srv: Server, db: str) -> None:
    """A few transactions in two files: DDL, multi-row inserts, an update, a delete."""
    srv.execute([
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"DROP TABLE IF EXISTS {db}.t",
        f"CREATE TABLE {db}.t (id INT PRIMARY KEY, txt VARCHAR(200), n BIGINT)",
        f"INSERT INTO {db}.t VALUES (1, 'one', 1), (2, 'two', 2), (3, REPEAT('x', 200), 3)",
    ])
    srv.flush_logs()
    srv.execute([
        f"UPDATE {db}.t SET n = n * 10 WHERE id < 3",
        f"DELETE FROM {db}.t WHERE id = 3",
        f"INSERT INTO {db}.t SELECT id + 10, txt, n FROM {db}.t",
    ])
    srv.flush_logs()
    settle(srv)  # MariaDB's BINLOG_CHECKPOINT for the new file comes a little later


def file_records(paths: list[Path]) -> list[dict[str, Any]]:
    res = run("dump", "--format", "jsonl", *map(str, paths))
    assert res.exit_code == 0, res.output
    return records(res.stdout)


def comparable(recs: list[dict[str, Any]], active: str) -> list[tuple[str, dict[str, Any]]]:
    """(file base name, record without "file"); the FDE of the server's active
    file is on disk with its in-use flag, streamed without: flags left out."""
    out = []
    for r in recs:
        r = dict(r)
        name = os.path.basename(r.pop("file"))
        if name == active and r["type"] == "FORMAT_DESCRIPTION":
            r.pop("header_flags")
        out.append((name, r))
    return out


def gtid_state(srv: Server) -> str:
    var = "gtid_binlog_pos" if srv.flavor == "mariadb" else "gtid_executed"
    value = srv.execute(f"SELECT @@GLOBAL.{var}")[0][0]
    return str(value).replace("\n", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_error_line(res: Result) -> str:
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("binlogkit: error: ")
    assert "Traceback" not in res.stderr
    return lines[0]


class Lines:
    """A CLI in a subprocess, its stdout lines read by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "binlogkit", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.q: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)

    def until(self, pred: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not pred(self.lines):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self.q.empty():
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
                raise AssertionError(f"timed out; got {self.lines[-5:]} {err}")
            try:
                self.lines.append(self.q.get(timeout=min(left, 0.5)))
            except queue.Empty:
                pass
        return self.lines

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()


def has_value(lines: list[str], value: int) -> bool:
    """Some row event of the JSON lines has ``value`` in a row's after image."""
    for line in lines:
        for row in json.loads(line).get("rows") or ():
            if value in (row.get("after") or {}).values():
                return True
    return False


def wait_for(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ------------------------------------------------------------------ BinlogFetcher, no server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def artificial_rotate(name: str, pos: int = 4, crc: bool = True) -> StreamEvent:
    body = pos.to_bytes(8, "little") + name.encode()
    size = 19 + len(body) + (4 if crc else 0)
    head = ((0).to_bytes(4, "little") + bytes([4]) + (1).to_bytes(4, "little")
            + size.to_bytes(4, "little") + (0).to_bytes(4, "little") + (0x20).to_bytes(2, "little"))
    raw = head + body
    if crc:
        raw += (zlib.crc32(raw) & 0xFFFFFFFF).to_bytes(4, "little")
    ev = decode_event(raw, FormatContext(), pos=pos, verify=False)
    return StreamEvent(ev, raw, name, pos, in_file=False)


def stream_of(path: Path, server_clears_flag: bool = True) -> list[StreamEvent]:
    """What a server sends for the file ``path`` from position 4."""
    data = path.read_bytes()
    items = [artificial_rotate(path.name)]
    for ev in BinlogReader(path):
        raw = data[ev.pos:ev.next_pos]
        if ev.type_name == "FORMAT_DESCRIPTION" and server_clears_flag:
            raw = raw[:17] + bytes([raw[17] & ~1]) + raw[18:]
        items.append(StreamEvent(ev, raw, path.name, ev.pos, in_file=True))
    return items


def test_fetcher_writes_the_files(tmp_path: Path) -> None:
    paths = [FIXTURES / "mariadb/row.000001", FIXTURES / "mariadb/row.000002"]
    seen: list[tuple[str, bool]] = []
    fetcher = BinlogFetcher(tmp_path, on_file=lambda p, closed: seen.append((p.name, closed)))
    names = StreamFiles("row.000001")
    for path in paths:
        for item in stream_of(path):
            assert names.see(item) == path.name
            fetcher.feed(item)
            if item.type_name == "FORMAT_DESCRIPTION":
                # written, not renamed yet; flag set as on a server's active file
                assert (tmp_path / (path.name + ".partial")).exists()
                assert not (tmp_path / path.name).exists()
    assert fetcher.finish() is None  # the last ROTATE closed the last file
    assert seen == [("row.000001", True), ("row.000002", True)]
    for path in paths:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["row.000001", "row.000002"]


def test_fetcher_active_file_discard_and_errors(tmp_path: Path) -> None:
    path = FIXTURES / "mysql/compressed.000001"
    items = stream_of(path)[:-1]  # no closing ROTATE: the server's active file
    heartbeat = StreamEvent(items[0].event, items[0].raw, path.name, 4, in_file=False)
    with BinlogFetcher(tmp_path) as fetcher:
        for item in items[:5]:
            fetcher.feed(item)
        fetcher.feed(heartbeat)  # not in the file: skipped
        at = fetcher.size
        for item in items[5:8]:
            fetcher.feed(item)
        fetcher.feed(Discard(path.name, at, 3))  # the server lost those three
        assert fetcher.size == at
        fetcher.feed(artificial_rotate(path.name, at))  # reconnected, same file
        for item in items[5:]:
            fetcher.feed(item)
    data = (tmp_path / path.name).read_bytes()
    want = bytearray(path.read_bytes()[:items[-1].next_pos])
    want[4 + 17] |= 1  # in use, as on the server while it writes the file
    assert data == bytes(want)

    with pytest.raises(FetchError, match="not a plain file name"):
        BinlogFetcher(tmp_path / "x").feed(artificial_rotate("../evil"))
    gap = BinlogFetcher(tmp_path / "gap")
    gap.feed(items[0])
    gap.feed(items[1])
    with pytest.raises(FetchError, match="holds"):
        gap.feed(items[3])
    gap.finish()


def test_rotate_target_with_and_without_crc() -> None:
    assert rotate_target(artificial_rotate("binlog.000007", 4).raw) == ("binlog.000007", 4)
    assert rotate_target(artificial_rotate("b.000002", 120, crc=False).raw) == ("b.000002", 120)


def test_dump_of_several_files_says_which_file() -> None:
    a, b = FIXTURES / "mariadb/row.000001", FIXTURES / "mariadb/row.000002"
    one = records(run("dump", "--format", "jsonl", str(b)).stdout)
    assert all("file" not in r for r in one)  # a single file: unchanged
    two = records(run("dump", "--format", "jsonl", str(a), str(b)).stdout)
    assert [r.pop("file") for r in two][-len(one):] == [str(b)] * len(one)
    assert two[-len(one):] == one
    text = run("dump", "--type", "ROTATE", str(a), str(b)).stdout
    assert [ln for ln in text.splitlines() if ln.startswith("# file")] == [
        f"# file {a}", f"# file {b}"]


# ------------------------------------------------------------------ dump URL


@pytest.mark.parametrize("flavor", FLAVORS)
def test_dump_url_equals_dump_of_the_servers_files(request: pytest.FixtureRequest,
                                                   flavor: str) -> None:
    srv = server(request, flavor)
    workload(srv, "stream_dump")
    files = srv.binlog_files()
    res = run("dump", "--format", "jsonl", srv.url)
    assert res.exit_code == 0, res.output
    streamed = records(res.stdout)
    active = files[-1].name
    assert comparable(streamed, active) == comparable(file_records(files), active)
    # every record says its file: the server's files in order, from the first listed
    names = list(dict.fromkeys(r["file"] for r in streamed))
    assert names == [f.name for f in files]
    # rows were decoded as for files (a sanity check on the content)
    assert any(r["type"].startswith("UPDATE_ROWS") and r.get("table") == "t" for r in streamed)

    text = run("dump", srv.url).stdout
    assert [ln[len("# file "):] for ln in text.splitlines() if ln.startswith("# file ")] == names


@pytest.mark.parametrize("flavor", FLAVORS)
def test_dump_url_start_gtid(request: pytest.FixtureRequest, flavor: str) -> None:
    srv = server(request, flavor)
    srv.execute(["CREATE DATABASE IF NOT EXISTS stream_gtid",
                 "CREATE TABLE IF NOT EXISTS stream_gtid.t (id INT PRIMARY KEY)"])
    before = gtid_state(srv)
    srv.execute(["INSERT INTO stream_gtid.t VALUES (1)", "DELETE FROM stream_gtid.t"])
    srv.flush_logs()
    srv.execute(["INSERT INTO stream_gtid.t VALUES (2)"])
    after_pos = srv.execute("SHOW BINARY LOGS")[-1][0]
    res = run("dump", "--format", "jsonl", "--start-gtid", before, srv.url)
    assert res.exit_code == 0, res.output
    recs = records(res.stdout)
    gtids = [r["gtid"] for r in recs if r["type"] in ("GTID", "GTID_TAGGED", "MARIADB_GTID")]
    assert len(gtids) == 3
    assert recs[-1]["file"] == after_pos
    assert all(r.get("in_file", True) for r in recs)  # artificial events not printed
    # the three transactions are the ones after `before`
    check = run("dump", "--format", "jsonl", "--start-gtid", gtid_state(srv), srv.url)
    assert [r for r in records(check.stdout)
            if r["type"] in ("GTID", "GTID_TAGGED", "MARIADB_GTID")] == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_dump_url_start_file_and_position(request: pytest.FixtureRequest, flavor: str) -> None:
    srv = server(request, flavor)
    workload(srv, "stream_pos")
    files = srv.binlog_files()
    f = files[-2]  # closed: the UPDATE/DELETE/INSERT file
    in_file = file_records([f])
    mid = next(r for r in in_file if r["type"] in ("GTID", "MARIADB_GTID") and r["pos"] > 200)
    res = run("dump", "--format", "jsonl", "--start-file", f.name, "--start-pos",
              str(mid["pos"]), srv.url)
    assert res.exit_code == 0, res.output
    recs = records(res.stdout)
    assert (recs[0]["file"], recs[0]["pos"]) == (f.name, mid["pos"])
    got = [{k: v for k, v in r.items() if k != "file"} for r in recs if r["file"] == f.name]
    want = records(run("dump", "--format", "jsonl", "--start-position", str(mid["pos"]),
                       str(f)).stdout)
    assert got == want
    assert [r["file"] for r in recs][-1] == files[-1].name

    # --start-position without --start-file: the first file the server lists
    res = run("dump", "--format", "jsonl", "--start-position", "4", "--type",
              "FORMAT_DESCRIPTION", srv.url)
    assert records(res.stdout)[0]["file"] == files[0].name


def test_dump_url_show_artificial(mariadb_server: Server) -> None:
    srv = mariadb_server
    srv.flush_logs()
    last = srv.binlog_files()[-1].name
    res = run("dump", "--format", "jsonl", "--show-artificial", "--start-file", last, srv.url)
    recs = records(res.stdout)
    assert recs[0]["type"] == "ROTATE" and recs[0]["in_file"] is False
    assert recs[0]["next_file"] == last
    assert all("in_file" not in r for r in recs[1:] if r["log_pos"])
    plain = records(run("dump", "--format", "jsonl", "--start-file", last, srv.url).stdout)
    in_file = [r for r in recs if "in_file" not in r]
    # MariaDB writes the file's BINLOG_CHECKPOINT after FLUSH asynchronously:
    # one of the two dumps may have been taken before it was there
    n = min(len(plain), len(in_file))
    assert n >= max(len(plain), len(in_file)) - 1
    assert plain[:n] == in_file[:n]


def test_dump_url_flavor_from_the_server(mariadb_server: Server) -> None:
    url = mariadb_server.url.replace("mariadb://", "mysql://")
    res = run("dump", "--type", "FORMAT_DESCRIPTION", url)
    assert res.exit_code == 0
    note = res.stderr.splitlines()
    assert len(note) == 1 and note[0].startswith("binlogkit: note: ")
    assert "mariadb server" in note[0]


def test_dump_url_usage_errors(mariadb_server: Server) -> None:
    res = run("dump", mariadb_server.url, "x.000001")
    assert res.exit_code == 2 and "one server URL" in res.output
    res = run("dump", "--start-file", "binlog.000001", "x.000001")
    assert res.exit_code == 2 and "needs a server URL" in res.output
    res = run("dump", "--start-gtid", "0-1-1", "--start-file", "binlog.000001",
              mariadb_server.url)
    assert res.exit_code == 2 and "--start-gtid" in res.output


# ------------------------------------------------------------------ fetch


FETCH_CASES = [
    ("mariadb", {}),
    ("mariadb", {"binlog_checksum": "NONE"}),
    ("mysql", {}),
    ("mysql", {"binlog_transaction_compression": "ON"}),
]


@pytest.mark.parametrize(("flavor", "options"), FETCH_CASES,
                         ids=["mariadb", "mariadb-nochecksum", "mysql", "mysql-zstd"])
def test_fetch_files_are_the_servers(server_factory: ServerFactory, tmp_path: Path,
                                     flavor: str, options: dict[str, str]) -> None:
    srv = server_factory(flavor, **options)
    workload(srv, "stream_fetch")
    files = srv.binlog_files()
    res = run("fetch", srv.url, str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    got = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in got] == [f.name for f in files]  # no .partial left
    for mine, theirs in zip(got, files, strict=True):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name
    # closed files: in-use flag clear; the active one: set, as on the server
    assert [p.read_bytes()[4 + 17] & 1 for p in got] == [0] * (len(got) - 1) + [1]
    lines = res.stdout.splitlines()
    assert len(lines) == len(files) and lines[-1].endswith("active (in use on the server)")
    types = {r["type"] for r in file_records(got)}
    if options.get("binlog_transaction_compression") == "ON":
        assert "TRANSACTION_PAYLOAD" in types
    if options.get("binlog_checksum") == "NONE":
        assert all("checksum" not in r for r in file_records(got[-2:])
                   if r["type"] != "FORMAT_DESCRIPTION")

    # --start-file: from that file on
    res = run("fetch", "-q", "--start-file", files[-2].name, srv.url, str(tmp_path / "two"))
    assert res.exit_code == 0 and res.stdout == ""
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [f.name for f in files[-2:]]
    assert (tmp_path / "two" / files[-2].name).read_bytes() == files[-2].read_bytes()


# ------------------------------------------------------------------ --follow


@pytest.mark.parametrize("flavor", FLAVORS)
def test_dump_url_follow(request: pytest.FixtureRequest, flavor: str) -> None:
    srv = server(request, flavor)
    srv.execute(["CREATE DATABASE IF NOT EXISTS stream_follow",
                 "CREATE TABLE IF NOT EXISTS stream_follow.t (id INT PRIMARY KEY, tag BIGINT)"])
    srv.flush_logs()
    first = srv.binlog_files()[-1].name
    proc = Lines("dump", "--follow", "--format", "jsonl", "--start-file", first,
                 "-t", "stream_follow.t", srv.url)
    try:
        tag = random.randrange(1 << 40, 1 << 50)
        time.sleep(0.3)
        srv.execute(f"INSERT INTO stream_follow.t VALUES (1, {tag})")
        proc.until(lambda ls: has_value(ls, tag))
        srv.flush_logs()
        second = srv.binlog_files()[-1].name
        tag2 = tag + 1
        srv.execute(f"UPDATE stream_follow.t SET tag = {tag2}")
        lines = proc.until(lambda ls: has_value(ls, tag2))
        recs = [json.loads(ln) for ln in lines]
        assert recs[0]["file"] == first and recs[-1]["file"] == second
        assert recs[-1]["type"].startswith("UPDATE_ROWS")
    finally:
        rc, err = proc.stop()
        srv.execute("DROP TABLE stream_follow.t")
    assert rc in (-signal.SIGTERM, 130, 143), err
    assert "Traceback" not in err


def test_fetch_follow(mariadb_server: Server, tmp_path: Path) -> None:
    srv = mariadb_server
    srv.flush_logs()
    first = srv.binlog_files()[-1].name
    out = tmp_path / "out"
    proc = Lines("fetch", "--follow", "--start-file", first, srv.url, str(out))
    try:
        wait_for(lambda: (out / f"{first}.partial").exists())
        srv.execute(["CREATE DATABASE IF NOT EXISTS stream_ff",
                     "CREATE TABLE IF NOT EXISTS stream_ff.t (id INT PRIMARY KEY)",
                     "REPLACE INTO stream_ff.t VALUES (1)"])
        srv.flush_logs()
        second = srv.binlog_files()[-1].name
        proc.until(lambda ls: any(ln.startswith(str(out / first)) for ln in ls))
        wait_for(lambda: (out / f"{second}.partial").exists())
        assert (out / first).read_bytes() == srv.binlog_files()[-2].read_bytes()
        srv.execute("REPLACE INTO stream_ff.t VALUES (2)")
        size = srv.binlog_files()[-1].stat().st_size
        wait_for(lambda: (out / f"{second}.partial").stat().st_size == size)
    finally:
        rc, err = proc.stop()
    assert rc == 130, err
    # stopped: the active file keeps its name, a prefix of the server's (all of it here)
    assert sorted(p.name for p in out.iterdir()) == [first, second]
    assert (out / second).read_bytes() == srv.binlog_files()[-1].read_bytes()


# ------------------------------------------------------------------ errors


@pytest.fixture(params=FLAVORS)
def pw_user(request: pytest.FixtureRequest) -> Iterator[tuple[Server, str, str]]:
    srv = server(request, request.param)
    user, pw = "bk_stream", "Right-Pw-7f3a"
    hosts = ["localhost", "127.0.0.1", "%"]
    srv.execute([f"CREATE USER IF NOT EXISTS '{user}'@'{h}' IDENTIFIED BY '{pw}'" for h in hosts]
                + [f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'{h}'"
                   for h in hosts])
    yield srv, user, pw


def test_password_from_env_and_wrong_password(pw_user: tuple[Server, str, str]) -> None:
    srv, user, pw = pw_user
    url = f"{srv.flavor}://{user}@{srv.host}:{srv.port}"
    ok = run("dump", "--no-defaults", "--password-env", "BK_STREAM_PW", "--type",
             "FORMAT_DESCRIPTION", url, env={"BK_STREAM_PW": pw})
    assert ok.exit_code == 0, ok.output
    assert "FORMAT_DESCRIPTION" in ok.stdout

    wrong = "Wrong-Pw-91c2"
    for cmd in (["dump"], ["fetch"]):
        args = [*cmd, "--no-defaults", "--password-env", "BK_STREAM_PW", url]
        if cmd == ["fetch"]:
            args.append("/nonexistent/never-created")
        res = run(*args, env={"BK_STREAM_PW": wrong})
        line = one_error_line(res)
        assert "Access denied" in line
        assert wrong not in res.output and pw not in res.output
    # a password in the URL is masked too
    res = run("dump", "--no-defaults", f"{srv.flavor}://{user}:{wrong}@{srv.host}:{srv.port}")
    line = one_error_line(res)
    assert wrong not in line and f"{user}:***@" in line


def test_unreachable_host(tmp_path: Path) -> None:
    port = free_port()
    for args in (["dump", f"mysql://root:Secret-x1@127.0.0.1:{port}"],
                 ["fetch", f"mariadb://root:Secret-x1@127.0.0.1:{port}", str(tmp_path)]):
        res = run(*args, "--no-defaults", "--connect-timeout", "3")
        line = one_error_line(res)
        assert "cannot connect" in line and "Secret-x1" not in line


def test_purged_start_file(server_factory: ServerFactory, tmp_path: Path) -> None:
    srv = server_factory("mariadb", binlog_checksum="NONE")
    srv.flush_logs()
    srv.flush_logs()
    files = srv.binlog_files()
    srv.execute(f"PURGE BINARY LOGS TO '{files[-1].name}'")
    gone = files[0].name
    for args in (["dump", "--start-file", gone, srv.url],
                 ["fetch", "--start-file", gone, srv.url, str(tmp_path / "out")]):
        line = one_error_line(run(*args))
        assert "server error 1236" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # by default the dump starts at the first file the server still has
    res = run("dump", "--format", "jsonl", "--type", "FORMAT_DESCRIPTION", srv.url)
    assert res.exit_code == 0 and records(res.stdout)[0]["file"] == files[-1].name


def test_no_binary_log(server_factory: ServerFactory) -> None:
    srv = server_factory("mariadb", skip_log_bin=None)
    line = one_error_line(run("dump", srv.url))
    assert "not using binary logging" in line
    line = one_error_line(run("dump", "--start-file", "binlog.000001", srv.url))
    assert "binary logging is not enabled" in line
