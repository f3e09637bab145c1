"""The reader on files that grow, rotate, end mid-event, or are large."""

from __future__ import annotations

import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from binlogkit.codec.types import LOG_EVENT_BINLOG_IN_USE_F, EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader, read_files
from binlogkit.io.writer import BinlogWriter

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROW1 = FIXTURES / "mariadb/row.000001"
ROW2 = FIXTURES / "mariadb/row.000002"


def _positions(path: Path) -> list[int]:
    return [e.pos for e in BinlogReader(path)]


def _in_use(data: bytes) -> bytes:
    """Set the FDE's in-use flag, as a server does while the file is open (the
    FDE's CRC is defined with the flag clear, so it stays valid)."""
    out = bytearray(data)
    out[4 + 17] |= LOG_EVENT_BINLOG_IN_USE_F
    return bytes(out)


def test_file_being_written_stops_at_last_complete_event(tmp_path: Path) -> None:
    data = _in_use(ROW1.read_bytes())
    events = list(BinlogReader(data))
    cut = events[-3].pos + 7  # inside an event
    reader = BinlogReader(data[:cut])
    got = [e.pos for e in reader]
    assert got == [e.pos for e in events[:-3]]
    assert reader.truncated_at == events[-3].pos


def test_closed_file_cut_short_is_an_error() -> None:
    data = ROW1.read_bytes()
    events = list(BinlogReader(data))
    with pytest.raises(BinlogError) as info:
        list(BinlogReader(data[: events[5].pos + 3], verify_checksum=True))
    assert info.value.offset == events[5].pos


def test_follow_waits_for_growth_and_rotation(tmp_path: Path) -> None:
    first, second = tmp_path / "binlog.000001", tmp_path / "binlog.000002"
    src1 = _in_use(ROW1.read_bytes())
    src2 = ROW2.read_bytes()
    rotate = [e for e in BinlogReader(ROW1) if e.type_code == EventType.ROTATE]
    assert bytes(rotate[-1].body.next_file) == b"binlog.000002"
    expected = len(_positions(ROW1)) + len(_positions(ROW2))
    first.write_bytes(src1[:1000])

    def writer() -> None:
        with open(first, "ab") as f:
            for i in range(1000, len(src1), 4093):  # chunks that cut events
                f.write(src1[i : i + 4093])
                f.flush()
                time.sleep(0.01)
        second.write_bytes(src2[:50])
        time.sleep(0.05)
        with open(second, "ab") as f:
            f.write(src2[50:])

    t = threading.Thread(target=writer)
    t.start()
    got = []
    reader = BinlogReader(first, follow=True, poll_interval=0.01)
    deadline = time.monotonic() + 60
    for ev in reader:
        got.append((reader.name, ev.pos, ev.type_name))
        if len(got) == expected or time.monotonic() > deadline:
            break
    t.join()
    assert len(got) == expected
    assert got[-1][0] == str(second)
    assert [p for n, p, _ in got if n == str(first)] == _positions(ROW1)


def test_index_file_lists_files_in_order(tmp_path: Path) -> None:
    for p in (ROW1, ROW2):
        shutil.copy(p, tmp_path / p.name)
    index = tmp_path / "row.index"
    index.write_text(f"./{ROW1.name}\n./{ROW2.name}\n")
    names = [r.name for r, _ in read_files([index])]
    assert names[0].endswith(ROW1.name) and names[-1].endswith(ROW2.name)
    assert len(names) == len(_positions(ROW1)) + len(_positions(ROW2))


def test_large_file_in_bounded_memory(tmp_path: Path) -> None:
    """A 40 MB file is read with a peak allocation far below its size."""
    events = list(BinlogReader(ROW1))
    head = [e for e in events if e.type_code in (EventType.FORMAT_DESCRIPTION,)]
    body = [e for e in events if e.type_code in (EventType.TABLE_MAP,
                                                 EventType.WRITE_ROWS_V1)][:40]
    big = tmp_path / "big.000001"
    with BinlogWriter(big, fix_positions=True) as w:
        for ev in head:
            w.write(ev)
        while w.pos < 40 << 20:
            for ev in body:
                w.write(ev)
    tracemalloc.start()
    n = sum(1 for _ in BinlogReader(big))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n > 1000
    assert peak < 8 << 20, peak
