"""Text character sets of row values: collation id -> charset -> Python codec.

A TABLE_MAP's optional metadata names each text column's collation id; the row
image holds the value's raw bytes in that collation's charset. This module turns
them into ``str`` when that is exact (the server means that text, and encoding
it gives back the identical bytes) and leaves them ``bytes`` otherwise.

    charset_name(45, "mysql")   -> "utf8mb4"
    python_codec("latin1")      -> "mysql_latin1"   (registered at import)
    exact("utf8mb4")            -> True
    decode_text(b"caf\\xe9", "latin1") -> "café";   encode_text("café", "latin1") -> b"caf\\xe9"

``exact(cs)``: a *successful strict* ``raw.decode(python_codec(cs))`` is what
the server means and re-encodes to the same bytes, so a hot loop needs only
``try: raw.decode(codec) except UnicodeDecodeError: keep raw``. Bytes a codec
rejects (the server has no Unicode meaning for them, or Python cannot decode
them) stay bytes. For the other charsets :func:`decode_text` also re-encodes
the text and rejects *suspect* characters (see below).

Checked against MariaDB 10.11 and MySQL 9.7 (scripts/gen_collations.py scans
every byte of the single-byte charsets and every 1-2 byte string of the
multi-byte ones; tests/test_charsets.py re-checks it live):

============  ==============  ======  =========================================================
charset       Python codec    exact   server vs. Python
============  ==============  ======  =========================================================
utf8mb4       utf-8           yes     same; invalid UTF-8 stays bytes
utf8mb3       utf-8           yes     server never stores 4-byte sequences; MariaDB accepts
                                      encoded surrogates (ED A0 80), Python does not -> bytes
utf16         utf-16-be       yes     same
utf16le       utf-16-le       yes     same
utf32         utf-32-be       yes     MariaDB accepts surrogate code points -> bytes
ucs2          utf-16-be       no      Python joins D83D DE00 into one astral char; MariaDB
                                      reads two surrogates, MySQL rejects: astral -> bytes
binary        (none)          --      always bytes
latin1        mysql_latin1    yes     cp1252, but 81 8D 8F 90 9D are U+0081.. (C1 controls)
ascii         ascii           yes     80-FF have no meaning -> bytes
latin2/5/7    iso8859_2/9/13  yes     same
cp850/852     cp850/852       yes     same
cp1250/51/57  cp125x          yes     same (undefined bytes -> bytes)
koi8r         koi8_r          yes     same
hp8           hp_roman8       yes     same (FF undefined)
macce         mac_latin2      yes     same
macroman      mac_roman       yes     same
tis620        tis_620         yes     same (A0 DB-DE FC-FF: server gives U+FFFD)
hebrew        mysql_hebrew    yes     iso8859_8 but AF is U+203E (Python U+00AF)
greek         mysql_greek     yes     iso8859_7 but A1/A2 are U+02BD/U+02BC, A4 A5 AA undefined
koi8u         mysql_koi8u     yes     koi8_u but 95 is U+2022 (Python U+2219)
cp866         mysql_cp866     yes     FC FD are U+207F U+00B2 (Python U+2116 U+00A4)
cp1256        mysql_cp1256    yes     8A 8F 98 9A 9F AA C0 FF undefined (Python: Urdu letters)
dec8, swe7,   mysql_<name>    yes     no Python codec: the server's own table; bytes with no
armscii8,                             meaning (and armscii8's A4 A5 A9 AB AC, which repeat
keybcs2,                              ASCII punctuation) stay bytes
geostd8
gbk, gb2312   gbk, gb2312     yes     same on every 1-2 byte string
euckr         cp949           yes     server's euckr includes the UHC (cp949) extension
gb18030       gb18030         no      A8BC / 81 35 F4 37 swapped (U+1E3F / U+E7C7, GB 2005)
sjis          shift_jis       no      815F is U+005C to the server (Python U+FF3C), and the
                                      server writes '\\' as 815F: such values stay bytes
ujis          euc_jp          no      A1C0 is U+005C (Python U+FF3C); 8FA2B7 duplicates '~';
                                      user-defined rows F5-FE stay bytes
eucjpms       euc_jp          no      cp51932-style A1C1 A1C2 A1DD A1F1 A1F2 A2CC 8FA2C3
                                      (U+FF5E U+2225 U+FF0D U+FFE0 U+FFE1 U+FFE2 U+FFE4);
                                      NEC/IBM rows stay bytes
cp932         cp932           no      80 A0 FD-FF invalid to the server (Python U+0080,
                                      U+F8F0..); NEC/IBM duplicates caught by round trip
big5          big5            no      A15A A1C3 A1C5 unmapped (server U+FFFD); A2CC A2CE
                                      duplicate A451 A4CA, caught by round trip
============  ==============  ======  =========================================================

*Suspect* characters (``MULTI_BYTE`` in collations.py) are those a byte sequence
decodes to in Python, re-encoding identically, while the server reads that
sequence differently; a decoded value containing one stays bytes (also when the
character came from a sequence both agree on: rare, and never wrong).
"""

from __future__ import annotations

import codecs
import importlib
import re
from typing import Any, Final

from binlogkit.codec.collations import CHARMAPS, COLLATIONS, MULTI_BYTE, SINGLE_BYTE

__all__ = [
    "COLLATIONS",
    "charmap",
    "charset_name",
    "decode_text",
    "encode_text",
    "exact",
    "python_codec",
]

FLAVORS: Final = ("mysql", "mariadb")
ALIASES: Final = {"utf8": "utf8mb3"}  # MySQL < 8.0.30 / MariaDB < 10.6 name
_ASTRAL = "[\U00010000-\U0010ffff]"

# --- collation id -> charset ------------------------------------------------------------

_BY_ID: dict[str, dict[int, str]] = {}
for _own, _other in (("mysql", "mariadb"), ("mariadb", "mysql")):
    _BY_ID[_own] = {cid: cs for cid, (cs, _name) in COLLATIONS[_other].items()}
    _BY_ID[_own].update((cid, cs) for cid, (cs, _name) in COLLATIONS[_own].items())


def charset_name(collation_id: int, flavor: str) -> str | None:
    """The charset of ``collation_id`` on ``flavor`` ('mysql' or 'mariadb'); ids the
    flavor lacks come from the other flavor's table; unknown ids give None."""
    try:
        table = _BY_ID[flavor]
    except KeyError:
        raise ValueError(f"unknown flavor {flavor!r} (mysql or mariadb)") from None
    return table.get(collation_id)


# --- custom single-byte codecs -----------------------------------------------------------


def _charmap_codec(name: str, table: str) -> codecs.CodecInfo:
    enc = codecs.charmap_build(table)

    def encode(text: str, errors: str = "strict", /) -> tuple[bytes, int]:
        return codecs.charmap_encode(text, errors, enc)

    def decode(data: Any, errors: str = "strict", /) -> tuple[str, int]:  # Any: a Buffer
        return codecs.charmap_decode(data, errors, table)

    return codecs.CodecInfo(encode, decode, name=name)


_charmap_decode = codecs.charmap_decode
_CUSTOM: dict[str, codecs.CodecInfo] = {
    f"mysql_{cs}": _charmap_codec(f"mysql_{cs}", table) for cs, table in CHARMAPS.items()
}
codecs.register(_CUSTOM.get)

# --- charset -> (codec, exact, suspect pattern) --------------------------------------------



def _decoding_table(codec: str) -> str | None:
    """The charmap table behind a single-byte stdlib codec (None: it has its own decoder)."""
    try:
        module = importlib.import_module(f"encodings.{codec}")
    except ImportError:
        return None
    table = getattr(module, "decoding_table", None)
    return table if isinstance(table, str) and len(table) == 256 else None


# (codec, exact, suspect characters, single-byte table: charmap_decode skips the codec
# machinery, ~3x faster than bytes.decode for these)
_Info = tuple[str, bool, re.Pattern[str] | None, str | None]
_INFO: dict[str, _Info] = {
    "utf8mb4": ("utf-8", True, None, None),
    "utf8mb3": ("utf-8", True, None, None),
    "utf16": ("utf-16-be", True, None, None),
    "utf16le": ("utf-16-le", True, None, None),
    "utf32": ("utf-32-be", True, None, None),
    "ucs2": ("utf-16-be", False, re.compile(_ASTRAL), None),
}
for _cs, _codec in SINGLE_BYTE.items():
    if _codec:
        _INFO[_cs] = (_codec, True, None, _decoding_table(_codec))
    else:
        _INFO[_cs] = (f"mysql_{_cs}", True, None, CHARMAPS[_cs])
# Characters Python's codec gives for a sequence the server reads as another
# character (python char -> server char); applied after decoding, reversed
# before encoding. The server's own meanings (tests/test_charsets.py checks
# them against both servers).
SERVER_CHARS: Final[dict[str, dict[str, str]]] = {
    "sjis": {"\uff3c": "\\"},  # 815F (ujis A1C0 too, but ujis writes U+005C as 5C)
    "eucjpms": {"\u301c": "\uff5e", "\u2016": "\u2225", "\u2212": "\uff0d", "\xa2": "\uffe0",
                "\xa3": "\uffe1", "\xac": "\uffe2", "\xa6": "\uffe4"},
    "gb18030": {"\ue7c7": "\u1e3f", "\u1e3f": "\ue7c7"},  # A8BC and 8135F437 swapped
}
_TO_SERVER = {cs: str.maketrans(m) for cs, m in SERVER_CHARS.items()}
_FROM_SERVER = {cs: str.maketrans({v: k for k, v in m.items()}) for cs, m in SERVER_CHARS.items()}
for _cs, (_codec, _suspect, _exact) in MULTI_BYTE.items():
    _suspect = "".join(ch for ch in _suspect if ch not in SERVER_CHARS.get(_cs, {}))
    _pattern = re.compile("[" + re.escape(_suspect) + "]") if _suspect else None
    _INFO[_cs] = (_codec, _exact, _pattern, None)
for _alias, _cs in ALIASES.items():
    _INFO[_alias] = _INFO[_cs]
# encode_text also refuses characters the server cannot store in the charset
_ENCODE_REJECT: dict[str, re.Pattern[str]] = {
    cs: info[2] for cs, info in _INFO.items() if info[2] is not None}
_ENCODE_REJECT["utf8mb3"] = _ENCODE_REJECT["utf8"] = re.compile(_ASTRAL)


def python_codec(charset: str) -> str | None:
    """Python codec decoding ``charset`` as the server does, or None (binary, unknown)."""
    info = _INFO.get(charset)
    return info[0] if info is not None else None


def charmap(charset: str) -> str | None:
    """The decoding table of a single-byte charset (for ``codecs.charmap_decode``,
    several times faster than ``bytes.decode`` through a registered codec), else None."""
    info = _INFO.get(charset)
    return info[3] if info is not None else None


def exact(charset: str) -> bool:
    """True when a successful strict decode with :func:`python_codec` is always the
    server's text and re-encodes to the same bytes (no round-trip check needed)."""
    info = _INFO.get(charset)
    return info is not None and info[1]


def decode_text(raw: bytes, charset: str | None) -> str | bytes:
    """``raw`` as str when ``charset`` decodes it exactly; otherwise ``raw`` unchanged."""
    info = _INFO.get(charset)  # type: ignore[arg-type]  # None is simply absent
    if info is None:
        return raw
    codec, is_exact, suspect, table = info
    try:
        text = raw.decode(codec) if table is None else _charmap_decode(raw, "strict", table)[0]
    except UnicodeDecodeError:
        return raw
    if is_exact:
        return text
    if suspect is not None and suspect.search(text):
        return raw
    to_server = _TO_SERVER.get(charset)  # type: ignore[arg-type]
    if to_server is None:
        return text if text.encode(codec) == raw else raw
    text = text.translate(to_server)
    back = text.translate(_FROM_SERVER[charset])  # type: ignore[index]
    return text if back.encode(codec) == raw else raw


def encode_text(value: str | bytes, charset: str | None) -> bytes:
    """Inverse of :func:`decode_text`: bytes pass through; a str is encoded, raising
    UnicodeEncodeError for a character the charset (as the server reads it) lacks and
    ValueError when ``charset`` has no codec (binary, None, unknown)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    info = _INFO.get(charset) if charset is not None else None
    if info is None:
        raise ValueError(f"cannot encode text in charset {charset!r}")
    codec = info[0]
    reject = _ENCODE_REJECT.get(charset) if charset is not None else None
    if reject is not None:
        bad = reject.search(value)
        if bad is not None:
            raise UnicodeEncodeError(codec, value, bad.start(), bad.end(),
                                     f"not stored faithfully in MySQL {charset}")
    from_server = _FROM_SERVER.get(charset)  # type: ignore[arg-type]
    if from_server is not None:
        unknown = set(SERVER_CHARS[charset]) - set(SERVER_CHARS[charset].values())  # type: ignore[index]
        bad_ch = next((i for i, ch in enumerate(value) if ch in unknown), None)
        if bad_ch is not None:
            raise UnicodeEncodeError(codec, value, bad_ch, bad_ch + 1,
                                     f"not a character of MySQL {charset}")
        value = value.translate(from_server)
    raw = value.encode(codec)
    if not info[1] and raw.decode(codec) != value:
        raise UnicodeEncodeError(codec, value, 0, len(value),
                                 f"does not round-trip through MySQL {charset}")
    return raw
