"""``binlogkit gtid``: set arithmetic checked against live MySQL's GTID functions,
the repo's binlogs, and two live servers made to diverge."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from binlogkit.cli import main
from binlogkit.cli.servers import ConnectOptions, ServerURL, mask_url, read_option_file
from binlogkit.lab import Server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MYSQL1 = FIXTURES / "mysql/tagged-gtids.000001"
MYSQL2 = FIXTURES / "mysql/tagged-gtids.000002"
MARIA1 = FIXTURES / "mariadb/row.000001"
MARIA2 = FIXTURES / "mariadb/row.000002"

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4d8b564f-03f4-4975-856a-0e65c3105328"
FX = "041d17bf-e5aa-11f1-9658-02fc00000001"  # server_uuid in the MySQL fixtures
FY = "11111111-2222-3333-4444-555555555555"

PASSWORD = "Zq8-unlikely-S3cret"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.my.cnf or MYSQL_PWD of the machine leaks into a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MYSQL_PWD", raising=False)


def gtid(*args: str | Path, input: str | None = None,
         env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["gtid", *map(str, args)], input=input, env=env,
                              catch_exceptions=False)


def ok(*args: str | Path, **kw: str | None) -> str:
    res = gtid(*args, **kw)  # type: ignore[arg-type]
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res.stdout


def one_line_error(res: Result) -> str:
    """Exit 2, nothing on stdout, one ``binlogkit: error:`` line on stderr."""
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("binlogkit: error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


# --- literal sets ----------------------------------------------------------------------


def test_normalize_literals() -> None:
    assert ok("normalize", f"{U1.upper()}:7-9:1-5:6, {U1}:12") == f"{U1}:1-9:12\n"
    # Tags: lowercased, after the untagged intervals, sorted; UUIDs sorted.
    out = ok("normalize", f"{U2}:Beta:3,{U2}:1, {U1}:alpha:1-2:4:3,{U2}:beta:1-2")
    assert out == f"{U1}:alpha:1-4,{U2}:1:beta:1-3\n"
    assert ok("normalize", "") == "\n"
    assert ok("normalize", f"{U1}:1", f"{U1}:2:1") == f"{U1}:1\n{U1}:1-2\n"


def test_operations_on_literals() -> None:
    a, b = f"{U1}:1-10:20-30,{U2}:5", f"{U1}:5-25,{U2}:t:1"
    assert ok("union", a, b) == f"{U1}:1-30,{U2}:5:t:1\n"
    assert ok("intersect", a, b) == f"{U1}:5-10:20-25\n"
    assert ok("subtract", a, b) == f"{U1}:1-4:26-30,{U2}:5\n"
    assert ok("subtract", a, b, f"{U2}:5") == f"{U1}:1-4:26-30\n"
    assert ok("count", a, b, "") == "22\n22\n0\n"
    assert ok("union", f"{U1}:1-5", f"{U1}:1-10") == f"{U1}:1-10\n"  # overlapping


def test_predicates_exit_status() -> None:
    a = f"{U1}:1-10:alpha:3"
    assert gtid("contains", a, f"{U1}:7").exit_code == 0
    assert gtid("contains", a, f"{U1}:alpha:3", f"{U1}:2-4").stdout == "true\n"
    res = gtid("contains", a, f"{U1}:alpha:4")
    assert (res.exit_code, res.stdout) == (1, "false\n")
    assert gtid("contains", "-q", a, f"{U1}:11").stdout == ""
    assert gtid("subset", f"{U1}:2-5", a).exit_code == 0
    assert gtid("subset", a, f"{U1}:2-5").exit_code == 1
    assert gtid("subset", "", f"{U1}:2-5").exit_code == 0
    assert gtid("equal", f"{U1}:1-3:4-10,{U1}:alpha:3", a).exit_code == 0
    assert gtid("equal", f"{U1}:1-9:alpha:3", a).exit_code == 1


# Cases checked against the live server's own functions.
MYSQL_CASES = [
    (f"{U1}:1-10:20-30,{U2}:5", f"{U1}:5-25,{U2}:t:1"),
    (f"{U1}:1-5", f"{U1}:1-10"),
    (f"{U1}:1-3:5:7-9,{U2}:x:1-4:9,{U2}:1", f"{U1}:2:8,{U2}:x:4-9"),
    (f"{U2}:b:1,{U2}:A:2,{U1}:1-100", f"{U1}:50,{U2}:a:1-2"),
    ("", f"{U1}:1"),
]


def test_operations_match_mysql(mysql_server: Server) -> None:
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            def q(sql: str, *args: str) -> object:
                cur.execute(sql, args)
                row = cur.fetchone()
                assert row is not None
                return row[0]

            def norm(text: object) -> str:
                return str(text).replace("\n", "")

            for a, b in MYSQL_CASES:
                assert ok("subtract", a, b) == norm(q("SELECT GTID_SUBTRACT(%s, %s)", a, b)) + "\n"
                assert ok("subtract", b, a) == norm(q("SELECT GTID_SUBTRACT(%s, %s)", b, a)) + "\n"
                union = norm(q("SELECT GTID_SUBTRACT(CONCAT(%s, ',', %s), '')", a, b)
                             if a else q("SELECT GTID_SUBTRACT(%s, '')", b))
                assert ok("union", a, b) == union + "\n"
                inter = norm(q("SELECT GTID_SUBTRACT(%s, GTID_SUBTRACT(%s, %s))", a, a, b))
                assert ok("intersect", a, b) == inter + "\n"
                assert ok("normalize", a) == norm(q("SELECT GTID_SUBTRACT(%s, '')", a)) + "\n"
                for x, y in ((a, b), (b, a)):
                    want = q("SELECT GTID_SUBSET(%s, %s)", x, y)
                    assert gtid("subset", x, y).exit_code == (0 if want else 1), (x, y)
    finally:
        conn.close()


def test_set_from_file_and_stdin(tmp_path: Path) -> None:
    f = tmp_path / "set.txt"
    f.write_text(f"{U2}:3-4,\n{U1}:1-5\n")  # the server's multi-line form
    assert ok("normalize", f"@{f}") == f"{U1}:1-5,{U2}:3-4\n"
    assert ok("count", "@-", input=f"{U1}:1-5\n") == "5\n"
    assert gtid("subset", f"{U1}:2", f"@{f}").exit_code == 0


def test_errors_are_one_line(tmp_path: Path) -> None:
    line = one_line_error(gtid("normalize", f"{U1}:0"))
    assert repr(f"{U1}:0") in line
    line = one_line_error(gtid("union", f"{U1}:1", "0-1-5"))
    assert "cannot mix" in line
    line = one_line_error(gtid("count", "nosuch/file.000001"))
    assert "nosuch/file.000001" in line
    line = one_line_error(gtid("normalize", "@/nonexistent/set.txt"))
    assert "/nonexistent/set.txt: cannot read" in line
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert "not a binlog" in one_line_error(gtid("count", text))
    assert "count needs a MySQL" in one_line_error(gtid("count", "0-1-5"))
    assert gtid("diff", f"{U1}:x").exit_code == 2  # usage error from click


# --- binlog files ----------------------------------------------------------------------


def test_binlog_gtids_mysql() -> None:
    first = f"{FX}:1-3:alpha:1-2:beta_2:1:xa_tag:1-2,{FY}:100:gamma:10"
    assert ok("normalize", MYSQL1) == first + "\n"
    # The server wrote the second file's PREVIOUS_GTIDS: it is what the first held.
    prev2 = (f"{FX}:1-3,{FX}:alpha:1-2,{FX}:beta_2:1,{FX}:xa_tag:1-2,{FY}:100,{FY}:gamma:10")
    assert gtid("equal", MYSQL1, prev2).exit_code == 0
    second = f"{FX}:1-4:alpha:1-3:beta_2:1:xa_tag:1-2,{FY}:100:gamma:10"
    assert ok("normalize", MYSQL2) == second + "\n"
    assert ok("count", MYSQL1, MYSQL2) == "10\n12\n"


def test_diff_binlogs_mysql() -> None:
    res = gtid("diff", MYSQL1, MYSQL2)
    assert res.exit_code == 1
    assert res.stdout == (f"A: {MYSQL1}\nB: {MYSQL2}\n"
                          "only in A (0 transactions): (none)\n"
                          f"only in B (2 transactions): {FX}:4:alpha:3\n")
    res = gtid("diff", "--json", MYSQL2, MYSQL1)
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["flavor"] == "mysql" and doc["equal"] is False
    assert (doc["only_a"], doc["only_a_count"]) == (f"{FX}:4:alpha:3", 2)
    assert (doc["only_b"], doc["only_b_count"]) == ("", 0)
    assert doc["common_count"] == 10
    res = gtid("diff", MYSQL2, f"{FX}:1-4:alpha:1-3:beta_2:1:xa_tag:1-2,{FY}:100:gamma:10")
    assert (res.exit_code, res.stdout.splitlines()[-1]) == (0, "equal (12 transactions)")
    assert json.loads(gtid("diff", "--json", MYSQL1, MYSQL1).stdout)["equal"] is True


def test_binlog_index(tmp_path: Path) -> None:
    index = tmp_path / "binlog.index"
    # An index names files in its own directory.
    for f in (MYSQL1, MYSQL2):
        (tmp_path / f.name).symlink_to(f)
    index.write_text(f"./{MYSQL1.name}\n./{MYSQL2.name}\n")
    assert gtid("equal", index, MYSQL2).exit_code == 0


def test_binlog_gtids_mariadb() -> None:
    # The server wrote row.000002's GTID_LIST: the state after row.000001.
    assert ok("normalize", MARIA1) == "0-1-102,2-1-1\n"
    assert gtid("equal", MARIA1, "0-1-102,2-1-1").exit_code == 0
    assert ok("normalize", MARIA2) == "0-1-103,2-1-2\n"
    res = gtid("diff", MARIA1, MARIA2)
    assert res.exit_code == 1
    assert res.stdout == (f"A: {MARIA1}\nB: {MARIA2}\n"
                          "domain 0: A 0-1-102  B 0-1-103  B is ahead\n"
                          "domain 2: A 2-1-1  B 2-1-2  B is ahead\n"
                          "only in A: (none)\nonly in B: 0-1-103,2-1-2\n")
    doc = json.loads(gtid("diff", "--json", MARIA2, MARIA1).stdout)
    assert doc["flavor"] == "mariadb" and doc["only_a"] == "0-1-103,2-1-2"
    assert doc["domains"][0] == {"domain": 0, "a": "0-1-103", "b": "0-1-102",
                                 "status": "a_ahead"}
    assert gtid("subset", MARIA1, MARIA2).exit_code == 0
    assert gtid("subset", MARIA2, MARIA1).exit_code == 1
    assert gtid("contains", MARIA1, "0-1-50").exit_code == 0
    assert gtid("contains", MARIA1, "2-1-2").exit_code == 1
    assert "cannot mix" in one_line_error(gtid("diff", MARIA1, MYSQL1))


def test_mariadb_positions() -> None:
    assert ok("union", "0-1-5,1-1-3", "0-2-7,2-1-1") == "0-2-7,1-1-3,2-1-1\n"
    assert ok("intersect", "0-1-5,1-1-3", "0-2-7,2-1-1") == "0-1-5\n"
    assert ok("subtract", "0-2-7,1-1-3", "0-1-5,2-1-1") == "0-2-7,1-1-3\n"
    assert ok("subtract", "0-1-5", "0-2-7") == "\n"
    res = gtid("diff", "0-1-5,1-1-3", "0-2-5,1-1-3,3-1-1")
    assert res.exit_code == 1
    assert "domain 0: A 0-1-5  B 0-2-5  same seq_no, different server: diverged" in res.stdout
    assert "domain 3: A -  B 3-1-1  only in B" in res.stdout
    assert gtid("equal", "1-1-3,0-1-5", "0-1-5,1-1-3").exit_code == 0
    assert gtid("equal", "0-1-5", "0-2-5").exit_code == 1
    assert gtid("subset", "0-1-5", "0-2-5").exit_code == 0  # reached: seq_no only
    assert gtid("subset", "", "0-2-5").exit_code == 0


def test_errant_offline() -> None:
    src, rep = f"{U1}:1-100", f"{U1}:1-90,{U2}:1-2:tg:5"
    res = gtid("errant", "--source", src, "--replica", rep, "--fix", "none")
    assert (res.exit_code, res.stdout) == (1, f"{U2}:1-2:tg:5\n")
    res = gtid("errant", "--source", src, "--replica", rep)
    assert res.exit_code == 1
    sql = [ln for ln in res.stdout.splitlines() if not ln.startswith("--")]
    assert sql == [f"SET GTID_NEXT='{U2}:1'; BEGIN; COMMIT;",
                   f"SET GTID_NEXT='{U2}:2'; BEGIN; COMMIT;",
                   f"SET GTID_NEXT='{U2}:tg:5'; BEGIN; COMMIT;",
                   "SET GTID_NEXT='AUTOMATIC';"]
    assert "not yet applied 10 transactions" in res.stdout
    res = gtid("errant", "--source", src, "--replica", rep, "--fix", "reset")
    sql = [ln for ln in res.stdout.splitlines() if not ln.startswith("--")]
    assert sql == ["STOP REPLICA;", "RESET BINARY LOGS AND GTIDS;",
                   f"SET GLOBAL gtid_purged = '{U1}:1-90';", "START REPLICA;"]
    doc = json.loads(gtid("errant", "--json", "--source", src, "--replica", rep).stdout)
    assert (doc["errant"], doc["errant_count"], doc["replica_missing_count"]) == (
        f"{U2}:1-2:tg:5", 3, 10)
    assert doc["inject_on_source"][-1] == "SET GTID_NEXT='AUTOMATIC';"
    res = gtid("errant", "--source", rep, "--replica", f"{U1}:5")
    assert res.exit_code == 0 and "no errant" in res.stdout
    res = gtid("errant", "--source", "0-1-10", "--replica", "0-1-8,0-2-9,1-2-1", "--fix", "none")
    assert (res.exit_code, res.stdout) == (1, "0-2-9,1-2-1\n")


# --- URLs, option files ----------------------------------------------------------------


def test_url_masking() -> None:
    assert mask_url("mysql://u:p@ss:w@h:1") == "mysql://u:***@h:1"
    assert mask_url("mysql://u:pa/ss@h") == "mysql://u:***@h"
    assert mask_url("mysql://u@h:1") == "mysql://u@h:1"
    url = ServerURL.parse("mariadb://me:se%40cret@db.example:3307?gtid=binlog_state")
    assert (url.user, url.password, url.host, url.port) == ("me", "se@cret", "db.example", 3307)
    assert "se@cret" not in repr(url)
    assert str(url) == "mariadb://me:***@db.example:3307?gtid=binlog_state"
    line = one_line_error(gtid("count", "mysql://me:Secr3t/x@h:99999"))
    assert "Secr3t" not in line and "***" in line


def test_option_file_parsing(tmp_path: Path) -> None:
    inc = tmp_path / "inc.cnf"
    inc.write_text("[client]\nport = 3310\n")
    cnf = tmp_path / "my.cnf"
    cnf.write_text("# comment\n[mysqld]\npassword=nope\n[client]\nuser=alice\n"
                   "password = \"a b#c\\\\d\"  # trailing comment\nssl_ca=/x/ca.pem\n"
                   "loose-ssl-mode=VERIFY_CA\n!include inc.cnf\n[binlogkit]\nuser=bob\n")
    cnf.chmod(0o600)
    got = read_option_file(cnf, ("client", "binlogkit"))
    assert got == {"user": "bob", "password": "a b#c\\d", "ssl-ca": "/x/ca.pem",
                   "ssl-mode": "VERIFY_CA", "port": "3310"}


# --- live servers ----------------------------------------------------------------------


@dataclass
class Pair:
    source: Server
    replica: Server


def _wait_caught_up(pair: Pair) -> None:
    want = pair.source.variable("gtid_executed")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pair.replica.execute(f"SELECT GTID_SUBSET('{want}', @@GLOBAL.gtid_executed)")[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"replica did not catch up: {pair.replica.execute('SHOW REPLICA STATUS')}")


@pytest.fixture(scope="module")
def mysql_pair(server_factory) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    """Two MySQL servers (GTIDs on), the second replicating from the first; the
    source has a user with a password (not replicated: sql_log_bin=0)."""
    source = server_factory("mysql", server_id=7101)
    replica = server_factory("mysql", server_id=7102)
    replica.execute([
        "STOP REPLICA",
        f"CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT={source.port}, "
        "SOURCE_USER='root', SOURCE_PASSWORD='', SOURCE_AUTO_POSITION=1, "
        "GET_SOURCE_PUBLIC_KEY=1",
        "START REPLICA",
    ])
    source.execute([
        "SET SESSION sql_log_bin = 0",
        f"CREATE USER IF NOT EXISTS 'bk'@'%' IDENTIFIED BY '{PASSWORD}'",
        f"CREATE USER IF NOT EXISTS 'bktls'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL",
    ])
    source.execute(["CREATE DATABASE IF NOT EXISTS gtidcli",
                    "CREATE TABLE IF NOT EXISTS gtidcli.t (id INT PRIMARY KEY)",
                    "INSERT INTO gtidcli.t VALUES (1), (2)"])
    pair = Pair(source, replica)
    _wait_caught_up(pair)
    yield pair
    replica.execute(["STOP REPLICA", "RESET REPLICA ALL"])


def test_live_diff_and_errant(mysql_pair: Pair) -> None:
    src, rep = mysql_pair.source, mysql_pair.replica
    s_url, r_url = src.url, rep.url
    # In sync: equal, no errant transactions.
    res = gtid("diff", s_url, r_url)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert gtid("errant", "--source", s_url, "--replica", r_url).exit_code == 0
    # A write on the replica diverges it.
    rep.execute("INSERT INTO gtidcli.t VALUES (100)")
    rep_uuid = rep.variable("server_uuid")
    extra = rep.execute(f"SELECT GTID_SUBTRACT(@@GLOBAL.gtid_executed, "
                        f"'{src.variable('gtid_executed')}')")[0][0]
    assert extra.startswith(rep_uuid + ":")
    res = gtid("diff", s_url, r_url)
    assert res.exit_code == 1
    assert res.stdout.splitlines()[-1] == f"only in B (1 transaction): {extra}"
    assert res.stdout.splitlines()[-2] == "only in A (0 transactions): (none)"
    doc = json.loads(gtid("diff", "--json", s_url, r_url).stdout)
    assert (doc["only_b"], doc["only_a"]) == (extra, "")
    assert doc["b"] == f"{r_url} (gtid_executed)"
    res = gtid("errant", "--source", s_url, "--replica", r_url, "--fix", "none")
    assert (res.exit_code, res.stdout) == (1, extra + "\n")
    res = gtid("errant", "--source", s_url, "--replica", r_url)
    sql = [ln for ln in res.stdout.splitlines() if not ln.startswith("--")]
    assert sql == [f"SET GTID_NEXT='{extra}'; BEGIN; COMMIT;", "SET GTID_NEXT='AUTOMATIC';"]
    # The replica's binlogs hold exactly what it executed.
    index = rep.binlog_files()[0].parent / "binlog.index"
    assert gtid("equal", index, r_url).exit_code == 0
    # The printed fix works: run it on the source; the replica then has nothing errant.
    src.execute([st for line in sql for st in line.split(";") if st.strip()])
    _wait_caught_up(mysql_pair)
    res = gtid("errant", "--source", s_url, "--replica", r_url)
    assert res.exit_code == 0, res.stdout
    assert gtid("diff", s_url, r_url).exit_code == 0


def _no_secret(res: Result) -> None:
    assert PASSWORD not in res.stdout and PASSWORD not in res.stderr
    assert PASSWORD[:8] not in res.stdout + res.stderr


def test_live_passwords(mysql_pair: Pair, tmp_path: Path) -> None:
    src = mysql_pair.source
    url = f"mysql://bk@127.0.0.1:{src.port}"
    want = src.variable("gtid_executed").replace("\n", "")
    # Environment: MYSQL_PWD, then --password-env.
    res = gtid("normalize", url, env={"MYSQL_PWD": PASSWORD})
    assert (res.exit_code, res.stdout) == (0, want + "\n"), res.stderr
    _no_secret(res)
    res = gtid("normalize", "--password-env", "BK_PW", url, env={"BK_PW": PASSWORD})
    assert res.exit_code == 0, res.stderr
    _no_secret(res)
    # Option files: --defaults-file, and ~/.my.cnf by default.
    cnf = tmp_path / "bk.cnf"
    cnf.write_text(f"[client]\nuser = bk\npassword = {PASSWORD}\n")
    cnf.chmod(0o600)
    res = gtid("normalize", "--defaults-file", cnf, f"mysql://127.0.0.1:{src.port}")
    assert (res.exit_code, res.stdout) == (0, want + "\n"), res.stderr
    home_cnf = Path.home() / ".my.cnf"
    home_cnf.write_text(f"[client]\npassword = {PASSWORD}\n")
    home_cnf.chmod(0o600)
    assert gtid("count", url).exit_code == 0
    one_line_error(gtid("count", "--no-defaults", url))  # no password: denied
    home_cnf.unlink()
    # Wrong passwords, from everywhere: one line, exit 2, secret never shown.
    for res in (
        gtid("count", url, env={"MYSQL_PWD": PASSWORD + "x"}),
        gtid("count", f"mysql://bk:{PASSWORD}x@127.0.0.1:{src.port}"),
        gtid("diff", f"mysql://bk:{PASSWORD}@127.0.0.1:1", url),
    ):
        line = one_line_error(res)
        _no_secret(res)
        assert "cannot connect" in line
    line = one_line_error(gtid("count", f"mysql://bk:{PASSWORD}x@127.0.0.1:{src.port}"))
    assert f"mysql://bk:***@127.0.0.1:{src.port}: cannot connect: Access denied" in line
    line = one_line_error(gtid("count", "--password-env", "NOPE_NOT_SET", url))
    assert "NOPE_NOT_SET" in line


def test_live_tls(mysql_pair: Pair, tmp_path: Path) -> None:
    src = mysql_pair.source
    assert src.datadir is not None
    ca = src.datadir / "ca.pem"
    url = f"mysql://bktls@127.0.0.1:{src.port}"
    env = {"MYSQL_PWD": PASSWORD}
    # The user REQUIREs SSL: TLS by default (when offered), or asked for; refused
    # when the option file disables it.
    assert gtid("count", url, env=env).exit_code == 0
    assert gtid("count", "--ssl-ca", ca, "--no-ssl-verify", url, env=env).exit_code == 0
    assert gtid("count", "--no-ssl-verify", url, env=env).exit_code == 0
    cnf = tmp_path / "tls.cnf"
    cnf.write_text(f"[client]\nssl-mode=DISABLED\npassword={PASSWORD}\n")
    cnf.chmod(0o600)
    res = gtid("count", "--defaults-file", cnf, url)
    assert "Access denied" in one_line_error(res)
    _no_secret(res)
    assert gtid("count", "--defaults-file", cnf, "--no-ssl-verify", url).exit_code == 0
    # Verification on: the auto-generated certificate does not name 127.0.0.1.
    line = one_line_error(gtid("count", "--ssl-ca", ca, url, env=env))
    assert "cannot connect" in line and "certificate" in line.lower()
    cnf.write_text(f"[client]\nssl-mode=VERIFY_CA\nssl-ca={ca}\npassword={PASSWORD}\n")
    assert gtid("count", "--defaults-file", cnf, url).exit_code == 0
    cnf.write_text(f"[client]\nssl-mode=VERIFY_IDENTITY\nssl-ca={ca}\npassword={PASSWORD}\n")
    one_line_error(gtid("count", "--defaults-file", cnf, url))
    # Checking the server module directly: the session is encrypted.
    from binlogkit.cli.servers import connect
    conn = connect(ServerURL.parse(url), ConnectOptions(ssl_ca=str(ca), ssl_verify=False,
                                                        defaults_file=str(cnf)))
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
    conn.close()
    assert row is not None and row[1].startswith("TLS")


@pytest.fixture(scope="module")
def mariadb_pair(server_factory) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    source = server_factory("mariadb", server_id=7201)
    replica = server_factory("mariadb", server_id=7202)
    replica.execute([
        "STOP SLAVE",
        f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source.port}, "
        "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos",
        "START SLAVE",
    ])
    source.execute(["CREATE DATABASE IF NOT EXISTS gtidcli",
                    "CREATE TABLE IF NOT EXISTS gtidcli.t (id INT PRIMARY KEY)",
                    "INSERT INTO gtidcli.t VALUES (1), (2)"])
    want = source.variable("gtid_binlog_pos")
    assert replica.execute(f"SELECT MASTER_GTID_WAIT('{want}', 30)")[0][0] == 0
    yield Pair(source, replica)
    replica.execute(["STOP SLAVE", "RESET SLAVE ALL"])


def test_live_mariadb_diff_and_errant(mariadb_pair: Pair) -> None:
    src, rep = mariadb_pair.source, mariadb_pair.replica
    s_url, r_url = src.url, rep.url
    assert gtid("diff", s_url, r_url).exit_code == 0
    assert gtid("errant", "--source", s_url, "--replica", r_url).exit_code == 0
    rep.execute("INSERT INTO gtidcli.t VALUES (100)")
    extra = rep.variable("gtid_binlog_pos")
    assert extra.split("-")[:2] == ["0", "7202"]
    res = gtid("diff", s_url, r_url)
    assert res.exit_code == 1
    assert res.stdout.splitlines()[-1] == f"only in B: {extra}"
    assert f"domain 0: A {src.variable('gtid_binlog_pos')}  B {extra}  B is ahead" in res.stdout
    res = gtid("errant", "--source", s_url, "--replica", r_url, "--fix", "none")
    assert (res.exit_code, res.stdout) == (1, extra + "\n")
    assert gtid("subset", s_url, r_url).exit_code == 0
    assert gtid("subset", r_url, s_url).exit_code == 1
    assert gtid("normalize", f"{r_url}?gtid=slave_pos").stdout == (
        src.variable("gtid_binlog_pos") + "\n")
    assert "not a mariadb GTID variable" in one_line_error(
        gtid("normalize", f"{r_url}?gtid=executed"))
