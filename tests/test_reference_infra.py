"""The test infrastructure itself: corpus discovery and the reference decoders' parsers.

Fast: a few real files, one tool run each, plus parser tests on canned output.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from corpus import (
    MARIADB_TEST_DIR,
    CorpusFile,
    corrupt_reason,
    describe_file,
    find_corpus,
)
from corpus import sid_root as corpus_sid_root
from reference import (
    MARIADB_BINLOG,
    MYSQLBINLOG,
    RefResult,
    check_positions,
    choose_tool,
    extract_query,
    parse_output,
    reference_events,
    tools_available,
)

TOOLS = tools_available()
needs_mariadb = pytest.mark.skipif(not TOOLS[MARIADB_BINLOG], reason="no mariadb-binlog")
needs_mysql = pytest.mark.skipif(
    not TOOLS[MYSQLBINLOG], reason="no mysqlbinlog in the sid root (or not root)"
)

MARIADB_10 = MARIADB_TEST_DIR / "std_data/rpl/master-bin-seq_10.3.36.000001"
MYSQL_8 = MARIADB_TEST_DIR / "std_data/mdev35643_mysql_80_binlog.000001"  # has a payload
MYSQL_4 = MARIADB_TEST_DIR / "suite/binlog/std_data/binlog_old_version_4_1.000001"
MYSQL_80_XA = "usr/lib/mysql-test/std_data/binlog_recovery/duplicate_xid_xa_commit.000001"


def _corpus_file(path: Path, origin: str = "mariadb-test-data") -> CorpusFile:
    if not path.exists():
        pytest.skip(f"{path} not installed")
    return describe_file(path, origin)


def _check_basic(res: RefResult) -> None:
    assert res.events, res.first_error
    assert res.events[0].pos == 4
    pos = res.positions
    assert all(b > a for a, b in zip(pos, pos[1:], strict=False)), pos
    assert check_positions(res) == []
    assert res.clean, (res.errors, res.stderr)


# ------------------------------------------------------------------------ real files


@needs_mariadb
def test_mariadb_10() -> None:
    cf = _corpus_file(MARIADB_10)
    assert (cf.flavor, cf.major, cf.header_length, cf.checksum_alg) == ("mariadb", (10, 3), 19, 1)
    assert choose_tool(*cf.flavor_major) == MARIADB_BINLOG
    res = reference_events(cf.path, cf.flavor_major)
    _check_basic(res)
    names = [e.canonical for e in res.events]
    assert names[0] == "FORMAT_DESCRIPTION"
    assert {"GTID_LIST", "BINLOG_CHECKPOINT", "MARIADB_GTID", "ANNOTATE_ROWS"} <= set(names)
    # mariadb-binlog prints a held-back ANNOTATE_ROWS after the next '# at'
    for e in res.events:
        if e.tool_name == "Annotate_rows":
            assert e.type_code == 160 and e.annotation
    _check_queries_against_file(cf, res)


@needs_mysql
def test_mysql_8_with_payload() -> None:
    cf = _corpus_file(MYSQL_8)
    assert (cf.flavor, cf.major) == ("mysql", (8, 0))
    assert choose_tool(*cf.flavor_major) == MYSQLBINLOG
    res = reference_events(cf.path, cf.flavor_major)
    _check_basic(res)
    assert res.tool == MYSQLBINLOG
    payloads = [e for e in res.outer if e.canonical == "TRANSACTION_PAYLOAD"]
    assert len(payloads) == 1
    p = payloads[0]
    assert p.pos is not None and p.size is not None
    inner = res.inner
    assert inner and all(e.pos == p.pos + p.size for e in inner)
    assert {e.canonical for e in inner} >= {"QUERY", "TABLE_MAP", "WRITE_ROWS_V2", "XID"}
    assert all(e.type_code_source == "hexdump" for e in inner)
    _check_queries_against_file(cf, res)


@needs_mysql
def test_mysql_80_xa() -> None:
    cf = _corpus_file(corpus_sid_root() / MYSQL_80_XA, "mysql-testsuite")
    res = reference_events(cf.path, cf.flavor_major)
    _check_basic(res)
    assert "XA_PREPARE" in {e.canonical for e in res.events}
    assert any(e.query == "XA START X'78',X'',1" for e in res.events)


@needs_mariadb
def test_old_4_1() -> None:
    cf = _corpus_file(MYSQL_4)
    assert (cf.binlog_version, cf.first_event_type, cf.header_length) == (3, 1, None)
    res = reference_events(cf.path, cf.flavor_major)
    _check_basic(res)
    assert res.events[0].canonical == "START_V3"
    # after EXEC_LOAD the tool prints the CREATE_FILE again, without '# at'
    again = [e for e in res.events if e.pos is None]
    assert [e.reprint_of for e in again] == [580]
    _check_queries_against_file(cf, res)


@needs_mariadb
def test_force_read_loop_is_caught() -> None:
    cf = _corpus_file(MARIADB_TEST_DIR / "std_data/bug11747416_32228_binlog.000001")
    res = reference_events(cf.path, cf.flavor_major, timeout=20)
    assert res.looped_at == 8182 and not res.force_read and not res.timed_out
    assert not res.clean and res.errors
    assert res.positions[0] == 4


@needs_mariadb
def test_corrupt_relay_log() -> None:
    cf = _corpus_file(MARIADB_TEST_DIR / "std_data/corrupt-relay-bin.000624")
    assert cf.corrupt_reason and cf.relay
    res = reference_events(cf.path, cf.flavor_major)
    assert not res.clean
    assert [e.pos for e in res.events if e.tool_name == "Unknown event"] == [91204]


def _check_queries_against_file(cf: CorpusFile, res: RefResult) -> None:
    """QUERY events: the SQL the tool printed is byte-for-byte the query in the file."""
    data = cf.path.read_bytes()
    if cf.first_event_type == 15:
        fde = data[4 + 19 :]
        hl, qph, crc = fde[56], fde[57 + 1], cf.checksum_alg == 1
    else:
        hl, qph, crc = 19, 11, False
    n = 0
    for e in res.outer:
        if e.type_code != 2 or e.pos is None or e.size is None:
            continue
        body = data[e.pos + hl : e.pos + e.size - (4 if crc else 0)]
        status_len = struct.unpack_from("<H", body, 11)[0] if qph >= 13 else 0
        query = body[qph + status_len + body[8] + 1 :]
        assert e.query_bytes == query, e.pos
        n += 1
    assert n > 0


# ------------------------------------------------------------------------ corpus


@pytest.fixture(scope="module")
def corpus() -> list[CorpusFile]:
    got = find_corpus()
    if not got:
        pytest.skip("no corpus installed")
    return got


def test_corpus(corpus: list[CorpusFile]) -> None:
    origins = {cf.origin for cf in corpus}
    assert "mariadb-test-data" in origins or "mysql-testsuite" in origins
    assert len({cf.sha256 for cf in corpus}) == len(corpus)
    for cf in corpus:
        with cf.path.open("rb") as fh:
            magic = fh.read(4)
        assert magic in (b"\xfebin", b"\xfdbin")
        assert cf.encrypted == (magic == b"\xfdbin") == (cf.encryption == "mysql")
        if cf.flavor == "mariadb":
            assert cf.server_version and "MariaDB" in cf.server_version
        if cf.header_length is not None:
            assert cf.header_length >= 19
    if MARIADB_TEST_DIR.is_dir():
        enc = [cf for cf in corpus if cf.encryption == "mariadb"]
        assert [cf.name for cf in enc] == ["binlog_before_20574.bin"]
        odd = sorted(cf.header_length for cf in corpus if cf.header_length not in (None, 19))
        assert odd == [23, 27, 31]


def test_corrupt_reason_matches_suffix() -> None:
    assert corrupt_reason(Path("/x/std_data/corrupt-relay-bin.000624"))
    assert corrupt_reason(Path("/x/std_data/binlog_recovery/orphan_xid.000001"))
    assert corrupt_reason(Path("/x/std_data/master-bin.000001")) is None


# ------------------------------------------------------------------------ parser

# mariadb-binlog --hexdump: ANNOTATE_ROWS held back, printed after the Table_map's '# at'
MARIADB_OUT = """\
DELIMITER /*!*/;
# at 4
#261121 12:49:21 server id 1  end_log_pos 256 CRC32 0x1
# Position
#           |Timestamp   |Type |Master ID   |Size        |Master Pos  |Flags
#        4  |51 93 01 6b |0f   |01 00 00 00 |fc 00 00 00 |00 01 00 00 |00 00
#
# Event: \tStart: binlog v 4, server v 10.11.19-MariaDB-log created 261121 12:49:21
ROLLBACK/*!*/;
# at 256
#261121 12:49:21 server id 1  end_log_pos 300 CRC32 0x2
# Position
#           |Timestamp   |Type |Master ID   |Size        |Master Pos  |Flags
#
#
# Event: \tQuery\tthread_id=5\texec_time=0\terror_code=0\txid=0
use `fx`/*!*/;
SET TIMESTAMP=1795265361/*!*/;
/*!\\C utf8mb4 *//*!*/;
SET @@session.character_set_client=utf8mb4/*!*/;
INSERT INTO t VALUES ('a
/*!*/;'), ('b')

/*!*/;
# at 300
# at 340
#261121 12:49:21 server id 1  end_log_pos 340 CRC32 0x3
# Event: \tAnnotate_rows:
#Q> INSERT INTO t
#Q> VALUES (1)
#261121 12:49:21 server id 1  end_log_pos 380 CRC32 0x4
# Event: \tTable_map: `fx`.`t` mapped to number 29
# at 380
#261121 12:49:21 server id 1  end_log_pos 400 CRC32 0x5
# Event: \t
#Begin_load_query: file_id: 2  block_len: 1
# at 400
# Encrypted event
DELIMITER ;
# End of log file
"""


def test_parse_mariadb_output() -> None:
    events, errors, _warnings, end, dangling = parse_output(MARIADB_OUT, MARIADB_BINLOG)
    assert end and not errors and not dangling
    got = [(e.pos, e.tool_name, e.end_log_pos) for e in events]
    assert got == [
        (4, "Start", 256),
        (256, "Query", 300),
        (300, "Annotate_rows", 340),
        (340, "Table_map", 380),
        (380, "Begin_load_query", 400),
        (400, "Encrypted event", None),
    ]
    assert events[0].hex_type_code == 15 and events[0].canonical == "FORMAT_DESCRIPTION"
    assert events[1].query == "INSERT INTO t VALUES ('a\n/*!*/;'), ('b')\n"
    assert events[2].annotation == "INSERT INTO t\nVALUES (1)"
    assert events[4].canonical == "BEGIN_LOAD_QUERY"


# mysqlbinlog --hexdump: a silent event, then a TRANSACTION_PAYLOAD with inner events
MYSQL_OUT = """\
# at 120
# at 150
#261121 12:49:26 server id 1  end_log_pos 200 CRC32 0xdf54fecc
# Position  Timestamp   Type   Source ID        Size      Source Pos    Flags
# 00000096 d5 b2 0a 62   13   01 00 00 00   32 00 00 00   c8 00 00 00   00 00
# 000000a9 72 00 00 00 00 00 01 00  04 74 65 73 74 00 02 74 |r........test..t|
# \tTable_map: `test`.`t1` mapped to number 114
# has_generated_invisible_primary_key=0
# at 200
#261121 12:49:26 server id 1  end_log_pos 300 CRC32 0x1
# Position  Timestamp   Type   Source ID        Size      Source Pos    Flags
# 000000c8 d5 b2 0a 62   28   01 00 00 00   64 00 00 00   2c 01 00 00   00 00
# \tTransaction_Payload\t\tpayload_size=50\tcompression_type=ZSTD\tuncompressed_size=80
# Start of compressed events.
# at 300
#261121 12:49:26 server id 1  end_log_pos 300 CRC32 0x2
# Position  Timestamp   Type   Source ID        Size      Source Pos    Flags
# 0000012c d5 b2 0a 62   02   01 00 00 00   30 00 00 00   00 00 00 00   08 00
# \tQuery\tthread_id=8\texec_time=0\terror_code=0
SET TIMESTAMP=1644868309/*!*/;
BEGIN
/*!*/;
# at 300
#261121 12:49:26 server id 1  end_log_pos 300 CRC32 0x3
# Position  Timestamp   Type   Source ID        Size      Source Pos    Flags
# 0000012c d5 b2 0a 62   1e   01 00 00 00   20 00 00 00   00 00 00 00   00 00
# \tWrite_rows: table id 114 flags: STMT_END_F
# End of compressed events.
# at 300
#261121 12:49:26 server id 1  end_log_pos 331 CRC32 0x4
# \tXid = 62
COMMIT/*!*/;
ERROR: Could not read entry at offset 331: Error in log format or read error 1.
DELIMITER ;
# End of log file
"""


def test_parse_mysql_output() -> None:
    events, errors, _w, end, _d = parse_output(MYSQL_OUT, MYSQLBINLOG)
    assert end and errors == [
        "ERROR: Could not read entry at offset 331: Error in log format or read error 1."
    ]
    got = [(e.pos, e.tool_name, e.inner, e.silent, e.type_code) for e in events]
    assert got == [
        (120, "", False, True, None),
        (150, "Table_map", False, False, 19),
        (200, "Transaction_Payload", False, False, 40),
        (300, "Query", True, False, 2),
        (300, "Write_rows", True, False, 30),
        (300, "Xid", False, False, 16),
    ]
    assert events[3].query == "BEGIN"
    assert events[2].canonical == "TRANSACTION_PAYLOAD"
    assert events[4].canonical == "WRITE_ROWS_V2"
    assert events[4].possible_codes == frozenset({23, 30})


def test_extract_query() -> None:
    assert extract_query(["SET TIMESTAMP=1/*!*/;", "BEGIN", "/*!*/;"]) == "BEGIN"
    assert extract_query(["SET @a=1", "/*!*/;"]) == "SET @a=1"
    assert extract_query(["use `d`/*!*/;", "", "/*!*/;"]) == ""
    assert extract_query(["COMMIT/*!*/;"]) is None


def test_choose_tool() -> None:
    assert choose_tool("mysql", (8, 0)) == MYSQLBINLOG
    assert choose_tool("mysql", (9, 0)) == MYSQLBINLOG
    assert choose_tool("mysql", None) == MYSQLBINLOG
    assert choose_tool("mysql", (5, 7)) == MARIADB_BINLOG
    assert choose_tool("mariadb", (10, 6)) == MARIADB_BINLOG
    assert choose_tool(None, None) == MARIADB_BINLOG


def test_sid_root_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINLOGKIT_SID_ROOT", "/nonexistent-root")
    assert str(corpus_sid_root()) == "/nonexistent-root"
    assert os.environ["BINLOGKIT_SID_ROOT"] == "/nonexistent-root"
