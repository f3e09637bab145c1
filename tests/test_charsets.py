"""Text charsets of row values (binlogkit.codec.charsets) against live servers.

The servers produce the bytes (CONVERT ... USING cs) and say what bytes mean
(CONVERT(UNHEX(..) USING cs) USING utf32); decode_text must agree with them or
keep the bytes, and encode_text must give the server's bytes back.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binlogkit.codec.charsets import (
    COLLATIONS,
    charset_name,
    decode_text,
    encode_text,
    exact,
    python_codec,
)
from binlogkit.codec.collations import CHARMAPS, MULTI_BYTE, SINGLE_BYTE
from binlogkit.lab import Server

FLAVORS = ["mariadb", "mysql"]
UNICODE = ["utf8mb4", "utf8mb3", "ucs2", "utf16", "utf16le", "utf32"]
SAMPLES = [
    "", "hello, world", "0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "tab\there\nnl",
    "café", "naïve façade", "Ærøskøbing", "Ëüß", "€100", "Œuvre “quoted” – dash…",
    "Zürich", "Łódź", "Škoda čćžšđ", "ÁÉÍÓÚáéíóú", "İstanbul ğış", "Ārija ķēniņš",
    "Привет мир", "Україна ґє", "Ελληνικά", "שלום", "مرحبا", "สวัสดี", "Բարեւ", "ქართული",
    "日本語のテキスト", "ｶﾀｶﾅ", "カタカナ", "漢字かな交じり文", "中文简体", "中文繁體",
    "한국어 텍스트", "①②③", "ÀÂÇ", "¢£¥§©®°±µ¶·¿",
    "😀 emoji 🎉", "𝄞 music", "𠀀 CJK ext B", "a😀b",
]


def _server(request: pytest.FixtureRequest, flavor: str) -> Server:
    srv: Server = request.getfixturevalue(f"{flavor}_server")
    return srv


def _rows(srv: Server, sql: str) -> list[tuple[Any, ...]]:
    return srv.execute(sql)


def _server_charsets(srv: Server) -> dict[str, int]:
    return {str(r[0]): int(r[3]) for r in _rows(srv, "SHOW CHARACTER SET")}


def _utf32(h: str | None) -> str | None:
    if h is None:
        return None
    return "".join(chr(int(h[i:i + 8], 16)) for i in range(0, len(h), 8))


def _server_reads(srv: Server, cs: str, values: list[bytes]) -> list[str | None]:
    """What the server makes of each byte string in ``cs`` (None: refused or '?')."""
    out: list[str | None] = []
    for i in range(0, len(values), 400):
        chunk = values[i:i + 400]
        sel = ", ".join(f"HEX(CONVERT(CONVERT(UNHEX('{v.hex()}') USING {cs}) USING utf32))"
                        for v in chunk)
        row = _rows(srv, "SELECT " + sel)[0]
        for v, h in zip(chunk, row, strict=True):
            text = _utf32(h)
            if text is not None and (text.count("?") > v.count(b"?") or "\ufffd" in text):
                text = None  # server: no Unicode meaning (MariaDB '?', MySQL NULL)
            out.append(text)
    return out


# --- offline -----------------------------------------------------------------------


def test_known_ids_and_fallback() -> None:
    assert charset_name(8, "mysql") == charset_name(8, "mariadb") == "latin1"
    assert charset_name(33, "mariadb") == "utf8mb3"
    assert charset_name(45, "mysql") == "utf8mb4"
    assert charset_name(63, "mysql") == "binary"
    assert charset_name(255, "mysql") == "utf8mb4"          # utf8mb4_0900_ai_ci
    assert 255 not in COLLATIONS["mariadb"]
    assert charset_name(255, "mariadb") == "utf8mb4"        # from MySQL's table
    mariadb_only = next(i for i, (cs, _) in COLLATIONS["mariadb"].items()
                        if i not in COLLATIONS["mysql"] and cs == "utf8mb4")
    assert charset_name(mariadb_only, "mysql") == "utf8mb4"  # from MariaDB's table
    assert charset_name(100_000, "mysql") is None
    with pytest.raises(ValueError):
        charset_name(8, "postgres")


def test_codecs_and_exactness() -> None:
    assert python_codec("binary") is None and not exact("binary")
    assert python_codec("nonesuch") is None
    assert python_codec("utf8") == python_codec("utf8mb3") == "utf-8"
    for cs in ("utf8mb4", "utf8mb3", "latin1", "ascii", "utf16", "utf32", "gbk"):
        assert exact(cs), cs
    for cs in ("sjis", "cp932", "ujis", "eucjpms", "big5", "ucs2", "gb18030"):
        assert not exact(cs), cs


def test_mysql_latin1_is_cp1252_with_c1_holes_filled() -> None:
    raw = bytes(range(256))
    text = decode_text(raw, "latin1")
    assert isinstance(text, str)
    assert [text[b] for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)] == [
        "\x81", "\x8d", "\x8f", "\x90", "\x9d"]
    assert text[0x80] == "€" and text[0x9F] == "Ÿ" and text[0xE9] == "é"
    assert encode_text(text, "latin1") == raw


def test_bytes_pass_through_and_refusals() -> None:
    assert decode_text(b"\xff\x00", "binary") == b"\xff\x00"
    assert decode_text(b"abc", None) == b"abc"
    assert decode_text(b"\xc3", "utf8mb4") == b"\xc3"          # truncated UTF-8
    assert decode_text(b"\x80", "ascii") == b"\x80"             # no meaning
    assert decode_text(b"\x81\x5f", "sjis") == "\\"            # server: U+005C, Python: U+FF3C
    assert decode_text(b"\x5c", "sjis") == b"\x5c"              # re-encodes as 815F: kept
    assert decode_text(b"\xd8\x3d\xde\x00", "ucs2") == b"\xd8\x3d\xde\x00"  # no pairs in UCS-2
    assert decode_text(b"\xd8\x3d\xde\x00", "utf16") == "😀"
    assert encode_text(b"\x01\x02", None) == b"\x01\x02"
    with pytest.raises(ValueError):
        encode_text("x", "binary")
    with pytest.raises(ValueError):
        encode_text("x", None)
    for text, cs in (("😀", "utf8mb3"), ("😀", "ucs2"), ("\uff3c", "sjis"), ("Ω", "latin1")):
        with pytest.raises(UnicodeEncodeError):
            encode_text(text, cs)


def _alphabet(cs: str) -> list[str]:
    codec = python_codec(cs)
    assert codec is not None
    chars = []
    for b in range(256):
        t = decode_text(bytes([b]), cs)
        if isinstance(t, str):
            chars.append(t)
    return chars


SINGLE = sorted(SINGLE_BYTE)


@pytest.mark.parametrize("cs", SINGLE)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_single_byte_round_trip(cs: str, data: st.DataObject) -> None:
    assert exact(cs)
    text = data.draw(st.text(alphabet=st.sampled_from(_alphabet(cs))))
    raw = encode_text(text, cs)
    assert len(raw) == len(text)
    assert decode_text(raw, cs) == text


_BMP = st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])


@pytest.mark.parametrize("cs", ["utf8mb4", "utf16", "utf16le", "utf32", "utf8mb3", "ucs2"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_unicode_round_trip(cs: str, data: st.DataObject) -> None:
    chars = _BMP if cs in ("utf8mb3", "ucs2") else st.characters(exclude_categories=["Cs"])
    text = data.draw(st.text(alphabet=chars))
    raw = encode_text(text, cs)
    assert decode_text(raw, cs) == text


@pytest.mark.parametrize("cs", sorted(MULTI_BYTE) + UNICODE)
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=12))
def test_decode_is_exact_or_keeps_bytes(cs: str, raw: bytes) -> None:
    got = decode_text(raw, cs)
    if isinstance(got, str):
        assert encode_text(got, cs) == raw
    else:
        assert got is raw


@pytest.mark.parametrize("cs", sorted(cs for cs, (_c, _s, ex) in MULTI_BYTE.items() if ex))
@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=12))
def test_exact_multibyte_needs_no_round_trip_check(cs: str, raw: bytes) -> None:
    codec = python_codec(cs)
    assert codec is not None
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return
    assert text.encode(codec) == raw


# --- live servers --------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_server_collation_has_its_charset(request: pytest.FixtureRequest,
                                                flavor: str) -> None:
    srv = _server(request, flavor)
    ids = {int(i): str(cs) for i, cs in _rows(
        srv, "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS "
             "WHERE ID IS NOT NULL")}
    if flavor == "mariadb":
        ids.update((int(i), str(cs)) for i, cs in _rows(
            srv, "SELECT ID, CHARACTER_SET_NAME FROM "
                 "information_schema.COLLATION_CHARACTER_SET_APPLICABILITY"))
        assert any(i > 2047 for i in ids)  # uca1400 ids, only in the applicability table
    assert len(ids) > 200
    wrong = {i: (cs, charset_name(i, flavor)) for i, cs in ids.items()
             if charset_name(i, flavor) != cs}
    assert not wrong
    cs_default = {str(r[0]): str(r[2]) for r in _rows(srv, "SHOW CHARACTER SET")}
    names = {name for _cs, name in COLLATIONS[flavor].values()}
    assert set(cs_default.values()) <= names


@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_server_charset_is_mapped(request: pytest.FixtureRequest, flavor: str) -> None:
    charsets = _server_charsets(_server(request, flavor))
    assert "utf8mb4" in charsets and "latin1" in charsets
    for cs, maxlen in charsets.items():
        if cs == "binary":
            assert python_codec(cs) is None
            continue
        assert python_codec(cs) is not None, cs
        if maxlen == 1:
            assert cs in SINGLE_BYTE, cs
        elif cs not in UNICODE:
            assert cs in MULTI_BYTE, cs


@pytest.mark.parametrize("flavor", FLAVORS)
def test_single_byte_charsets_byte_by_byte(request: pytest.FixtureRequest,
                                           flavor: str) -> None:
    srv = _server(request, flavor)
    charsets = _server_charsets(srv)
    checked = 0
    for cs, maxlen in sorted(charsets.items()):
        if maxlen != 1 or cs == "binary":
            continue
        server = _server_reads(srv, cs, [bytes([b]) for b in range(256)])
        seen: set[str] = set()
        for b, want in enumerate(server):
            got = decode_text(bytes([b]), cs)
            if want is None or want in seen:  # no meaning, or a second byte for one char
                assert got == bytes([b]), (cs, hex(b), got)
            else:
                assert got == want, (cs, hex(b), got, want)
                assert encode_text(want, cs) == bytes([b])
                checked += 1
            if want is not None:
                seen.add(want)
        # the whole range at once: decode_text keeps it only when some byte has no meaning
        whole = bytes(range(256))
        assert isinstance(decode_text(whole, cs), str) == (len(seen) == 256 and None not in
                                                            server), cs
    assert checked > 20 * 128


@pytest.mark.parametrize("flavor", FLAVORS)
def test_server_encoded_samples(request: pytest.FixtureRequest, flavor: str) -> None:
    srv = _server(request, flavor)
    charsets = _server_charsets(srv)
    hits: dict[str, int] = {}
    fails: list[Any] = []
    for cs in sorted(charsets):
        if cs == "binary":
            continue
        sel = ", ".join(
            f"HEX(CONVERT(_utf8mb4 X'{s.encode().hex()}' USING {cs})), "
            f"HEX(CONVERT(CONVERT(_utf8mb4 X'{s.encode().hex()}' USING {cs}) USING utf8mb4))"
            for s in SAMPLES if s)
        row = _rows(srv, "SELECT " + sel)[0]
        hits[cs] = 0
        for k, sample in enumerate(s for s in SAMPLES if s):
            raw_hex, back_hex = row[2 * k], row[2 * k + 1]
            if raw_hex is None or bytes.fromhex(back_hex or "") != sample.encode():
                continue  # not in the charset's repertoire
            raw = bytes.fromhex(raw_hex)
            got = decode_text(raw, cs)
            if got != sample:
                fails.append((cs, sample, raw, got))
                continue
            assert encode_text(sample, cs) == raw, (cs, sample)
            hits[cs] += sample.isascii() is False
        assert decode_text(b"", cs) == ""
    # decode_text may keep server-made bytes only for a non-exact charset, and only
    # where Python cannot decode them or decodes them to a suspect character
    for cs, sample, raw, got in fails:
        assert got == raw and not exact(cs) and _why_bytes(raw, cs), (cs, sample, raw, got)
    # the server writes '\\' as 81 5F in sjis, which decodes back to '\\' (SERVER_CHARS)
    assert not [f for f in fails if f[0] == "sjis"]
    for cs in charsets:
        if cs not in ("binary", "ascii", "swe7"):
            assert hits[cs] > 0, cs  # some non-ASCII sample was checked
    assert all(hits[cs] >= 3 for cs in ("utf8mb4", "utf16", "utf16le", "utf32"))
    for cs in ("sjis", "cp932", "ujis", "eucjpms", "big5", "gbk", "gb2312", "euckr"):
        assert hits[cs] >= 2, cs


def _why_bytes(raw: bytes, cs: str) -> str | None:
    codec = python_codec(cs)
    assert codec is not None
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return "Python cannot decode"
    suspect = MULTI_BYTE[cs][1] if cs in MULTI_BYTE else ""
    if any(ch in suspect for ch in text):
        return "suspect character"
    if text.encode(codec) != raw:
        return "not injective"
    return None


def _random_strings(cs: str, rnd: random.Random, n: int) -> list[bytes]:
    """Byte strings likely valid in ``cs`` (encoded random characters), some broken."""
    codec = python_codec(cs)
    assert codec is not None
    pool: list[str] = []
    while len(pool) < 400:
        raw = bytes(rnd.randrange(0x80, 0x100) for _ in range(rnd.choice((2, 2, 3, 4))))
        if cs in UNICODE:
            top = 0x10000 if cs in ("ucs2", "utf8mb3") else 0x110000
            pool.append(chr(rnd.choice((rnd.randrange(0x80, 0xD800),
                                        rnd.randrange(0xE000, top)))))
            continue
        try:
            pool.append(raw.decode(codec))
        except UnicodeDecodeError:
            continue
    out = []
    for _ in range(n):
        text = "".join(rnd.choice(pool) if rnd.random() < 0.7 else chr(rnd.randrange(32, 127))
                       for _ in range(rnd.randrange(1, 6)))
        try:
            raw = text.encode(codec)
        except UnicodeEncodeError:
            raw = text.encode("utf-8")
        if rnd.random() < 0.2:  # break it somewhere
            pos = rnd.randrange(len(raw) + 1)
            raw = raw[:pos] + bytes([rnd.randrange(256)]) + raw[pos:]
        out.append(raw)
    return out


@pytest.mark.parametrize("flavor", FLAVORS)
def test_multibyte_random_values_agree_with_server(request: pytest.FixtureRequest,
                                                   flavor: str) -> None:
    srv = _server(request, flavor)
    charsets = _server_charsets(srv)
    rnd = random.Random(f"charsets-{flavor}")
    for cs, maxlen in sorted(charsets.items()):
        if maxlen == 1:
            continue
        values = _random_strings(cs, rnd, 400)
        decoded = 0
        for raw, want in zip(values, _server_reads(srv, cs, values), strict=True):
            got = decode_text(raw, cs)
            if isinstance(got, str):
                assert got == want, (cs, raw.hex(), got, want)
                assert encode_text(got, cs) == raw
                decoded += 1
            else:
                assert got == raw
        assert decoded > 150, (cs, decoded)  # the property was not vacuous


def test_generated_tables_are_consistent() -> None:
    for cs, codec in SINGLE_BYTE.items():
        assert (codec == "") == (cs in CHARMAPS), cs
    for cs, table in CHARMAPS.items():
        assert len(table) == 256, cs
        defined = [ch for ch in table if ch != "\ufffe"]
        assert len(defined) == len(set(defined)), cs  # one byte per character
