"""``binlogkit tail URL --checkpoint CP`` against live lab servers: JSON Lines
and Debezium output, filters, a second run continuing from the checkpoint,
SIGINT stopping after the current transaction with the checkpoint saved,
and errors as one line with exit status 2."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from binlogkit.lab import Server

FLAVORS = ["mariadb", "mysql"]
CHANGE_KEYS = {"op", "before", "after", "source"}
SOURCE_KEYS = {"flavor", "server_id", "file", "pos", "gtid", "ts_ms", "schema", "table", "row",
               "snapshot", "thread", "query"}
ENVELOPE_KEYS = {"before", "after", "source", "op", "ts_ms", "ts_us", "ts_ns", "transaction"}
DEBEZIUM_SOURCE_KEYS = {"version", "connector", "name", "ts_ms", "ts_us", "ts_ns", "snapshot",
                        "db", "sequence", "table", "server_id", "gtid", "file", "pos", "row",
                        "thread", "query"}


# ------------------------------------------------------------------ helpers


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    from binlogkit.cli import main  # noqa: PLC0415

    return CliRunner().invoke(main, ["tail", *args], env=env, catch_exceptions=False)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def server(request: pytest.FixtureRequest, flavor: str) -> Server:
    return request.getfixturevalue(f"{flavor}_server")  # type: ignore[no-any-return]


def fresh_db(srv: Server, *tables: str) -> str:
    db = f"tail_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}"]
                + [f"CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(20))" for t in tables])
    return db


def one_error_line(res: Result) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert res.stdout == ""
    err = res.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("binlogkit: error: "), res.stderr
    return err[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checkpoint(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


# ------------------------------------------------------------------ output, resume


@pytest.mark.parametrize("flavor", FLAVORS)
def test_jsonl_snapshot_then_changes(request: pytest.FixtureRequest, flavor: str,
                                     tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, "t")
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b')")
    cp = tmp_path / "cp.json"

    res = run(srv.url, "--checkpoint", str(cp), "--no-follow", "--include", f"{db}.*")
    assert res.exit_code == 0, res.output
    out = lines(res.stdout)
    assert [r.get("type", r.get("op")) for r in out] == ["begin", "r", "r", "commit"]
    begin, commit = out[0], out[-1]
    assert begin["snapshot"] is True and begin["events"] == 2 and begin["id"] == commit["id"]
    for rec in out[1:3]:
        assert set(rec) == CHANGE_KEYS and set(rec["source"]) == SOURCE_KEYS
        assert rec["source"]["snapshot"] is True and rec["before"] is None
    assert [r["after"] for r in out[1:3]] == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    assert commit["data_collections"] == [{"data_collection": f"{db}.t", "event_count": 2}]
    saved = checkpoint(cp)
    assert saved["position"] == commit["end"] and saved["in_flight"] is None
    assert saved["flavor"] == flavor

    srv.execute(["BEGIN", f"INSERT INTO {db}.t VALUES (3, 'c')",
                 f"UPDATE {db}.t SET v = 'A' WHERE id = 1",
                 f"DELETE FROM {db}.t WHERE id = 2", "COMMIT"])
    res = run(srv.url, "--checkpoint", str(cp), "--no-follow", "--include", f"{db}.*")
    assert res.exit_code == 0, res.output
    out = lines(res.stdout)
    assert [r.get("type", r.get("op")) for r in out] == ["begin", "c", "u", "d", "commit"]
    begin, commit = out[0], out[-1]
    assert begin["gtid"] and begin["id"] == begin["gtid"] == commit["gtid"]
    assert "snapshot" not in begin and "redelivered" not in commit
    assert [(r["before"], r["after"]) for r in out[1:4]] == [
        (None, {"id": 3, "v": "c"}),
        ({"id": 1, "v": "a"}, {"id": 1, "v": "A"}),
        ({"id": 2, "v": "b"}, None)]
    src = out[1]["source"]
    assert (src["schema"], src["table"], src["gtid"], src["snapshot"]) == \
        (db, "t", begin["gtid"], False)
    assert [r["source"]["row"] for r in out[1:4]] == [0, 1, 2]
    assert checkpoint(cp)["position"] == commit["end"]

    # nothing new: nothing printed, the checkpoint unchanged
    res = run(srv.url, "--checkpoint", str(cp), "--no-follow", "--include", f"{db}.*")
    assert res.exit_code == 0 and res.stdout == ""
    assert checkpoint(cp)["position"] == commit["end"]


def test_debezium_envelope_to_file(mysql_server: Server, tmp_path: Path) -> None:
    srv = mysql_server
    db = fresh_db(srv, "t")
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a')")
    cp, out_file = tmp_path / "cp.json", tmp_path / "out.jsonl"
    args = [srv.url, "--checkpoint", str(cp), "--no-follow", "--format", "debezium",
            "--include", db, "-o", str(out_file)]
    res = run(*args)
    assert res.exit_code == 0 and res.stdout == "", res.output
    srv.execute(f"UPDATE {db}.t SET v = 'b' WHERE id = 1")
    assert run(*args).exit_code == 0
    recs = lines(out_file.read_text())  # appended by the second run
    assert [r.get("status", r.get("op")) for r in recs] == ["BEGIN", "r", "END",
                                                           "BEGIN", "u", "END"]
    snap, upd = recs[1], recs[4]
    for rec in (snap, upd):
        assert set(rec) == ENVELOPE_KEYS and set(rec["source"]) == DEBEZIUM_SOURCE_KEYS
        assert rec["source"]["connector"] == "mysql"
        assert (rec["source"]["db"], rec["source"]["table"]) == (db, "t")
    assert snap["source"]["snapshot"] in ("true", "last") and snap["transaction"] is None
    assert upd["source"]["snapshot"] == "false"
    assert (upd["before"], upd["after"]) == ({"id": 1, "v": "a"}, {"id": 1, "v": "b"})
    assert upd["transaction"] == {"id": upd["source"]["gtid"], "total_order": 1,
                                  "data_collection_order": 1}
    end = recs[5]
    assert end["id"] == recs[3]["id"] == upd["source"]["gtid"]
    assert end["event_count"] == 1
    assert end["data_collections"] == [{"data_collection": f"{db}.t", "event_count": 1}]


def test_include_exclude(mariadb_server: Server, tmp_path: Path) -> None:
    srv = mariadb_server
    db = fresh_db(srv, "a", "b", "c")
    cp = tmp_path / "cp.json"
    args = [srv.url, "--checkpoint", str(cp), "--no-follow",
            "--include", f"{db}.*", "--exclude", f"{db}.b", "--exclude", f"{db}.[c]"]
    assert run(*args).exit_code == 0
    srv.execute([f"INSERT INTO {db}.{t} VALUES (1, '{t}')" for t in "abc"])
    res = run(*args)
    assert res.exit_code == 0, res.output
    changes = [r for r in lines(res.stdout) if "op" in r]
    assert [(r["source"]["table"], r["after"]) for r in changes] == [("a", {"id": 1, "v": "a"})]


# ------------------------------------------------------------------ SIGINT


class Tail:
    """``binlogkit tail`` in a subprocess, stdout lines read by a thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "binlogkit", "tail", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
        self.q: queue.Queue[str] = queue.Queue()
        self.out: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)

    def until(self, pred: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.out):
            assert time.monotonic() < deadline, f"timed out; got {self.out[-3:]}"
            assert self.proc.poll() is None or not self.q.empty(), \
                self.proc.stderr.read()  # type: ignore[union-attr]
            try:
                self.out.append(json.loads(self.q.get(timeout=0.2)))
            except queue.Empty:
                pass

    def finish(self, timeout: float = 15.0) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        while not self.q.empty():
            self.out.append(json.loads(self.q.get()))
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for t in started:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()


def test_sigint_stops_with_the_checkpoint_saved(mariadb_server: Server, tmp_path: Path,
                                                tails: list[Tail]) -> None:
    srv = mariadb_server
    db = fresh_db(srv, "t")
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a')")
    cp = tmp_path / "cp.json"
    args = [srv.url, "--checkpoint", str(cp), "--include", db, "--heartbeat", "0.5",
            "--batch", "1000"]
    tail = Tail(*args, "--follow")
    tails.append(tail)
    tail.until(lambda out: any(r.get("type") == "commit" for r in out))  # the snapshot
    srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 'x')" for i in range(2, 6)])
    tail.until(lambda out: sum(r.get("op") == "c" for r in out) == 4)
    tail.proc.send_signal(signal.SIGINT)
    rc, err = tail.finish()
    assert rc == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert tail.out[-1]["type"] == "commit"  # stopped between transactions
    saved = checkpoint(cp)
    assert saved["position"] == tail.out[-1]["end"] and saved["in_flight"] is None

    # a restart continues after it: only what came later
    srv.execute(f"INSERT INTO {db}.t VALUES (6, 'y')")
    res = run(*args, "--no-follow")
    assert res.exit_code == 0, res.output
    assert [r["after"] for r in lines(res.stdout) if "op" in r] == [{"id": 6, "v": "y"}]


# ------------------------------------------------------------------ errors


def test_unreachable_host(tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    res = run(f"mysql://root:Secret-x1@127.0.0.1:{free_port()}", "--checkpoint", str(cp),
              "--no-follow", "--no-defaults", "--connect-timeout", "3")
    line = one_error_line(res)
    assert "cannot connect" in line and "Secret-x1" not in line and "root:***@" in line
    assert not cp.exists()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_password_never_printed(request: pytest.FixtureRequest, flavor: str,
                                      tmp_path: Path) -> None:
    srv = server(request, flavor)
    user, pw, wrong = "bk_tail", "Right-Pw-3e1b", "Wrong-Pw-77d0"
    srv.execute([f"CREATE USER IF NOT EXISTS '{user}'@'{h}' IDENTIFIED BY '{pw}'"
                 for h in ("localhost", "127.0.0.1", "%")])
    cp = tmp_path / "cp.json"
    url = f"{flavor}://{user}@{srv.host}:{srv.port}"
    res = run(url, "--checkpoint", str(cp), "--no-follow", "--no-defaults",
              "--password-env", "BK_TAIL_PW", env={"BK_TAIL_PW": wrong})
    line = one_error_line(res)
    assert "Access denied" in line and wrong not in res.output and pw not in res.output
    res = run(f"{flavor}://{user}:{wrong}@{srv.host}:{srv.port}", "--checkpoint", str(cp),
              "--no-follow", "--no-defaults")
    line = one_error_line(res)
    assert wrong not in line and f"{user}:***@" in line
    assert not cp.exists()


def test_snapshot_never_without_checkpoint(mariadb_server: Server, tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    line = one_error_line(run(mariadb_server.url, "--checkpoint", str(cp), "--no-follow",
                              "--snapshot", "never"))
    assert "no checkpoint" in line and "--snapshot never" in line
    assert not cp.exists()


def test_bad_url(tmp_path: Path) -> None:
    line = one_error_line(run("postgres://u:Pw-zz9@h", "--checkpoint", str(tmp_path / "c.json")))
    assert "mysql://" in line and "Pw-zz9" not in line


def test_corrupt_checkpoint_is_one_line(mariadb_server: Server, tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    cp.write_text("{not json")
    res = CliRunner().invoke(__import__("binlogkit.cli", fromlist=["main"]).main,
                             ["tail", mariadb_server.url, "--checkpoint", str(cp),
                              "--no-follow"])
    assert res.exit_code == 2 and "corrupt" in res.stderr and len(res.stderr.splitlines()) == 1
    assert cp.read_text() == "{not json"  # left alone
