"""``binlogkit gtid``: GTID set arithmetic on literals, files, binlogs and servers.

Every SET argument is one of (tried in this order):

- ``mysql://user[:password]@host[:port]`` / ``mariadb://...``: the server's
  ``gtid_executed`` (MySQL) or ``gtid_current_pos`` (MariaDB); ``?gtid=NAME``
  picks another variable (MySQL ``executed``/``purged``, MariaDB
  ``current_pos``/``binlog_pos``/``slave_pos``/``binlog_state``);
- ``@PATH``: a file holding a set as text (``@-``: standard input);
- an existing file: a binlog or relay log (its PREVIOUS_GTIDS and GTID events;
  MariaDB: its GTID_LIST and GTIDs), or a ``.index`` file (all files it lists);
- otherwise the text of a set: MySQL ``uuid[:tag]:interval[:...][,...]`` or
  MariaDB ``domain-server-seq[,...]`` (the empty string is an empty set of
  either flavor).

MySQL sets use exact set algebra. MariaDB operands are GTID states (one last
GTID per domain and server); the commands compare their positions (the last
GTID of each domain), by seq_no, as MASTER_GTID_WAIT does. See docs/gtid.md.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from binlogkit.cli.common import expand_paths, fail, reports_errors
from binlogkit.cli.servers import (
    ConnectOptions,
    ServerError,
    ServerInfo,
    ServerURL,
    connection_options,
    is_server_url,
    mask_url,
    server_variables,
)
from binlogkit.codec.describe import uuid_text
from binlogkit.codec.types import EventType
from binlogkit.gtid import GtidError, GtidSet, MariadbGtid, MariadbGtidPos, MariadbGtidState
from binlogkit.io.reader import MAGIC, BinlogReader

F = TypeVar("F", bound=Callable[..., Any])
T = EventType

_GTID_TYPES = frozenset({T.PREVIOUS_GTIDS, T.GTID, T.GTID_TAGGED, T.MARIADB_GTID,
                         T.GTID_LIST})
_MARIADB_TEXT = re.compile(r"\s*\d+\s*-\s*\d+\s*-\s*\d+\s*(,\s*\d+\s*-\s*\d+\s*-\s*\d+\s*)*,?\s*")
_MARIADB_HEAD = re.compile(r"\s*\d+-\d+-\d+")
_MYSQL_VARS = {"executed": "gtid_executed", "purged": "gtid_purged"}
_MARIADB_VARS = {"current_pos": "gtid_current_pos", "binlog_pos": "gtid_binlog_pos",
                 "slave_pos": "gtid_slave_pos", "binlog_state": "gtid_binlog_state"}


class _UsageError(Exception):
    """A bad argument; printed as one line, exit 2."""


# --- operands -------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """One resolved SET argument: a MySQL set, a MariaDB state, or (empty text)
    an empty set that fits either flavor."""

    label: str
    flavor: str  # "mysql" | "mariadb" | "any"
    mysql: GtidSet | None = None
    mariadb: MariadbGtidState | None = None
    server: ServerInfo | None = None

    def as_mysql(self) -> GtidSet:
        assert self.mysql is not None
        return self.mysql

    def as_mariadb(self) -> MariadbGtidState:
        return self.mariadb if self.mariadb is not None else MariadbGtidState.parse("")


def _empty(label: str) -> Operand:
    return Operand(label, "any", mysql=GtidSet.parse(""), mariadb=MariadbGtidState.parse(""))


def _parse_text(text: str, label: str) -> Operand:
    if not text.strip():
        return _empty(label)
    try:
        if _MARIADB_TEXT.fullmatch(text) or (":" not in text and _MARIADB_HEAD.match(text)):
            return Operand(label, "mariadb", mariadb=MariadbGtidState.parse(text.strip()))
        return Operand(label, "mysql", mysql=GtidSet.parse(text))
    except GtidError as exc:
        # A literal's text is already quoted in the GtidError message.
        where = "bad GTID set" if label.startswith("'") else label
        raise _UsageError(f"{where}: {exc}") from None


def _is_binlog(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def _binlog_operand(arg: str) -> Operand:
    paths = expand_paths((arg,))
    builder = GtidSet.builder()
    state: MariadbGtidState | None = None
    flavor = ""
    for path in paths:
        reader = BinlogReader(path, types=_GTID_TYPES)
        for ev in reader:
            code = ev.type_code
            if code == T.GTID:
                builder.add((uuid_text(ev.body.uuid), "", ev.body.gno))
            elif code == T.GTID_TAGGED:
                tag = bytes(ev.body.tag or b"").decode("ascii", "replace")
                builder.add((uuid_text(ev.body.uuid), tag, ev.body.gno))
            elif code == T.PREVIOUS_GTIDS:
                for sid in ev.body.sids:
                    uuid = uuid_text(sid.uuid)
                    tag = bytes(sid.tag).decode("ascii", "replace") if sid.tag else ""
                    for iv in sid.intervals:
                        builder.add_interval(uuid, tag, iv.start, iv.end - 1)
            elif code == T.MARIADB_GTID:
                if state is None:
                    state = MariadbGtidState.parse("")
                state.add(MariadbGtid(ev.body.domain_id, ev.server_id, ev.body.seq_no))
            elif code == T.GTID_LIST:
                if state is None:
                    state = MariadbGtidState.parse("")
                for g in ev.body.gtids:
                    state.add(MariadbGtid(g.domain_id, g.server_id, g.seq_no))
        flavor = flavor or reader.ctx.flavor
    if state is not None or flavor == "mariadb":
        return Operand(arg, "mariadb", mariadb=state or MariadbGtidState.parse(""))
    return Operand(arg, "mysql", mysql=builder.build())


def _server_variable(url: ServerURL, flavor: str, default: str) -> str:
    choice = url.query.get("gtid", "").lower().removeprefix("gtid_")
    table = _MYSQL_VARS if flavor == "mysql" else _MARIADB_VARS
    if not choice:
        return table[default]
    if choice not in table:
        raise _UsageError(f"{url.display}: gtid={choice} is not a {flavor} GTID variable "
                          f"({', '.join(sorted(table))})")
    return table[choice]


def _server_operand(arg: str, opts: ConnectOptions, mariadb_default: str) -> Operand:
    url = ServerURL.parse(arg)
    unknown = set(url.query) - {"gtid"}
    if unknown:
        raise _UsageError(f"{url.display}: unknown URL parameter {sorted(unknown)[0]!r} "
                          "(only ?gtid=NAME)")
    names: dict[str, str] = {}

    def wanted(flavor: str) -> list[str]:
        names["var"] = _server_variable(
            url, flavor, "executed" if flavor == "mysql" else mariadb_default)
        return [names["var"]]

    info = server_variables(url, opts, wanted)
    text = info.values[names["var"]]
    label = f"{url.display} ({names['var']})"
    if info.flavor == "mariadb":
        try:
            state = MariadbGtidState.parse(text.strip())
        except GtidError as exc:
            raise _UsageError(f"{label}: {exc}") from None
        return Operand(label, "mariadb", mariadb=state, server=info)
    try:
        return Operand(label, "mysql", mysql=GtidSet.parse(text), server=info)
    except GtidError as exc:
        raise _UsageError(f"{label}: {exc}") from None


def resolve(arg: str, opts: ConnectOptions, *, mariadb_default: str = "current_pos") -> Operand:
    """The set an argument stands for (see the module doc)."""
    if is_server_url(arg):
        return _server_operand(arg, opts, mariadb_default)
    if arg.startswith("@"):
        path = arg[1:]
        if path == "-":
            return _parse_text(sys.stdin.read(), "@- (stdin)")
        try:
            with open(path, encoding="utf-8", errors="strict") as fh:
                text = fh.read(1 << 26)
        except OSError as exc:
            raise _UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise _UsageError(f"{path}: not a text file (binlogs are given without @)") from None
        return _parse_text(text, arg)
    if os.path.isfile(arg):
        if _is_binlog(arg) or arg.endswith(".index"):
            return _binlog_operand(arg)
        raise _UsageError(f"{arg}: not a binlog file (a file holding a set text is "
                          f"given as @{arg})")
    if os.path.isdir(arg):
        raise _UsageError(f"{arg}: is a directory, not a GTID set, binlog or server URL")
    try:
        return _parse_text(arg, repr(arg) if len(arg) <= 80 else repr(arg[:77] + "..."))
    except _UsageError:
        if "/" in arg or "." in arg or (":" not in arg and "-" not in arg):
            raise _UsageError(f"{arg}: no such file (and not a GTID set)") from None
        raise


def _flavor_of(ops: list[Operand]) -> str:
    flavors = {op.flavor for op in ops} - {"any"}
    if len(flavors) > 1:
        mysql = next(op for op in ops if op.flavor == "mysql")
        maria = next(op for op in ops if op.flavor == "mariadb")
        raise _UsageError(f"cannot mix a MySQL GTID set ({mysql.label}) with a MariaDB GTID "
                          f"position ({maria.label})")
    return flavors.pop() if flavors else "mysql"


def _resolve_all(args: Iterable[str], opts: ConnectOptions,
                 **kw: Any) -> tuple[str, list[Operand]]:
    ops = [resolve(a, opts, **kw) for a in args]
    return _flavor_of(ops), ops


# --- MariaDB positions ----------------------------------------------------------

Gtid3 = MariadbGtid


def _position(state: MariadbGtidState) -> dict[int, Gtid3]:
    """The last GTID of each domain (the state's position)."""
    return {g.domain: g for g in state.pos}


def _entries(state: MariadbGtidState) -> dict[tuple[int, int], int]:
    """(domain, server) -> last seq_no, over the whole state."""
    return {(g.domain, g.server): g.seq for g in state.gtids()}


def _pos_text(pos: dict[int, Gtid3]) -> str:
    return ",".join(f"{d}-{s}-{n}" for d, s, n in (pos[k] for k in sorted(pos)))


def _maria_union(positions: list[dict[int, Gtid3]]) -> dict[int, Gtid3]:
    out: dict[int, Gtid3] = {}
    for pos in positions:
        for d, g in pos.items():
            if d not in out or g.seq > out[d].seq:
                out[d] = g
    return out


def _maria_intersect(positions: list[dict[int, Gtid3]]) -> dict[int, Gtid3]:
    common = set(positions[0])
    for pos in positions[1:]:
        common &= set(pos)
    out: dict[int, Gtid3] = {}
    for d in common:
        out[d] = min((pos[d] for pos in positions), key=lambda g: g.seq)
    return out


def _maria_subtract(first: dict[int, Gtid3], others: list[dict[int, Gtid3]]) -> dict[int, Gtid3]:
    return {d: g for d, g in first.items()
            if all(d not in o or o[d].seq < g.seq for o in others)}


def _maria_reached(pos: dict[int, Gtid3], target: Iterable[Gtid3]) -> bool:
    """MASTER_GTID_WAIT's test (MariadbGtidPos.reached): seq_no per domain."""
    return MariadbGtidPos(pos.values()).reached(target)


def _domain_status(a: Gtid3 | None, b: Gtid3 | None) -> str:
    if a is None:
        return "only_b"
    if b is None:
        return "only_a"
    if a == b:
        return "equal"
    if a.seq == b.seq:
        return "diverged"
    return "a_ahead" if a.seq > b.seq else "b_ahead"


_STATUS_TEXT = {"only_a": "only in A", "only_b": "only in B", "a_ahead": "A is ahead",
                "b_ahead": "B is ahead", "diverged": "same seq_no, different server: diverged",
                "equal": "equal"}


# --- plumbing -------------------------------------------------------------------


def _die(message: str) -> NoReturn:
    fail(message)
    raise SystemExit(2)  # not reached


def gtid_errors(func: F) -> F:
    """GTID, server and argument errors as one line, exit 2 (then the
    BinlogError/OSError handling of :func:`reports_errors`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (_UsageError, ServerError) as exc:
            _die(str(exc))
        except GtidError as exc:
            _die(mask_url(str(exc)))

    return reports_errors(wrapper)  # type: ignore[return-value]


def _plural(n: int, word: str = "transaction") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _verdict(ok: bool, quiet: bool) -> None:
    if not quiet:
        click.echo("true" if ok else "false")
    sys.exit(0 if ok else 1)


_SET_HELP = ("SET: a GTID set text, @FILE, a binlog/relay log/.index file, or "
             "mysql://user@host:port / mariadb://... (see docs/gtid.md).")

_quiet = click.option("-q", "--quiet", is_flag=True,
                      help="Print nothing; the exit status says it (0 true, 1 false).")


@click.group(epilog=_SET_HELP)
def gtid() -> None:
    """GTID set arithmetic: MySQL sets and MariaDB positions, from literals,
    files, binlogs or live servers."""


@gtid.command(epilog=_SET_HELP)
@click.argument("sets", nargs=-1, required=True, metavar="SET...")
@connection_options
@gtid_errors
def normalize(sets: tuple[str, ...], conn_opts: ConnectOptions) -> None:
    """Print each SET in canonical form, one per line (MySQL: sorted UUIDs,
    tags after the untagged intervals, merged intervals; MariaDB: sorted by
    domain and server)."""
    for arg in sets:
        op = resolve(arg, conn_opts)
        click.echo(str(op.mariadb) if op.flavor == "mariadb" else str(op.as_mysql()))


@gtid.command(epilog=_SET_HELP)
@click.argument("sets", nargs=-1, required=True, metavar="SET...")
@connection_options
@gtid_errors
def union(sets: tuple[str, ...], conn_opts: ConnectOptions) -> None:
    """Every transaction of any SET (MariaDB: per domain the furthest GTID)."""
    flavor, ops = _resolve_all(sets, conn_opts)
    if flavor == "mariadb":
        click.echo(_pos_text(_maria_union([_position(o.as_mariadb()) for o in ops])))
        return
    result = ops[0].as_mysql()
    for op in ops[1:]:
        result = result | op.as_mysql()
    click.echo(str(result))


@gtid.command(epilog=_SET_HELP)
@click.argument("sets", nargs=-1, required=True, metavar="SET...")
@connection_options
@gtid_errors
def intersect(sets: tuple[str, ...], conn_opts: ConnectOptions) -> None:
    """The transactions every SET has (MariaDB: the domains all have, each at
    the least advanced GTID)."""
    flavor, ops = _resolve_all(sets, conn_opts)
    if flavor == "mariadb":
        click.echo(_pos_text(_maria_intersect([_position(o.as_mariadb()) for o in ops])))
        return
    result = ops[0].as_mysql()
    for op in ops[1:]:
        result = result & op.as_mysql()
    click.echo(str(result))


@gtid.command(epilog=_SET_HELP)
@click.argument("first", metavar="SET")
@click.argument("others", nargs=-1, required=True, metavar="MINUS...")
@connection_options
@gtid_errors
def subtract(first: str, others: tuple[str, ...], conn_opts: ConnectOptions) -> None:
    """SET minus every MINUS set, like GTID_SUBTRACT() (MariaDB: SET's GTIDs of
    the domains where it is ahead of every MINUS)."""
    flavor, ops = _resolve_all((first, *others), conn_opts)
    if flavor == "mariadb":
        click.echo(_pos_text(_maria_subtract(_position(ops[0].as_mariadb()),
                                             [_position(o.as_mariadb()) for o in ops[1:]])))
        return
    result = ops[0].as_mysql()
    for op in ops[1:]:
        result = result - op.as_mysql()
    click.echo(str(result))


@gtid.command(epilog=_SET_HELP)
@click.argument("sets", nargs=-1, required=True, metavar="SET...")
@connection_options
@gtid_errors
def count(sets: tuple[str, ...], conn_opts: ConnectOptions) -> None:
    """Number of transactions in each SET, one per line (MySQL only: a MariaDB
    position does not say how many transactions it covers)."""
    for arg in sets:
        op = resolve(arg, conn_opts)
        if op.flavor == "mariadb":
            raise _UsageError(f"{op.label}: count needs a MySQL GTID set; a MariaDB GTID "
                              "position does not say how many transactions it covers "
                              "(seq_no can jump)")
        click.echo(str(len(op.as_mysql())))


@gtid.command(epilog=_SET_HELP)
@click.argument("set_arg", metavar="SET")
@click.argument("gtids", nargs=-1, required=True, metavar="GTID...")
@_quiet
@connection_options
@gtid_errors
def contains(set_arg: str, gtids: tuple[str, ...], quiet: bool,
             conn_opts: ConnectOptions) -> None:
    """Whether SET holds every GTID (literal `uuid[:tag]:n`, or ranges); MariaDB:
    whether SET's position has reached each `domain-server-seq`. Prints
    true/false; exit 0 when true, 1 when false."""
    op = resolve(set_arg, conn_opts)
    items = [_parse_text(g, repr(g)) for g in gtids]
    flavor = _flavor_of([op, *items])
    if flavor == "mariadb":
        pos = _position(op.as_mariadb())
        ok = all(_maria_reached(pos, i.as_mariadb().gtids()) for i in items)
    else:
        s = op.as_mysql()
        ok = all(i.as_mysql() <= s for i in items)
    _verdict(ok, quiet)


@gtid.command(epilog=_SET_HELP)
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_quiet
@connection_options
@gtid_errors
def subset(a: str, b: str, quiet: bool, conn_opts: ConnectOptions) -> None:
    """Whether every transaction of A is in B, like GTID_SUBSET(A, B); MariaDB:
    whether B has reached A's position in every domain of A (seq_no). Prints
    true/false; exit 0 when true, 1 when false."""
    flavor, (x, y) = _resolve_all((a, b), conn_opts)
    if flavor == "mariadb":
        ok = _maria_reached(_position(y.as_mariadb()), _position(x.as_mariadb()).values())
    else:
        ok = x.as_mysql() <= y.as_mysql()
    _verdict(ok, quiet)


@gtid.command(epilog=_SET_HELP)
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_quiet
@connection_options
@gtid_errors
def equal(a: str, b: str, quiet: bool, conn_opts: ConnectOptions) -> None:
    """Whether A and B hold the same transactions (MariaDB: the same last GTID
    in every domain). Prints true/false; exit 0 when true, 1 when false."""
    flavor, (x, y) = _resolve_all((a, b), conn_opts)
    if flavor == "mariadb":
        ok = _position(x.as_mariadb()) == _position(y.as_mariadb())
    else:
        ok = x.as_mysql() == y.as_mysql()
    _verdict(ok, quiet)


@gtid.command(epilog=_SET_HELP)
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@connection_options
@gtid_errors
def diff(a: str, b: str, as_json: bool, conn_opts: ConnectOptions) -> None:
    """What only A has and what only B has. Exit 0 when A and B are equal, 1
    when they differ, 2 on error. MariaDB: compared domain by domain."""
    flavor, (x, y) = _resolve_all((a, b), conn_opts)
    if flavor == "mariadb":
        _diff_mariadb(x, y, as_json)
    else:
        _diff_mysql(x, y, as_json)


def _diff_mysql(x: Operand, y: Operand, as_json: bool) -> None:
    sa, sb = x.as_mysql(), y.as_mysql()
    only_a, only_b = sa - sb, sb - sa
    same = not only_a and not only_b
    if as_json:
        click.echo(json.dumps({
            "flavor": "mysql", "equal": same, "a": x.label, "b": y.label,
            "only_a": str(only_a), "only_b": str(only_b),
            "only_a_count": len(only_a), "only_b_count": len(only_b),
            "common": str(sa & sb), "common_count": len(sa & sb),
        }))
    else:
        click.echo(f"A: {x.label}")
        click.echo(f"B: {y.label}")
        if same:
            click.echo(f"equal ({_plural(len(sa))})")
        for side, part in (("A", only_a), ("B", only_b)):
            if not same:
                click.echo(f"only in {side} ({_plural(len(part))}): {part or '(none)'}")
    sys.exit(0 if same else 1)


def _diff_mariadb(x: Operand, y: Operand, as_json: bool) -> None:
    pa, pb = _position(x.as_mariadb()), _position(y.as_mariadb())
    rows = []
    for d in sorted(set(pa) | set(pb)):
        ga, gb = pa.get(d), pb.get(d)
        rows.append((d, ga, gb, _domain_status(ga, gb)))
    only_a = {d: ga for d, ga, _, st in rows if ga and st in ("only_a", "a_ahead", "diverged")}
    only_b = {d: gb for d, _, gb, st in rows if gb and st in ("only_b", "b_ahead", "diverged")}
    same = all(st == "equal" for *_, st in rows)

    def text(g: Gtid3 | None) -> str | None:
        return None if g is None else str(g)

    if as_json:
        click.echo(json.dumps({
            "flavor": "mariadb", "equal": same, "a": x.label, "b": y.label,
            "only_a": _pos_text(only_a), "only_b": _pos_text(only_b),
            "domains": [{"domain": d, "a": text(ga), "b": text(gb), "status": st}
                        for d, ga, gb, st in rows],
        }))
    else:
        click.echo(f"A: {x.label}")
        click.echo(f"B: {y.label}")
        for d, ga, gb, st in rows:
            click.echo(f"domain {d}: A {text(ga) or '-'}  B {text(gb) or '-'}  "
                       f"{_STATUS_TEXT[st]}")
        if same:
            click.echo(f"equal ({_plural(len(rows), 'domain')})")
        else:
            click.echo(f"only in A: {_pos_text(only_a) or '(none)'}")
            click.echo(f"only in B: {_pos_text(only_b) or '(none)'}")
    sys.exit(0 if same else 1)


# --- errant ---------------------------------------------------------------------


@gtid.command(epilog=_SET_HELP)
@click.option("--source", required=True, metavar="SET",
              help="The source: a server URL (or any SET).")
@click.option("--replica", required=True, metavar="SET",
              help="The replica: a server URL (or any SET).")
@click.option("--fix", type=click.Choice(["inject", "reset", "none"]), default="inject",
              show_default=True,
              help="inject: SQL for the source that commits one empty transaction per "
                   "errant GTID; reset: SQL for the replica that drops them from its GTID "
                   "history; none: only the errant set.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@connection_options
@gtid_errors
def errant(source: str, replica: str, fix: str, as_json: bool,
           conn_opts: ConnectOptions) -> None:
    """Transactions the replica executed that the source never did, with the SQL
    that fixes it. Exit 0 when there are none, 1 when there are, 2 on error.

    MySQL: REPLICA's gtid_executed minus SOURCE's. MariaDB: the entries of the
    replica's gtid_binlog_state (domain, server) that the source's
    gtid_binlog_state lacks or has at a lower seq_no."""
    flavor, (src, rep) = _resolve_all((source, replica), conn_opts,
                                      mariadb_default="binlog_state")
    if flavor == "mariadb":
        _errant_mariadb(src, rep, fix, as_json)
    else:
        _errant_mysql(src, rep, fix, as_json)


def _single_gtids(s: GtidSet) -> Iterable[str]:
    for uuid, tag, first, last in s.intervals():
        head = f"{uuid}:{tag}:" if tag else f"{uuid}:"
        for n in range(first, last + 1):
            yield head + str(n)


def _errant_mysql(src: Operand, rep: Operand, fix: str, as_json: bool) -> None:
    s, r = src.as_mysql(), rep.as_mysql()
    errant_set = r - s
    missing = s - r
    version = rep.server.version_tuple if rep.server else (9, 9, 9)
    modern = version >= (8, 4, 0)
    stop = "STOP REPLICA" if version >= (8, 0, 22) else "STOP SLAVE"
    start = "START REPLICA" if version >= (8, 0, 22) else "START SLAVE"
    reset = "RESET BINARY LOGS AND GTIDS" if modern else "RESET MASTER"
    keep = r - errant_set
    reset_sql = [f"{stop};", f"{reset};", f"SET GLOBAL gtid_purged = '{keep}';", f"{start};"]
    if as_json:
        click.echo(json.dumps({
            "flavor": "mysql", "source": src.label, "replica": rep.label,
            "errant": str(errant_set), "errant_count": len(errant_set),
            "replica_missing": str(missing), "replica_missing_count": len(missing),
            "inject_on_source": [f"SET GTID_NEXT='{g}'; BEGIN; COMMIT;"
                                 for g in _single_gtids(errant_set)]
                                + (["SET GTID_NEXT='AUTOMATIC';"] if errant_set else []),
            "reset_on_replica": reset_sql if errant_set else [],
        }))
        sys.exit(1 if errant_set else 0)
    if fix == "none":
        if errant_set:
            click.echo(str(errant_set))
        sys.exit(1 if errant_set else 0)
    out = click.echo
    out(f"-- source:  {src.label}")
    out(f"-- replica: {rep.label}")
    if missing:
        out(f"-- the replica has not yet applied {_plural(len(missing))} of the source "
            f"(lag or filters, not errant): {missing}")
    if not errant_set:
        out("-- no errant transactions: every GTID the replica executed is in the source's "
            "gtid_executed")
        sys.exit(0)
    out(f"-- errant: {_plural(len(errant_set))} executed on the replica and never on the "
        "source:")
    out(f"-- {errant_set}")
    if fix == "inject":
        out("-- fix: run on the SOURCE. Each errant GTID becomes an empty transaction there,")
        out("-- so the source, and through it every replica, counts it as executed; the")
        out("-- replica's data changes stay only on the replica (compare the data if they")
        out("-- matter). Tagged GTIDs need the TRANSACTION_GTID_TAG privilege.")
        for g in _single_gtids(errant_set):
            out(f"SET GTID_NEXT='{g}'; BEGIN; COMMIT;")
        out("SET GTID_NEXT='AUTOMATIC';")
    else:
        out(f"-- fix: run on the REPLICA. {reset} deletes its binary logs (a replica of")
        out("-- this replica loses them) and gtid_purged is set to what it executed minus")
        out("-- the errant GTIDs; their data changes stay.")
        for line in reset_sql:
            out(line)
    sys.exit(1)


def _errant_mariadb(src: Operand, rep: Operand, fix: str, as_json: bool) -> None:
    s, r = _entries(src.as_mariadb()), _entries(rep.as_mariadb())
    found = sorted((d, sv, n) for (d, sv), n in r.items() if s.get((d, sv), -1) < n)
    text = ",".join(f"{d}-{sv}-{n}" for d, sv, n in found)
    src_domains = {d for d, _ in s}
    if as_json:
        click.echo(json.dumps({
            "flavor": "mariadb", "source": src.label, "replica": rep.label, "errant": text,
            "entries": [{"domain": d, "server_id": sv, "seq_no": n,
                         "source_seq_no": s.get((d, sv)),
                         "domain_on_source": d in src_domains} for d, sv, n in found],
        }))
        sys.exit(1 if found else 0)
    if fix == "none":
        if found:
            click.echo(text)
        sys.exit(1 if found else 0)
    out = click.echo
    out(f"-- source:  {src.label}")
    out(f"-- replica: {rep.label}")
    if not found:
        out("-- no errant transactions: every (domain, server_id) of the replica's binlog "
            "state is in the source's, at the same or a later seq_no")
        sys.exit(0)
    out(f"-- errant: {text}")
    for d, sv, n in found:
        if d not in src_domains:
            why = f"domain {d} does not exist on the source"
        elif (d, sv) not in s:
            why = f"the source has no transaction of server_id {sv} in domain {d}"
        else:
            why = f"the source has server_id {sv} in domain {d} only up to seq_no {s[(d, sv)]}"
        out(f"--   {d}-{sv}-{n}: the replica logged up to seq_no {n}; {why}")
    if fix == "inject":
        out("-- MariaDB does not binlog empty transactions, so they cannot be injected on the")
        out("-- source. Apply the same changes on the source if it needs them; then, or if")
        out("-- it does not, remove them from the replica's binlog state (--fix reset).")
    else:
        out("-- fix: run on the REPLICA (nothing may replicate from it: RESET MASTER deletes")
        out("-- its binary logs). Its gtid_current_pos then follows gtid_slave_pos again;")
        out("-- the data changes stay.")
        out("STOP SLAVE;")
        out("RESET MASTER;")
        out("START SLAVE;")
        new_domains = sorted({d for d, _, _ in found if d not in src_domains})
        if new_domains:
            out("-- or keep the binary logs and drop only the extra domains, once no binlog")
            out("-- holding them is left (PURGE BINARY LOGS first):")
            out(f"FLUSH BINARY LOGS DELETE_DOMAIN_ID = ({', '.join(map(str, new_domains))});")
    sys.exit(1)
