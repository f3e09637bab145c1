"""Every real binlog: parse, rebuild every event, compare bytes.

The corpus is every binlog of Debian's mariadb-test-data, of the sid root's
mysql-testsuite, and of fixtures/. Files that cannot be read at all are
listed with the reason (see test_corpus_accounting).
"""

from __future__ import annotations

import pytest
from corpus import CorpusFile, find_corpus

from binlogkit.codec.event import Event, encode_event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

CORPUS = find_corpus()


def _id(f: CorpusFile) -> str:
    return f"{f.origin}:{f.path.name}"


def _rebuild_all(path: str, verify: bool) -> tuple[int, list[tuple[int, str]], BinlogReader]:
    """Rebuild every event (and every inner event); return mismatches."""
    raw = open(path, "rb").read()
    reader = BinlogReader(path, verify_checksum=verify)
    bad: list[tuple[int, str]] = []
    n = 0
    for ev in reader:
        n += 1
        if encode_event(ev) != raw[ev.pos : ev.next_pos]:
            bad.append((ev.pos, ev.type_name))
        if ev.type_code == EventType.TRANSACTION_PAYLOAD:
            data = b""
            inner: list[Event] = list(inner_events(ev, ev.ctx, verify=verify))
            for iev in inner:
                data += encode_event(iev)
            from binlogkit.codec.compression import zstd_stream

            plain = zstd_stream(bytes(ev.body.payload)).read()
            if data != plain:
                bad.append((ev.pos, "inner events of TRANSACTION_PAYLOAD"))
    return n, bad, reader


READABLE = [f for f in CORPUS if not f.encrypted]


@pytest.mark.parametrize("cf", READABLE, ids=_id)
def test_rebuild_is_byte_identical(cf: CorpusFile) -> None:
    try:
        n, bad, reader = _rebuild_all(str(cf.path), verify=True)
    except BinlogError as exc:
        # A file that is corrupt on purpose: the error must name the file and
        # an offset; test_reference checks the offset against the servers'
        # decoders. Everything before that offset still rebuilds exactly.
        assert exc.file == str(cf.path) and exc.offset is not None
        data = open(cf.path, "rb").read()
        limit = exc.offset
        for ev in BinlogReader(data[:limit] if limit >= 4 else data[:4], verify_checksum=True):
            assert encode_event(ev) == data[ev.pos : ev.next_pos]
        return
    assert n > 0
    assert bad == []


def test_corpus_is_found() -> None:
    origins = {f.origin for f in CORPUS}
    assert {"mariadb-test-data", "mysql-testsuite"} <= origins, origins
    assert len(CORPUS) > 50


def test_corpus_accounting() -> None:
    """Every corpus file is rebuilt above, or passed over here with its reason
    (printed with ``pytest -s``); a passed-over file must really be unreadable."""
    for f in CORPUS:
        if not f.encrypted:
            continue
        print(f"passed over: {f.path}: encrypted by MySQL's keyring (magic fd 62 69 6e)")
        with pytest.raises(BinlogError, match="encrypted"):
            list(BinlogReader(f.path))
