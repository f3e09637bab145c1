"""The corpus of real binlogs written by real servers (not by binlogkit).

``find_corpus()`` walks

* ``/usr/share/mysql/mysql-test``            (Debian ``mariadb-test-data``),
* ``<sid root>/usr/lib/mysql-test``           (Debian sid ``mysql-testsuite``; the root is
  ``$BINLOGKIT_SID_ROOT``, default ``/opt/binlogkit-sid``),
* ``<repo>/fixtures``                         (binlogs our own scripts made on live servers),

and returns every file that starts with ``fe 62 69 6e`` (plain binlog / relay log) or
``fd 62 69 6e`` (MySQL-encrypted binlog), identical files (same sha256) folded into one.

The writing server is guessed from the first event, parsed by hand with ``struct`` so that
this module does not depend on the code under test.  ``python tests/corpus.py`` prints a
summary.  See docs/corpus.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC_PLAIN = b"\xfebin"
MAGIC_ENCRYPTED = b"\xfdbin"  # MySQL 8.0.14+ binlog encryption (512-byte file header)

REPO_ROOT = Path(__file__).resolve().parent.parent
MARIADB_TEST_DIR = Path("/usr/share/mysql/mysql-test")


def sid_root() -> Path:
    return Path(os.environ.get("BINLOGKIT_SID_ROOT", "/opt/binlogkit-sid"))


def corpus_roots() -> list[tuple[str, Path]]:
    """(origin, directory) pairs, in the order duplicates are resolved (first one wins)."""
    return [
        ("mariadb-test-data", MARIADB_TEST_DIR),
        ("mysql-testsuite", sid_root() / "usr/lib/mysql-test"),
        ("fixtures", REPO_ROOT / "fixtures"),
    ]


# Files that are broken on purpose, found from their names and from the .test files that
# use them.  Key: path suffix (matched against the end of the path, "/"-separated);
# value: why it is broken and what the server's test expects.  A tag in brackets says
# what kind of damage it is:
#   [truncated]  the file ends inside an event
#   [malformed]  an event's bytes are invalid (bad length, bad type, bad field)
#   [semantic]   every event decodes, but the event *sequence* is invalid on purpose
#                (MySQL's crash-recovery tests); a decoder must read these cleanly
CORRUPT_ON_PURPOSE: dict[str, str] = {
    "std_data/corrupt-relay-bin.000624": (
        "[malformed] MySQL 5.0.46 relay log with bytes missing: the INTVAR at 91176 holds "
        "what looks like the start of a QUERY header and the QUERY at 91204 begins in the "
        "middle of its statement (Bug#31793, mysqlbinlog.test expects exit code 1)"
    ),
    "std_data/bug40482-bin.000001": (
        "[malformed] INCIDENT event at 106 with a non-existing incident number (66) "
        "(Bug#40482, rpl_binlog_corruption.test)"
    ),
    "std_data/bug11747416_32228_binlog.000001": (
        "[truncated] 8192-byte file; the WRITE_ROWS_V1 event at 275 claims 65567 bytes "
        "(Bug#11747416/32228, rpl_cant_read_event_incident.test)"
    ),
    "std_data/trunc_binlog.000001": (
        "[truncated] MySQL 4.0.23 log cut after its last complete event, no STOP/ROTATE "
        "(mysqlbinlog.test, Bug#7853 reads it from stdin); the events themselves are intact"
    ),
    "std_data/binlog_truncated_event.000001": (
        "[truncated] 14 bytes: magic plus 10 bytes of an event header "
        "(rpl_master_errors.test: 'Fail on reading event')"
    ),
    "std_data/binlog_truncated_prev_gtid_event.000001": (
        "[truncated] the PREVIOUS_GTIDS event after the FDE is cut short "
        "(rpl_master_errors.test: 'Fail on reading Previous_gtid_log_event')"
    ),
    "std_data/binlog_no_fd_event.000001": (
        "[malformed] first event's type byte is 48 instead of 15 (FORMAT_DESCRIPTION) "
        "(rpl_master_errors.test: 'Could not find Format_Description_Event')"
    ),
    "suite/binlog/std_data/invalid_row_v2_tag.001": (
        "[malformed] FDE with log_pos 0 followed by 3 hand-made WRITE_ROWS_V2 events with "
        "invalid extra-row-info: tag without data, undersized data + unknown tag, length "
        "longer than the event (binlog_old_versions.test expects 'Unknown event')"
    ),
    "std_data/mdev-39404-binlog.000001": (
        "[malformed] MariaDB 10.6 GTID event at 256, 401 bytes long (normally ~42), with bad "
        "contents that crashed mariadb-binlog (MDEV-39404, mysqlbinlog.test expects exit 1)"
    ),
    "std_data/mdev-4645-binlog_checksum.binlog": (
        "[malformed] 5.1.63-google relay log, common header 23 bytes (checksum field); "
        "'FDE corrupted in relay log' (MDEV-4645, mysqlbinlog.test --hexdump)"
    ),
    "std_data/mdev-4645-binlog_group_id.binlog": (
        "[malformed] 5.1.63-google relay log, common header 27 bytes (group_id field); "
        "'FDE corrupted in relay log' (MDEV-4645)"
    ),
    "std_data/mdev-4645-binlog_group_id_checksum.binlog": (
        "[malformed] 5.1.63-google relay log, common header 31 bytes (group_id + checksum); "
        "'FDE corrupted in relay log' (MDEV-4645)"
    ),
    "std_data/mdev-4645-binlog_none.binlog": (
        "[malformed] 5.1.63-google relay log, 19-byte header; control case of the "
        "'FDE corrupted in relay log' series (MDEV-4645)"
    ),
}

# MySQL's binlog_gtid_binlog_recovery_errors.test copies each of these over the binlog of a
# crashed server and greps the error log for the message quoted here.
_RECOVERY_CASES: dict[str, str] = {
    "orphan_xid": "Xid_log_event outside the boundary of an active transaction",
    "duplicate_xid": "Xid_log_event holds an invalid (duplicate) XID",
    "orphan_xa_prepare": "XA_prepare_log_event outside the boundary of an active transaction",
    "duplicate_xid_xa_prepare": "XA_prepare_log_event holds an invalid (duplicate) XID",
    "orphan_begin_start": "BEGIN/XA START inside an active transaction",
    "orphan_commit": "COMMIT outside the boundary of an active transaction",
    "orphan_rollback": "ROLLBACK outside the boundary of an active transaction",
    "ddl_in_transaction": "DDL inside an active transaction",
    "duplicate_xid_ddl": "DDL Query_log_event holds an invalid (duplicate) XID",
    "orphan_xa_commit": "XA COMMIT inside a transaction not yet prepared",
    "malformed_xid_xa_commit": "XA COMMIT holds a malformed XID",
    "duplicate_xid_xa_commit": "XA COMMIT holds an invalid (duplicate) XID",
    "orphan_xa_rollback": "XA ROLLBACK inside a transaction not yet prepared",
    "malformed_xid_xa_rollback": "XA ROLLBACK holds a malformed XID",
    "duplicate_xid_xa_rollback": "XA ROLLBACK holds an invalid (duplicate) XID",
}
for _name, _why in _RECOVERY_CASES.items():
    CORRUPT_ON_PURPOSE[f"std_data/binlog_recovery/{_name}.000001"] = (
        f"[semantic] {_why} (MySQL 8.0.30 crash-recovery test, "
        "binlog_gtid_binlog_recovery_errors.test)"
    )

# Not corrupt, but unreadable without a key (see CorpusFile.encryption).
ENCRYPTED_NOTES: dict[str, str] = {
    "std_data/binlog_before_20574.bin": (
        "MariaDB 10.2.28 encrypted binlog: FDE, START_ENCRYPTION at 256, then encrypted "
        "events (MDEV-20574, binlog_mdev_20574_old_binlog.test)"
    ),
    "std_data/rpl_nogtid_encryption_master-bin.000002": (
        "MySQL encrypted binlog (magic fd 62 69 6e, 512-byte encryption header, "
        "keyring in std_data/rpl_nogtid_encryption_keyring_master)"
    ),
}

START_V3 = 1
FORMAT_DESCRIPTION = 15
START_ENCRYPTION = 164


@dataclass
class CorpusFile:
    path: Path
    origin: str  # "mariadb-test-data" | "mysql-testsuite" | "fixtures"
    size: int
    sha256: str
    encrypted: bool  # magic fd 62 69 6e: MySQL binlog encryption, nothing readable without key
    # "mysql" (fd magic) | "mariadb" (plain magic, FDE, START_ENCRYPTION, then encrypted
    # events; `encrypted` stays False for those: header and the first events are readable)
    encryption: str | None
    first_event_type: int | None
    binlog_version: int | None  # from the FDE / START_V3 body
    server_version: str | None
    flavor: str | None  # "mariadb" | "mysql" | None (unknown)
    version: tuple[int, ...] | None  # (8, 0, 30)
    major: tuple[int, int] | None  # (8, 0)
    header_length: int | None  # common-header length declared by the FDE (None for v1-v3)
    checksum_alg: int | None  # FDE's checksum algorithm byte (0 off, 1 CRC32), if it has one
    corrupt_reason: str | None
    duplicates: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def relay(self) -> bool:
        return "relay" in self.path.name

    @property
    def known_corrupt(self) -> bool:
        return self.corrupt_reason is not None

    @property
    def flavor_major(self) -> tuple[str | None, tuple[int, int] | None]:
        return (self.flavor, self.major)

    @property
    def short(self) -> str:
        """Path relative to its corpus root, prefixed with the origin."""
        for origin, root in corpus_roots():
            if origin == self.origin:
                try:
                    return f"{origin}:{self.path.relative_to(root)}"
                except ValueError:
                    break
        return f"{self.origin}:{self.path}"


def _suffix_match(path: Path, table: dict[str, str]) -> str | None:
    p = path.as_posix()
    for suffix, reason in table.items():
        if p == suffix or p.endswith("/" + suffix):
            return reason
    return None


def corrupt_reason(path: Path) -> str | None:
    return _suffix_match(path, CORRUPT_ON_PURPOSE)


_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_server_version(sv: str) -> tuple[str, tuple[int, ...] | None]:
    """(flavor, version) from a server version string such as '10.6.28-MariaDB-log'."""
    flavor = "mariadb" if ("MariaDB" in sv or "-maria-" in sv) else "mysql"
    s = sv
    if flavor == "mariadb" and s.startswith("5.5.5-"):  # replication-compat prefix
        s = s[len("5.5.5-") :]
    m = _VERSION_RE.match(s)
    version = tuple(int(x) for x in m.groups()) if m else None
    return flavor, version


@dataclass
class _Head:
    first_event_type: int | None = None
    binlog_version: int | None = None
    server_version: str | None = None
    header_length: int | None = None
    checksum_alg: int | None = None
    second_event_type: int | None = None


def _read_head(data: bytes) -> _Head:
    """Parse the first event (and peek at the second) of a plain binlog by hand.

    Common header (v3/v4, 19 bytes): timestamp u32, type u8, server_id u32,
    event_length u32, next_pos u32, flags u16.  FDE / START_V3 body: binlog_version
    u16, server_version char[50], create_timestamp u32; the FDE then has
    header_length u8 and the post-header lengths, and, when checksums exist, the
    checksum algorithm byte and a 4-byte checksum at the very end.
    """
    h = _Head()
    if len(data) < 4 + 5:
        return h
    h.first_event_type = data[4 + 4]
    if len(data) < 4 + 19:
        return h
    _ts, typ, _sid, length, _next, _flags = struct.unpack_from("<IBIIIH", data, 4)
    body = data[4 + 19 : 4 + length] if length >= 19 else b""
    if len(body) >= 52:
        (bv,) = struct.unpack_from("<H", body, 0)
        raw = body[2:52].split(b"\0", 1)[0]
        looks_like_start = 1 <= bv <= 4 and raw[:1].isdigit() and raw.isascii()
        if typ in (START_V3, FORMAT_DESCRIPTION) or looks_like_start:
            h.binlog_version = bv
            h.server_version = raw.decode("ascii", "replace")
            if bv >= 4 and len(body) > 56:
                h.header_length = body[56]
                flavor, version = parse_server_version(h.server_version)
                has_crc = version is not None and (
                    (flavor == "mysql" and version >= (5, 6, 1))
                    or (flavor == "mariadb" and version >= (5, 3, 0))
                )
                if has_crc and len(body) >= 57 + 5:
                    h.checksum_alg = body[-5]
    nxt = 4 + length
    if length >= 19 and len(data) >= nxt + 5:
        h.second_event_type = data[nxt + 4]
    return h


def describe_file(path: Path, origin: str) -> CorpusFile:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    reason = corrupt_reason(path)
    if data[:4] == MAGIC_ENCRYPTED:
        return CorpusFile(
            path=path, origin=origin, size=len(data), sha256=sha, encrypted=True,
            encryption="mysql", first_event_type=None, binlog_version=None,
            server_version=None, flavor="mysql", version=None, major=None,
            header_length=None, checksum_alg=None, corrupt_reason=reason,
        )  # fmt: skip
    head = _read_head(data[:4096])
    flavor: str | None = None
    version: tuple[int, ...] | None = None
    if head.server_version is not None:
        flavor, version = parse_server_version(head.server_version)
    mariadb_enc = head.second_event_type == START_ENCRYPTION and flavor == "mariadb"
    return CorpusFile(
        path=path,
        origin=origin,
        size=len(data),
        sha256=sha,
        encrypted=False,
        encryption="mariadb" if mariadb_enc else None,
        first_event_type=head.first_event_type,
        binlog_version=head.binlog_version,
        server_version=head.server_version,
        flavor=flavor,
        version=version,
        major=(version[0], version[1]) if version else None,
        header_length=head.header_length,
        checksum_alg=head.checksum_alg,
        corrupt_reason=reason,
    )


def _walk(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.is_symlink() or not p.is_file():
                continue
            try:
                with p.open("rb") as fh:
                    magic = fh.read(4)
            except OSError:
                continue
            if magic in (MAGIC_PLAIN, MAGIC_ENCRYPTED):
                yield p


def find_corpus(
    roots: Iterable[tuple[str, Path]] | None = None, *, dedup: bool = True
) -> list[CorpusFile]:
    """Every binlog under the corpus roots; identical files folded into the first one seen
    (roots in order, paths sorted), the others listed in ``duplicates``."""
    out: list[CorpusFile] = []
    by_sha: dict[str, CorpusFile] = {}
    for origin, root in roots if roots is not None else corpus_roots():
        for p in _walk(root):
            cf = describe_file(p, origin)
            if dedup and cf.sha256 in by_sha:
                keep = by_sha[cf.sha256]
                keep.duplicates.append(p)
                if keep.corrupt_reason is None:
                    keep.corrupt_reason = cf.corrupt_reason
                continue
            by_sha[cf.sha256] = cf
            out.append(cf)
    return out


def pick(corpus: Iterable[CorpusFile], suffix: str) -> CorpusFile | None:
    """The corpus file whose path (or a duplicate's) ends with ``suffix``."""
    for cf in corpus:
        for p in (cf.path, *cf.duplicates):
            if p.as_posix().endswith(suffix):
                return cf
    return None


def _fmt_version(cf: CorpusFile) -> str:
    return ".".join(map(str, cf.major)) if cf.major else "?"


def summary(corpus: list[CorpusFile]) -> str:
    lines: list[str] = []
    ndup = sum(len(cf.duplicates) for cf in corpus)
    lines.append(f"{len(corpus)} distinct binlogs ({len(corpus) + ndup} files, {ndup} duplicates)")
    by_origin = Counter(cf.origin for cf in corpus)
    lines.append("per origin: " + ", ".join(f"{k}={v}" for k, v in sorted(by_origin.items())))
    by_fv = Counter((cf.origin, cf.flavor or "?", _fmt_version(cf)) for cf in corpus)
    lines.append("per origin / flavor / major:")
    for (o, f, v), n in sorted(by_fv.items()):
        lines.append(f"  {o:18} {f:8} {v:6} {n}")
    lines.append("encrypted (encrypted=True only for MySQL's fd magic):")
    for cf in corpus:
        if cf.encryption:
            note = _suffix_match(cf.path, ENCRYPTED_NOTES) or ""
            lines.append(f"  {cf.short} ({cf.encryption}, encrypted={cf.encrypted}) {note}")
    lines.append("corrupt on purpose:")
    for cf in corpus:
        if cf.corrupt_reason:
            lines.append(f"  {cf.short}: {cf.corrupt_reason}")
    lines.append("FDE header_length != 19:")
    for cf in corpus:
        if cf.header_length is not None and cf.header_length != 19:
            lines.append(f"  {cf.short}: {cf.header_length}")
    lines.append("no FDE (START_V3 / other first event):")
    for cf in corpus:
        if not cf.encrypted and cf.first_event_type != FORMAT_DESCRIPTION:
            lines.append(
                f"  {cf.short}: first type {cf.first_event_type}, "
                f"binlog v{cf.binlog_version}, {cf.server_version}"
            )
    lines.append("duplicates:")
    for cf in corpus:
        for d in cf.duplicates:
            lines.append(f"  {d}  ==  {cf.path}")
    lines.append("all:")
    for cf in corpus:
        flags = "".join(
            [
                "E" if cf.encrypted else ("e" if cf.encryption else "-"),
                "C" if cf.corrupt_reason else "-",
                "R" if cf.relay else "-",
                f"+{len(cf.duplicates)}" if cf.duplicates else "  ",
            ]
        )
        lines.append(
            f"  {flags} {cf.flavor or '?':7} {cf.server_version or '?':32} {cf.size:>8} {cf.short}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    corpus = find_corpus()
    print(summary(corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
