"""Tokenizer and recursive-descent parser for the SQL subset the replay
engine runs (see docs/replay-engine.md for the grammar).

``parse(sql)`` gives one :data:`Statement`, ``parse_many(script)`` a list
(split on ``;`` outside quotes and comments). Anything outside the subset
raises :class:`SqlError` naming the position and what was expected.

Not supported: joins, subqueries, GROUP BY/HAVING, aggregates, CASE, IF(),
CAST, table aliases, multi-table UPDATE/DELETE, ALTER TABLE, foreign keys,
generated columns, character set or collation clauses on columns (ignored in
table options only), hex/bit literals, ``"double quoted"`` strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class ReplayError(Exception):
    """Base of the replay engine's errors."""


class SqlError(ReplayError):
    """A statement cannot be parsed or run. ``code`` is the MySQL error
    number when one applies (1062 duplicate entry, 1264 out of range ...)."""

    def __init__(self, message: str, code: int = 0, pos: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.pos = pos


# --- AST: expressions ------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any  # int, Decimal, float, str, None


@dataclass(frozen=True)
class Column:
    name: str
    table: str | None = None


@dataclass(frozen=True)
class UserVar:
    name: str  # lower-case, without '@'


@dataclass(frozen=True)
class SysVar:
    name: str  # lower-case, without '@@' and scope


@dataclass(frozen=True)
class Default:
    """``DEFAULT`` as a value in INSERT/UPDATE/SET."""


@dataclass(frozen=True)
class Unary:
    op: str  # '-', 'NOT'
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / DIV % = <> < <= > >= <=> AND OR XOR
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsNull:
    operand: Expr
    negated: bool = False


@dataclass(frozen=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True)
class Like:
    operand: Expr
    pattern: Expr
    negated: bool = False


@dataclass(frozen=True)
class Interval:
    amount: Expr
    unit: str  # SECOND MINUTE HOUR DAY


@dataclass(frozen=True)
class Func:
    name: str  # upper-case
    args: tuple[Expr, ...] = ()


Expr = (Literal | Column | UserVar | SysVar | Default | Unary | Binary | IsNull | Between
        | InList | Like | Interval | Func)


# --- AST: statements ------------------------------------------------------------


@dataclass(frozen=True)
class TableName:
    name: str
    schema: str | None = None


@dataclass(frozen=True)
class TypeSpec:
    """``base`` upper-case (INT, VARCHAR, DECIMAL, DATETIME ...); ``length`` for
    CHAR/VARCHAR/BINARY/VARBINARY, precision for DECIMAL, fsp for temporal."""

    base: str
    length: int | None = None
    scale: int | None = None
    unsigned: bool = False


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: TypeSpec
    nullable: bool = True
    auto_increment: bool = False
    default: Expr | None = None
    primary: bool = False
    unique: bool = False
    not_null_given: bool = False


@dataclass(frozen=True)
class IndexDef:
    name: str
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class CreateTable:
    table: TableName
    columns: tuple[ColumnDef, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[IndexDef, ...] = ()
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropTable:
    tables: tuple[TableName, ...]
    if_exists: bool = False


@dataclass(frozen=True)
class CreateDatabase:
    name: str
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropDatabase:
    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class Use:
    name: str


@dataclass(frozen=True)
class Truncate:
    table: TableName


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    desc: bool = False


@dataclass(frozen=True)
class SelectItem:
    expr: Expr | None  # None: '*'
    alias: str | None = None


@dataclass(frozen=True)
class Select:
    items: tuple[SelectItem, ...]
    table: TableName | None = None
    where: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Insert:
    table: TableName
    columns: tuple[str, ...] | None
    rows: tuple[tuple[Expr, ...], ...] = ()
    select: Select | None = None
    ignore: bool = False
    replace: bool = False
    on_duplicate: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class Update:
    table: TableName
    assignments: tuple[tuple[str, Expr], ...]
    where: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Delete:
    table: TableName
    where: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Begin:
    pass


@dataclass(frozen=True)
class Commit:
    pass


@dataclass(frozen=True)
class Rollback:
    pass


@dataclass(frozen=True)
class SetVars:
    """``SET @u = e, [SESSION|@@session.]v = e, NAMES x``: (kind, name, expr)
    with kind ``"user"`` or ``"system"``; ``NAMES cs`` is ("system", "names", Literal)."""

    items: tuple[tuple[str, str, Expr], ...]


Statement = (CreateTable | DropTable | CreateDatabase | DropDatabase | Use | Truncate | Select
             | Insert | Update | Delete | Begin | Commit | Rollback | SetVars)

DDL_TYPES = (CreateTable, DropTable, CreateDatabase, DropDatabase, Truncate)

# --- tokens ------------------------------------------------------------------------

INT_TYPES = {"TINYINT": 1, "SMALLINT": 2, "MEDIUMINT": 3, "INT": 4, "INTEGER": 4, "BIGINT": 8}
TEMPORAL = ("DATE", "DATETIME", "TIMESTAMP")
INTERVAL_UNITS = ("SECOND", "MINUTE", "HOUR", "DAY")
FUNCTIONS = {
    # name: (min args, max args)
    "NOW": (0, 1), "CURRENT_TIMESTAMP": (0, 1), "SYSDATE": (0, 1), "RAND": (0, 1),
    "UUID": (0, 0), "LAST_INSERT_ID": (0, 1), "CONCAT": (1, 255), "COALESCE": (1, 255),
    "IFNULL": (2, 2), "LENGTH": (1, 1), "UPPER": (1, 1), "LOWER": (1, 1), "UCASE": (1, 1),
    "LCASE": (1, 1), "ABS": (1, 1), "FLOOR": (1, 1), "CEIL": (1, 1), "CEILING": (1, 1),
    "ROUND": (1, 2), "MOD": (2, 2), "DATE_ADD": (2, 2), "DATE_SUB": (2, 2), "VALUES": (1, 1),
    "ISNULL": (1, 1), "CONCAT_WS": (2, 255),
}
_RESERVED = {
    "SELECT", "FROM", "WHERE", "ORDER", "BY", "LIMIT", "AND", "OR", "NOT", "XOR", "IS", "NULL",
    "IN", "BETWEEN", "LIKE", "SET", "VALUES", "VALUE", "INSERT", "UPDATE", "DELETE", "INTO",
    "ON", "DUPLICATE", "KEY", "ASC", "DESC", "DIV", "MOD", "INTERVAL", "DEFAULT", "TRUE",
    "FALSE", "AS", "CREATE", "DROP", "TABLE", "PRIMARY", "UNIQUE", "INDEX", "OFFSET",
}

_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[ \t][^\n]*|--$|\#[^\n]*|/\*.*?\*/)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_$0-9]))
  | (?P<sysvar>@@(?:(?:session|global|local)\.)?[A-Za-z_][A-Za-z_0-9$]*)
  | (?P<uservar>@(?:[A-Za-z_0-9.$]+|`(?:[^`]|``)+`|'(?:[^'\\]|\\.|'')*'))
  | (?P<ident>[A-Za-z_$][A-Za-z_$0-9]*|\d+[A-Za-z_$][A-Za-z_$0-9]*)
  | (?P<qident>`(?:[^`]|``)*`)
  | (?P<str>'(?:[^'\\]|\\.|'')*')
  | (?P<op><=>|<>|!=|<=|>=|:=|\|\||&&|[-+*/%=<>(),.;!])
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t",
            "Z": "\x1a", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # num ident qident str op sysvar uservar eof
    text: str
    pos: int
    value: Any = None

    def describe(self) -> str:
        return "end of statement" if self.kind == "eof" else repr(self.text)


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            # \% and \_ keep the backslash (LIKE patterns), as MySQL does.
            out.append(_ESCAPES.get(nxt, "\\" + nxt if nxt in "%_" else nxt))
            i += 2
        elif ch == "'" and body.startswith("''", i):
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _number(text: str) -> int | Decimal | float:
    if "e" in text or "E" in text:
        return float(text)
    if "." in text:
        return Decimal(text)
    return int(text)


def tokenize(sql: str) -> list[Token]:
    """The tokens of one statement (comments and white space dropped)."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            what = {"'": "unterminated string", "`": "unterminated quoted name"}.get(
                sql[pos], f"unexpected character {sql[pos]!r}")
            raise SqlError(f"at position {pos}: {what}", pos=pos)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            pos = m.end()
            continue
        value: Any = None
        if kind == "num":
            value = _number(text)
        elif kind == "str":
            value = _unescape(text[1:-1])
        elif kind == "qident":
            kind, value = "ident", text[1:-1].replace("``", "`")
        elif kind == "ident":
            value = text
        elif kind == "uservar":
            name = text[1:]
            if name[:1] in "`'":
                name = name[1:-1]
            value = name.lower()
        elif kind == "sysvar":
            value = text[2:].lower().split(".")[-1]
        tokens.append(Token(kind, text, pos, value))
        pos = m.end()
    tokens.append(Token("eof", "", len(sql)))
    return tokens


def split_statements(script: str) -> list[str]:
    """``script`` split on ``;`` outside quotes and comments; empty pieces dropped."""
    out: list[str] = []
    start = 0
    pos = 0
    while pos < len(script):
        m = _TOKEN.match(script, pos)
        if not m:
            pos += 1
            continue
        if m.group() == ";" and m.lastgroup == "op":
            out.append(script[start:pos])
            start = m.end()
        pos = m.end()
    out.append(script[start:])
    return [s.strip() for s in out if s.strip() and tokenize(s)[0].kind != "eof"]


# --- parser ---------------------------------------------------------------------


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = tokenize(sql)
        self.i = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.toks[min(self.i + n, len(self.toks) - 1)]

    def error(self, expected: str, tok: Token | None = None) -> SqlError:
        t = tok or self.tok
        near = self.sql[t.pos:t.pos + 20]
        return SqlError(f"at position {t.pos}: expected {expected}, found {t.describe()}"
                        + (f" near {near!r}" if near and near != t.text else ""), pos=t.pos)

    def is_kw(self, *words: str, tok: Token | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "ident" and t.text.upper() in words and not t.text.startswith("`")

    def accept_kw(self, *words: str) -> str | None:
        if self.is_kw(*words):
            word = self.tok.text.upper()
            self.i += 1
            return word
        return None

    def expect_kw(self, *words: str) -> str:
        word = self.accept_kw(*words)
        if word is None:
            raise self.error(" or ".join(words))
        return word

    def accept_op(self, *ops: str) -> str | None:
        if self.tok.kind == "op" and self.tok.text in ops:
            self.i += 1
            return self.toks[self.i - 1].text
        return None

    def expect_op(self, op: str) -> None:
        if self.accept_op(op) is None:
            raise self.error(repr(op))

    def ident(self, what: str = "an identifier") -> str:
        t = self.tok
        if t.kind != "ident" or (not t.text.startswith("`") and t.text.upper() in _RESERVED):
            raise self.error(what)
        self.i += 1
        return str(t.value)

    def int_value(self, what: str = "a number") -> int:
        t = self.tok
        if t.kind != "num" or not isinstance(t.value, int):
            raise self.error(what)
        self.i += 1
        return int(t.value)

    def table_name(self) -> TableName:
        first = self.ident("a table name")
        if self.tok.kind == "op" and self.tok.text == "." and self.peek().kind == "ident":
            self.i += 1
            return TableName(self.ident("a table name"), first)
        return TableName(first)

    def end(self) -> None:
        if self.tok.kind == "op" and self.tok.text == ";":
            self.i += 1
        if self.tok.kind != "eof":
            raise self.error("end of statement")

    # statements
    def statement(self) -> Statement:
        t = self.tok
        word = t.text.upper() if t.kind == "ident" else ""
        handler = {
            "CREATE": self.create, "DROP": self.drop, "USE": self.use,
            "TRUNCATE": self.truncate, "INSERT": self.insert, "REPLACE": self.insert,
            "UPDATE": self.update, "DELETE": self.delete, "SELECT": self.select_stmt,
            "BEGIN": self.begin, "START": self.begin, "COMMIT": self.commit,
            "ROLLBACK": self.rollback, "SET": self.set_stmt,
        }.get(word)
        if handler is None:
            raise self.error("a statement (CREATE, DROP, USE, TRUNCATE, INSERT, REPLACE, "
                             "UPDATE, DELETE, SELECT, BEGIN, START TRANSACTION, COMMIT, "
                             "ROLLBACK, SET)")
        stmt = handler()
        self.end()
        return stmt

    def begin(self) -> Begin:
        if self.accept_kw("START"):
            self.expect_kw("TRANSACTION")
        else:
            self.expect_kw("BEGIN")
            self.accept_kw("WORK")
        return Begin()

    def commit(self) -> Commit:
        self.expect_kw("COMMIT")
        self.accept_kw("WORK")
        return Commit()

    def rollback(self) -> Rollback:
        self.expect_kw("ROLLBACK")
        self.accept_kw("WORK")
        return Rollback()

    def use(self) -> Use:
        self.expect_kw("USE")
        return Use(self.ident("a database name"))

    def truncate(self) -> Truncate:
        self.expect_kw("TRUNCATE")
        self.accept_kw("TABLE")
        return Truncate(self.table_name())

    def create(self) -> Statement:
        self.expect_kw("CREATE")
        if self.accept_kw("DATABASE", "SCHEMA"):
            ine = self.if_not_exists()
            name = self.ident("a database name")
            self.table_options()
            return CreateDatabase(name, ine)
        self.expect_kw("TABLE")
        ine = self.if_not_exists()
        table = self.table_name()
        self.expect_op("(")
        cols: list[ColumnDef] = []
        pk: tuple[str, ...] = ()
        indexes: list[IndexDef] = []
        while True:
            if self.is_kw("PRIMARY"):
                self.i += 1
                self.expect_kw("KEY")
                if pk:
                    raise self.error("one PRIMARY KEY", self.toks[self.i - 2])
                pk = self.index_columns()
            elif self.is_kw("KEY", "INDEX", "UNIQUE"):
                unique = self.accept_kw("UNIQUE") is not None
                word = self.accept_kw("KEY", "INDEX")
                if not unique and word is None:
                    raise self.error("KEY or INDEX")
                name = ""
                if self.tok.kind == "ident" and not (self.tok.kind == "op"):
                    name = self.ident("an index name")
                columns = self.index_columns()
                indexes.append(IndexDef(name or columns[0], columns, unique))
            else:
                cols.append(self.column_def())
            if self.accept_op(","):
                continue
            self.expect_op(")")
            break
        self.table_options()
        inline_pk = tuple(c.name for c in cols if c.primary)
        if inline_pk and pk:
            raise SqlError(f"{table.name}: multiple primary keys defined", code=1068)
        pk = pk or inline_pk
        if len(inline_pk) > 1:
            raise SqlError(f"{table.name}: multiple primary keys defined", code=1068)
        for c in cols:
            if c.unique:
                indexes.append(IndexDef(c.name, (c.name,), True))
        return CreateTable(table, tuple(cols), pk, tuple(indexes), ine)

    def if_not_exists(self) -> bool:
        if self.accept_kw("IF"):
            self.expect_kw("NOT")
            self.expect_kw("EXISTS")
            return True
        return False

    def index_columns(self) -> tuple[str, ...]:
        self.expect_op("(")
        names = [self.ident("a column name")]
        if self.accept_op("("):
            raise self.error("')' (index prefixes are not supported)", self.toks[self.i - 1])
        while self.accept_op(","):
            names.append(self.ident("a column name"))
        self.expect_op(")")
        return tuple(names)

    def table_options(self) -> None:
        """``ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 ...``: accepted and ignored."""
        while self.tok.kind == "ident":
            self.accept_kw("DEFAULT")
            if self.tok.kind != "ident":
                raise self.error("a table option")
            self.i += 1
            if self.is_kw("SET") and self.toks[self.i - 1].text.upper() == "CHARACTER":
                self.i += 1
            self.accept_op("=")
            if self.tok.kind in ("ident", "num", "str"):
                self.i += 1
            else:
                raise self.error("a table option value")
            self.accept_op(",")

    def type_spec(self) -> TypeSpec:
        t = self.tok
        base = self.expect_kw(*INT_TYPES, "DECIMAL", "NUMERIC", "DEC", "DOUBLE", "FLOAT",
                              "REAL", "CHAR", "VARCHAR", "TEXT", "BINARY", "VARBINARY",
                              "BLOB", *TEMPORAL) if t.kind == "ident" else self.expect_kw("a type")
        length: int | None = None
        scale: int | None = None
        if base == "INTEGER":
            base = "INT"
        if base in ("NUMERIC", "DEC"):
            base = "DECIMAL"
        if base == "REAL":
            base = "DOUBLE"
        if base == "DOUBLE":
            self.accept_kw("PRECISION")
        if self.accept_op("("):
            length = self.int_value("a length")
            if self.accept_op(","):
                scale = self.int_value("a scale")
            self.expect_op(")")
        if base == "DECIMAL":
            length = 10 if length is None else length
            scale = 0 if scale is None else scale
            if not 1 <= length <= 65 or scale > 30 or scale > length:
                raise SqlError(f"bad DECIMAL({length},{scale})", code=1426, pos=t.pos)
        elif base in ("CHAR", "BINARY"):
            length = 1 if length is None else length
            if length > 255:
                raise SqlError(f"column length too big for {base} (max 255)", 1074, t.pos)
        elif base in ("VARCHAR", "VARBINARY"):
            if length is None:
                raise self.error(f"({base} needs a length)")
        elif base in ("DATETIME", "TIMESTAMP"):
            length = 0 if length is None else length
            if length > 6:
                raise SqlError(f"too big precision {length} for {base} (max 6)", 1426, t.pos)
        elif base in ("DOUBLE", "FLOAT"):
            if scale is not None:
                raise SqlError(f"{base}(M,D) is not supported", pos=t.pos)
            length = None
        elif length is not None and base in ("TEXT", "BLOB", "DATE"):
            raise SqlError(f"{base}(n) is not supported", pos=t.pos)
        elif base in INT_TYPES:
            length = None  # display width: ignored
        unsigned = False
        while self.is_kw("UNSIGNED", "SIGNED", "ZEROFILL"):
            word = self.expect_kw("UNSIGNED", "SIGNED", "ZEROFILL")
            if word == "ZEROFILL":
                raise self.error("a column attribute (ZEROFILL is not supported)",
                                 self.toks[self.i - 1])
            unsigned = word == "UNSIGNED"
        if unsigned and base not in INT_TYPES and base not in ("DECIMAL", "DOUBLE", "FLOAT"):
            raise self.error("a column attribute", self.toks[self.i - 1])
        return TypeSpec(base, length, scale, unsigned)

    def column_def(self) -> ColumnDef:
        name = self.ident("a column name or PRIMARY KEY/KEY/INDEX/UNIQUE")
        spec = self.type_spec()
        nullable = True
        not_null_given = False
        auto = primary = unique = False
        default: Expr | None = None
        while True:
            if self.accept_kw("NOT"):
                self.expect_kw("NULL")
                nullable, not_null_given = False, True
            elif self.accept_kw("NULL"):
                nullable = True
            elif self.accept_kw("AUTO_INCREMENT"):
                auto = True
            elif self.accept_kw("DEFAULT"):
                default = self.default_value()
            elif self.accept_kw("PRIMARY"):
                self.expect_kw("KEY")
                primary = True
            elif self.accept_kw("UNIQUE"):
                self.accept_kw("KEY")
                unique = True
            elif self.accept_kw("KEY"):
                primary = True
            elif self.accept_kw("COMMENT"):
                if self.tok.kind != "str":
                    raise self.error("a string")
                self.i += 1
            elif self.accept_kw("ON"):
                self.expect_kw("UPDATE")
                raise self.error("a column attribute (ON UPDATE is not supported)",
                                 self.toks[self.i - 1])
            else:
                break
        if primary:
            nullable = False
        return ColumnDef(name, spec, nullable, auto, default, primary, unique, not_null_given)

    def default_value(self) -> Expr:
        if self.is_kw("CURRENT_TIMESTAMP", "NOW"):
            name = self.expect_kw("CURRENT_TIMESTAMP", "NOW")
            args: tuple[Expr, ...] = ()
            if self.accept_op("("):
                if self.tok.kind == "num":
                    args = (Literal(self.int_value()),)
                self.expect_op(")")
            elif name == "NOW":
                raise self.error("'('")
            return Func("CURRENT_TIMESTAMP", args)
        neg = self.accept_op("-", "+")
        t = self.tok
        if t.kind in ("num", "str"):
            self.i += 1
            value = t.value
            if neg == "-":
                if t.kind != "num":
                    raise self.error("a number", t)
                value = -value
            return Literal(value)
        if neg is None and self.accept_kw("NULL"):
            return Literal(None)
        if neg is None and self.is_kw("TRUE", "FALSE"):
            return Literal(int(self.expect_kw("TRUE", "FALSE") == "TRUE"))
        raise self.error("a literal or CURRENT_TIMESTAMP")

    def drop(self) -> Statement:
        self.expect_kw("DROP")
        if self.accept_kw("DATABASE", "SCHEMA"):
            ie = self.if_exists()
            return DropDatabase(self.ident("a database name"), ie)
        self.expect_kw("TABLE")
        ie = self.if_exists()
        tables = [self.table_name()]
        while self.accept_op(","):
            tables.append(self.table_name())
        return DropTable(tuple(tables), ie)

    def if_exists(self) -> bool:
        if self.accept_kw("IF"):
            self.expect_kw("EXISTS")
            return True
        return False

    def insert(self) -> Insert:
        replace = self.expect_kw("INSERT", "REPLACE") == "REPLACE"
        ignore = False if replace else self.accept_kw("IGNORE") is not None
        self.accept_kw("INTO")
        table = self.table_name()
        columns: tuple[str, ...] | None = None
        if self.tok.kind == "op" and self.tok.text == "(" and not self.is_kw(
                "SELECT", tok=self.peek()):
            self.i += 1
            names: list[str] = []
            if not self.accept_op(")"):
                names.append(self.ident("a column name"))
                while self.accept_op(","):
                    names.append(self.ident("a column name"))
                self.expect_op(")")
            columns = tuple(names)
        rows: list[tuple[Expr, ...]] = []
        select: Select | None = None
        if self.accept_kw("VALUES", "VALUE"):
            while True:
                self.expect_op("(")
                vals: list[Expr] = []
                if not self.accept_op(")"):
                    vals.append(self.expr())
                    while self.accept_op(","):
                        vals.append(self.expr())
                    self.expect_op(")")
                rows.append(tuple(vals))
                if not self.accept_op(","):
                    break
        elif self.is_kw("SELECT"):
            select = self.select()
        elif self.tok.kind == "op" and self.tok.text == "(" and self.is_kw("SELECT",
                                                                         tok=self.peek()):
            self.i += 1
            select = self.select()
            self.expect_op(")")
        else:
            raise self.error("VALUES or SELECT")
        odku: list[tuple[str, Expr]] = []
        if not replace and self.accept_kw("ON"):
            self.expect_kw("DUPLICATE")
            self.expect_kw("KEY")
            self.expect_kw("UPDATE")
            odku = self.assignments()
        return Insert(table, columns, tuple(rows), select, ignore, replace, tuple(odku))

    def assignments(self) -> list[tuple[str, Expr]]:
        out: list[tuple[str, Expr]] = []
        while True:
            name = self.column_name()
            self.expect_op("=")
            out.append((name, self.expr()))
            if not self.accept_op(","):
                return out

    def column_name(self) -> str:
        name = self.ident("a column name")
        while self.accept_op("."):
            name = self.ident("a column name")
        return name

    def update(self) -> Update:
        self.expect_kw("UPDATE")
        self.accept_kw("LOW_PRIORITY")
        if self.accept_kw("IGNORE"):
            raise self.error("a table name (UPDATE IGNORE is not supported)",
                             self.toks[self.i - 1])
        table = self.table_name()
        self.expect_kw("SET")
        assigns = self.assignments()
        where = self.where()
        order = self.order_by()
        limit, offset = self.limit()
        if offset:
            raise self.error("end of statement (UPDATE has no OFFSET)")
        return Update(table, tuple(assigns), where, order, limit)

    def delete(self) -> Delete:
        self.expect_kw("DELETE")
        self.expect_kw("FROM")
        table = self.table_name()
        where = self.where()
        order = self.order_by()
        limit, offset = self.limit(allow_offset=False)
        return Delete(table, where, order, limit)

    def where(self) -> Expr | None:
        return self.expr() if self.accept_kw("WHERE") else None

    def order_by(self) -> tuple[OrderItem, ...]:
        if not self.accept_kw("ORDER"):
            return ()
        self.expect_kw("BY")
        items: list[OrderItem] = []
        while True:
            e = self.expr()
            desc = self.accept_kw("ASC", "DESC") == "DESC"
            items.append(OrderItem(e, desc))
            if not self.accept_op(","):
                return tuple(items)

    def limit(self, allow_offset: bool = True) -> tuple[int | None, int]:
        if not self.accept_kw("LIMIT"):
            return None, 0
        n = self.int_value("a row count")
        if allow_offset and self.accept_op(","):
            return self.int_value("a row count"), n
        if allow_offset and self.accept_kw("OFFSET"):
            return n, self.int_value("an offset")
        return n, 0

    def select_stmt(self) -> Select:
        return self.select()

    def select(self) -> Select:
        self.expect_kw("SELECT")
        items: list[SelectItem] = []
        while True:
            if self.accept_op("*"):
                items.append(SelectItem(None))
            else:
                e = self.expr()
                alias = None
                if self.accept_kw("AS"):
                    alias = self.ident("an alias")
                elif self.tok.kind == "ident" and self.tok.text.upper() not in _RESERVED:
                    alias = self.ident()
                items.append(SelectItem(e, alias))
            if not self.accept_op(","):
                break
        table = None
        if self.accept_kw("FROM"):
            table = self.table_name()
            if self.tok.kind == "ident" and self.tok.text.upper() not in _RESERVED:
                raise self.error("WHERE, ORDER BY, LIMIT or end of statement (no aliases "
                                 "or joins)")
        where = self.where()
        order = self.order_by()
        limit, offset = self.limit()
        return Select(tuple(items), table, where, order, limit, offset)

    def set_stmt(self) -> SetVars:
        self.expect_kw("SET")
        items: list[tuple[str, str, Expr]] = []
        while True:
            t = self.tok
            if t.kind == "uservar":
                self.i += 1
                if self.accept_op("=", ":=") is None:
                    raise self.error("'='")
                items.append(("user", str(t.value), self.expr()))
            else:
                if t.kind == "sysvar":
                    self.i += 1
                    name = str(t.value)
                else:
                    self.accept_kw("SESSION", "LOCAL")
                    if self.accept_kw("GLOBAL"):
                        raise self.error("a session variable (SET GLOBAL is not supported)",
                                         self.toks[self.i - 1])
                    if self.is_kw("NAMES"):
                        self.i += 1
                        value = self.tok
                        if value.kind not in ("ident", "str"):
                            raise self.error("a character set name")
                        self.i += 1
                        if self.accept_kw("COLLATE"):
                            self.i += 1
                        items.append(("system", "names", Literal(str(value.value))))
                        if not self.accept_op(","):
                            break
                        continue
                    name = self.ident("a variable name").lower()
                self.expect_op("=")
                if self.tok.kind == "ident" and self.tok.text.upper() not in _RESERVED \
                        and self.peek().text in ("", ",", ";"):
                    # SET sql_mode = TRADITIONAL, autocommit = ON: a bare word
                    word = self.tok.text
                    self.i += 1
                    items.append(("system", name, Literal(word)))
                else:
                    items.append(("system", name, self.expr()))
            if not self.accept_op(","):
                break
        return SetVars(tuple(items))

    # expressions, lowest precedence first
    def expr(self) -> Expr:
        left = self.xor_expr()
        while self.accept_kw("OR") or self.accept_op("||"):
            left = Binary("OR", left, self.xor_expr())
        return left

    def xor_expr(self) -> Expr:
        left = self.and_expr()
        while self.accept_kw("XOR"):
            left = Binary("XOR", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.accept_kw("AND") or self.accept_op("&&"):
            left = Binary("AND", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.accept_kw("NOT"):
            return Unary("NOT", self.not_expr())
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.additive()
        while True:
            if self.tok.kind == "op" and self.tok.text in ("=", "<>", "!=", "<", "<=", ">",
                                                           ">=", "<=>"):
                op = self.tok.text
                self.i += 1
                left = Binary("<>" if op == "!=" else op, left, self.additive())
                continue
            if self.accept_kw("IS"):
                neg = self.accept_kw("NOT") is not None
                if self.accept_kw("NULL"):
                    left = IsNull(left, neg)
                    continue
                word = self.expect_kw("TRUE", "FALSE", "NULL")
                truth = Literal(1 if word == "TRUE" else 0)
                cmp: Expr = Binary("<=>", Func("ISTRUE", (left,)), truth)
                left = Unary("NOT", cmp) if neg else cmp
                continue
            save = self.i
            neg = self.accept_kw("NOT") is not None
            if self.accept_kw("BETWEEN"):
                low = self.additive()
                self.expect_kw("AND")
                left = Between(left, low, self.additive(), neg)
            elif self.accept_kw("IN"):
                self.expect_op("(")
                if self.is_kw("SELECT"):
                    raise self.error("a value list (subqueries are not supported)")
                items = [self.expr()]
                while self.accept_op(","):
                    items.append(self.expr())
                self.expect_op(")")
                left = InList(left, tuple(items), neg)
            elif self.accept_kw("LIKE"):
                left = Like(left, self.additive(), neg)
                if self.is_kw("ESCAPE"):
                    raise self.error("end of LIKE (ESCAPE is not supported)")
            else:
                if neg:
                    self.i = save
                    raise self.error("BETWEEN, IN or LIKE after NOT", self.peek(0))
                return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while True:
            op = self.accept_op("+", "-")
            if op is None:
                return left
            right = self.multiplicative()
            if isinstance(left, Interval) or (op == "-" and isinstance(right, Interval)) \
                    or isinstance(right, Interval):
                if isinstance(left, Interval):
                    if op == "-":
                        raise self.error("an expression (INTERVAL - x is invalid)")
                    left, right = right, left
                left = Func("DATE_ADD" if op == "+" else "DATE_SUB", (left, right))
            else:
                left = Binary(op, left, right)

    def multiplicative(self) -> Expr:
        left = self.unary()
        while True:
            op = self.accept_op("*", "/", "%")
            if op is None:
                kw = self.accept_kw("DIV", "MOD")
                if kw is None:
                    return left
                op = "DIV" if kw == "DIV" else "%"
            left = Binary(op, left, self.unary())

    def unary(self) -> Expr:
        if self.accept_op("-"):
            inner = self.unary()
            if isinstance(inner, Literal) and isinstance(inner.value, int | Decimal | float) \
                    and not isinstance(inner.value, bool):
                return Literal(-inner.value)
            return Unary("-", inner)
        if self.accept_op("+"):
            return self.unary()
        if self.accept_op("!"):
            return Unary("NOT", self.unary())
        return self.primary()

    def primary(self) -> Expr:
        t = self.tok
        if t.kind in ("num", "str"):
            self.i += 1
            if t.kind == "str":
                # adjacent string literals concatenate, as in MySQL
                parts = [str(t.value)]
                while self.tok.kind == "str":
                    parts.append(str(self.tok.value))
                    self.i += 1
                return Literal("".join(parts))
            return Literal(t.value)
        if t.kind == "uservar":
            self.i += 1
            return UserVar(str(t.value))
        if t.kind == "sysvar":
            self.i += 1
            return SysVar(str(t.value))
        if t.kind == "op" and t.text == "(":
            self.i += 1
            if self.is_kw("SELECT"):
                raise self.error("an expression (subqueries are not supported)")
            e = self.expr()
            self.expect_op(")")
            return e
        if t.kind == "ident":
            word = t.text.upper() if not t.text.startswith("`") else ""
            if word == "NULL":
                self.i += 1
                return Literal(None)
            if word in ("TRUE", "FALSE"):
                self.i += 1
                return Literal(int(word == "TRUE"))
            if word == "DEFAULT" and not (self.peek().kind == "op" and self.peek().text == "("):
                self.i += 1
                return Default()
            if word == "INTERVAL":
                self.i += 1
                amount = self.expr()
                unit = self.expect_kw(*INTERVAL_UNITS)
                return Interval(amount, unit)
            if word in ("CURRENT_TIMESTAMP", "LOCALTIME", "LOCALTIMESTAMP") and not (
                    self.peek().kind == "op" and self.peek().text == "("):
                self.i += 1
                return Func("NOW")
            if self.peek().kind == "op" and self.peek().text == "(" and word:
                return self.function()
            name = self.ident("an expression")
            if self.tok.kind == "op" and self.tok.text == "." and self.peek().kind == "ident":
                self.i += 1
                table, name = name, self.ident("a column name")
                if self.tok.kind == "op" and self.tok.text == "." \
                        and self.peek().kind == "ident":
                    self.i += 1
                    table, name = name, self.ident("a column name")
                return Column(name, table)
            return Column(name)
        raise self.error("an expression")

    def function(self) -> Expr:
        t = self.tok
        name = t.text.upper()
        if name not in FUNCTIONS:
            raise self.error("a supported function (" + ", ".join(sorted(FUNCTIONS)) + ")")
        self.i += 2
        args: list[Expr] = []
        if not self.accept_op(")"):
            args.append(self.expr())
            while self.accept_op(","):
                args.append(self.expr())
            self.expect_op(")")
        lo, hi = FUNCTIONS[name]
        if not lo <= len(args) <= hi:
            raise SqlError(f"at position {t.pos}: wrong number of arguments to {name}()",
                           code=1582, pos=t.pos)
        if name in ("DATE_ADD", "DATE_SUB") and not isinstance(args[1], Interval):
            raise SqlError(f"at position {t.pos}: {name}() needs INTERVAL n unit", pos=t.pos)
        if name == "VALUES" and not isinstance(args[0], Column):
            raise SqlError(f"at position {t.pos}: VALUES() takes a column name", pos=t.pos)
        name = {"CURRENT_TIMESTAMP": "NOW", "UCASE": "UPPER", "LCASE": "LOWER",
                "CEILING": "CEIL"}.get(name, name)
        return Func(name, tuple(args))


def parse(sql: str) -> Statement:
    """One statement (a trailing ``;`` is allowed)."""
    return _Parser(sql).statement()


def parse_many(script: str) -> list[Statement]:
    """Every statement of ``script`` (split on ``;`` outside quotes)."""
    return [parse(s) for s in split_statements(script)]


def walk(expr: Expr | None) -> list[Expr]:
    """``expr`` and every expression inside it, depth first."""
    out: list[Expr] = []
    stack: list[Any] = [expr]
    while stack:
        e = stack.pop()
        if e is None:
            continue
        out.append(e)
        if isinstance(e, Unary):
            stack.append(e.operand)
        elif isinstance(e, Binary):
            stack.extend((e.left, e.right))
        elif isinstance(e, IsNull):
            stack.append(e.operand)
        elif isinstance(e, Between):
            stack.extend((e.operand, e.low, e.high))
        elif isinstance(e, InList):
            stack.append(e.operand)
            stack.extend(e.items)
        elif isinstance(e, Like):
            stack.extend((e.operand, e.pattern))
        elif isinstance(e, Interval):
            stack.append(e.amount)
        elif isinstance(e, Func):
            stack.extend(e.args)
    return out
