"""The real-server harness: start, query, binlog files, stop, CLI."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from binlogkit.cli import main
from binlogkit.lab import (
    Flavor,
    LabError,
    Server,
    list_servers,
    run_in_sid,
    sid_path,
    start_server,
    unavailable_reason,
)

ServerFactory = Callable[..., Server]
MAGIC = b"\xfebin"
FLAVORS: list[Flavor] = ["mariadb", "mysql"]
OPTION_SETS: list[dict[str, str | None]] = [
    {},
    {"binlog_format": "STATEMENT", "binlog_checksum": "NONE"},
    {"binlog_format": "MIXED", "binlog_row_image": "MINIMAL"},
]

WORKLOAD = [
    "CREATE DATABASE IF NOT EXISTS lab_t",
    "DROP TABLE IF EXISTS lab_t.t",
    "CREATE TABLE lab_t.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20))",
    "INSERT INTO lab_t.t (v) VALUES ('a'), ('b'), ('c')",
    "UPDATE lab_t.t SET v = 'bb' WHERE id = 2",
    "DELETE FROM lab_t.t WHERE id = 3",
]


def _skip_unless(flavor: Flavor) -> None:
    reason = unavailable_reason(flavor)
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("options", OPTION_SETS, ids=["default", "stmt-nocrc", "mixed-minimal"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_options_reach_server(
    server_factory: ServerFactory, flavor: Flavor, options: dict[str, str | None]
) -> None:
    srv = server_factory(flavor, **options)
    assert srv.flavor == flavor
    assert ("MariaDB" in srv.version) == (flavor == "mariadb")
    expect = {k.replace("_", "-"): v for k, v in options.items()}
    rows = srv.execute([*WORKLOAD, "SELECT @@binlog_format, @@binlog_checksum, @@log_bin"])
    fmt, checksum, log_bin = rows[0]
    assert fmt == expect.get("binlog-format", "ROW")
    assert checksum == expect.get("binlog-checksum", "CRC32")
    assert int(log_bin) == 1
    if "binlog-row-image" in expect:
        assert srv.variable("binlog_row_image") == expect["binlog-row-image"]
    assert srv.execute("SELECT id, v FROM lab_t.t ORDER BY id") == [(1, "a"), (2, "bb")]

    before = srv.binlog_files()
    srv.flush_logs()
    files = srv.binlog_files()
    assert files[: len(before)] == before and len(files) == len(before) + 1
    assert files == sorted(files)
    for f in files:
        assert f.is_file(), f
        assert f.read_bytes()[:4] == MAGIC
    # the workload is in the closed file (statement text or table name)
    assert b"lab_t" in before[-1].read_bytes()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_default_fixtures(
    request: pytest.FixtureRequest, flavor: Flavor
) -> None:
    srv: Server = request.getfixturevalue(f"{flavor}_server")
    assert srv.url.startswith(("mysql://", "mariadb://"))
    assert srv.execute("SELECT 1") == [(1,)]
    if flavor == "mysql":
        assert srv.variable("gtid_mode") == "ON"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_stop_removes_process(flavor: Flavor, tmp_path: Path) -> None:
    _skip_unless(flavor)
    srv = start_server(flavor, basedir=tmp_path, options={"binlog-format": "STATEMENT"})
    assert srv.pid is not None and srv.datadir is not None and srv.instance_dir is not None
    assert srv.is_running()
    assert srv.name in {s.name for s in list_servers()}
    assert srv.socket is not None and srv.socket.exists()
    conn = srv.connect()
    conn.close()
    srv.stop(remove_data=True)
    assert not srv.is_running()
    with pytest.raises(ProcessLookupError):
        os.kill(srv.pid, 0)
    assert srv.name not in {s.name for s in list_servers()}
    assert not srv.instance_dir.exists()
    assert not (tmp_path / str(srv.name)).exists()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_bad_option_reports_error_log(flavor: Flavor) -> None:
    _skip_unless(flavor)
    with pytest.raises(LabError, match="unknown variable"):
        start_server(flavor, options={"no-such-option-xyz": "1"})
    with pytest.raises(ValueError, match="set by the harness"):
        start_server(flavor, options={"datadir": "/tmp/x"})


def test_attach(mariadb_server: Server) -> None:
    other = Server.attach(mariadb_server.url)
    assert other.flavor == "mariadb" and other.version == mariadb_server.version
    assert not other.managed
    assert other.execute("SELECT 2") == [(2,)]
    with pytest.raises(LabError):
        other.stop()
    if mariadb_server.managed:
        assert other.binlog_files() == mariadb_server.binlog_files()
    with pytest.raises(LabError, match="cannot connect"):
        Server.attach("mysql://root@127.0.0.1:1")


def test_run_in_sid_maps_host_files(
    mysql_server: Server, sid_root: Path, tmp_path: Path
) -> None:
    mysql_server.execute(WORKLOAD)
    mysql_server.flush_logs()
    closed = mysql_server.binlog_files()[-2]
    copy = tmp_path / "copy.000001"
    shutil.copyfile(closed, copy)
    inner = sid_path(closed)
    assert not inner.startswith(str(sid_root)) and (sid_root / inner.lstrip("/")).exists()
    res = run_in_sid(["mysqlbinlog", "-vv", "--base64-output=decode-rows", copy],
                     capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "lab_t" in res.stdout
    assert not list((sid_root / "tmp").glob("binlogkit-*/copy.000001"))  # cleaned up
    mapped = sid_path(copy)
    assert mapped.startswith("/tmp/binlogkit-") and mapped.endswith("/copy.000001")
    shutil.rmtree(sid_root / Path(mapped).parent.relative_to("/"))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_cli_start_list_stop(
    flavor: Flavor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skip_unless(flavor)
    monkeypatch.setenv("BINLOGKIT_LAB_DIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(main, ["lab", "start", flavor, "-o", "binlog-format=MIXED",
                               "--name", f"cli-{flavor}"])
    assert res.exit_code == 0, res.output
    fields = dict(line.split(":", 1) for line in res.output.splitlines())
    assert fields["name"].strip() == f"cli-{flavor}"
    url = fields["url"].strip()
    assert Server.attach(url).variable("binlog_format") == "MIXED"

    res = runner.invoke(main, ["lab", "list", "--json"])
    assert res.exit_code == 0
    listed = [json.loads(line) for line in res.output.splitlines()]
    assert [(d["name"], d["running"]) for d in listed] == [(f"cli-{flavor}", True)]

    res = runner.invoke(main, ["lab", "stop", f"cli-{flavor}"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"stopped cli-{flavor}")
    res = runner.invoke(main, ["lab", "list"])
    assert res.output.strip() == "no lab servers"

    res = runner.invoke(main, ["lab", "stop", "nope"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["lab", "start", flavor, "-o", "no-such-option-xyz=1"])
    assert res.exit_code == 2 and "unknown variable" in res.output
