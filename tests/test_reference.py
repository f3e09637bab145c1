"""Differential: binlogkit against the servers' own decoders, on every
corpus file. Number, positions and types of events agree, QUERY texts are
equal, and where the tool stops on bad input binlogkit stops at the same
offset."""

from __future__ import annotations

import pytest
from corpus import CorpusFile, find_corpus
from reference import reference_events, tools_available

from binlogkit.codec.compression import mariadb_decompress
from binlogkit.codec.event import ENCRYPTED, Event
from binlogkit.codec.inner import inner_events
from binlogkit.codec.types import EventType
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader

T = EventType
CORPUS = [f for f in find_corpus() if not f.encrypted]
if not all(tools_available().values()):
    pytest.skip("reference decoders not installed (scripts/provision.sh)",
                allow_module_level=True)

# Where the tool prints "Unknown event" and reads on, binlogkit decodes the
# event: mariadb-binlog does not know the WL#2325 type numbering of 5.2.2
# development trees, and rejects v2 rows events whose extra-data tag it does
# not know; files without an FDE are read by binlogkit with the v4 defaults.
TOOL_CANNOT_DECODE = {
    "ver_5_1-wl2325_r.001", "ver_5_1-wl2325_s.001", "bug40482-bin.000001",
    "binlog_no_fd_event.000001",
}


def _id(f: CorpusFile) -> str:
    return f"{f.origin}:{f.path.name}"


def _ours(path: str) -> tuple[list[Event], list[Event], BinlogError | None]:
    outer: list[Event] = []
    inner: list[Event] = []
    try:
        for ev in BinlogReader(path, verify_checksum=False):
            outer.append(ev)
            if ev.type_code == T.TRANSACTION_PAYLOAD:
                inner.extend(inner_events(ev, ev.ctx, verify=False))
    except BinlogError as exc:
        return outer, inner, exc
    return outer, inner, None


def _query_text(ev: Event) -> str:
    raw = bytes(ev.body.query)
    if ev.type_code == T.QUERY_COMPRESSED:
        raw = mariadb_decompress(raw)
    return raw.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("cf", CORPUS, ids=_id)
def test_agrees_with_reference_decoder(cf: CorpusFile) -> None:
    # without --force-read the tool stops where the input is bad, as binlogkit
    # does; a MariaDB-encrypted file needs it to list the encrypted events
    ref = reference_events(cf.path, (cf.flavor, cf.major),
                           force_read=cf.encryption == "mariadb")
    outer, inner, err = _ours(str(cf.path))
    ours = {e.pos: e for e in outer}
    ref_outer = [e for e in ref.outer if e.pos is not None]
    lenient = cf.path.name in TOOL_CANNOT_DECODE

    # where the tool gave up on bad input, binlogkit raises at that offset
    if ref.error_offset is not None and not lenient:
        assert err is not None, f"{ref.tool} stopped at {ref.error_offset}: {ref.first_error}"
        assert err.offset == ref.error_offset, (str(err), ref.first_error)
    elif err is not None and ref.looped_at is None and not lenient:
        pytest.fail(f"binlogkit: {err}; {ref.tool} read on: {ref.first_error}")

    # same events at the same positions, of a type the tool names that way
    limit = err.offset if err is not None and err.offset is not None else None
    ref_pos = [e.pos for e in ref_outer if limit is None or e.pos < limit]
    assert [e.pos for e in outer] == ref_pos or lenient and set(ref_pos) <= set(ours)
    for r in ref_outer:
        ev = ours.get(r.pos)
        if ev is None:
            continue
        if ev.type_code == ENCRYPTED:
            assert r.tool_name == "Encrypted event", r
        elif r.possible_codes and not r.silent and not lenient:
            assert ev.type_code in r.possible_codes, (r.pos, r.tool_name, ev.type_name)
        if r.query is not None and ev.type_code in (T.QUERY, T.QUERY_COMPRESSED) \
                and not r.reprint_of:
            assert _query_text(ev) == r.query, r.pos

    # events inside TRANSACTION_PAYLOAD (mysqlbinlog prints them)
    ref_inner = [e for e in ref.inner if not e.silent]
    if ref_inner:
        assert [e.type_code for e in inner] == [
            r.type_code if r.type_code is not None else e.type_code
            for r, e in zip(ref_inner, inner, strict=True)]
        for r, e in zip(ref_inner, inner, strict=True):
            if r.query is not None and e.type_code == T.QUERY:
                assert _query_text(e) == r.query
