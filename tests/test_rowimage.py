"""Row image framing on hand-built bodies (cases no corpus file holds)."""

from __future__ import annotations

import construct as c

from binlogkit.codec.rowimage import TableLayout, decimal_size, split_rows
from binlogkit.codec.types import EventType

# INT, VARCHAR(10) (metadata: u16 max length 10)
LAYOUT = TableLayout.from_table_map(c.Container(column_types=bytes([3, 15]),
                                                metadata=bytes([10, 0])))


def image(n: int, s: bytes) -> bytes:
    return b"\x00" + n.to_bytes(4, "little") + bytes([len(s)]) + s


def body(rows: bytes, two: bool) -> c.Container:
    return c.Container(width=2, columns=b"\x03", columns_after=b"\x03" if two else None,
                       rows=rows)


def test_pre_ga_update_pairs_images_under_one_bitmap() -> None:
    data = image(1, b"a") + image(1, b"b") + image(2, b"cc") + image(2, b"dd")
    changes = split_rows(EventType.PRE_GA_UPDATE_ROWS, body(data, False), LAYOUT)
    assert [(ch.before.values[1], ch.after.values[1]) for ch in changes] == [
        (b"\x01a", b"\x01b"), (b"\x02cc", b"\x02dd")]


def test_v1_update_and_null_columns() -> None:
    data = image(1, b"x") + b"\x02" + (7).to_bytes(4, "little")  # after: column 2 NULL
    changes = split_rows(EventType.UPDATE_ROWS_V1, body(data, True), LAYOUT)
    assert len(changes) == 1
    assert changes[0].after.values == {0: (7).to_bytes(4, "little"), 1: None}


def test_write_and_delete_are_single_images() -> None:
    data = image(1, b"x") + image(2, b"y")
    writes = split_rows(EventType.WRITE_ROWS_V2, body(data, False), LAYOUT)
    deletes = split_rows(EventType.DELETE_ROWS_V2, body(data, False), LAYOUT)
    assert [w.before for w in writes] == [None, None] and len(writes) == 2
    assert [d.after for d in deletes] == [None, None]


def test_decimal_sizes() -> None:
    # MySQL's own figures: DECIMAL(10,2) 5 bytes, (65,30) 30 bytes, (5,5) 3 bytes
    assert decimal_size(10, 2) == 5
    assert decimal_size(65, 30) == 30
    assert decimal_size(5, 5) == 3
