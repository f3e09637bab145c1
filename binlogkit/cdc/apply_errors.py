"""Errors of ``binlogkit apply --from``: :class:`ApplyError` (apply stops,
one line) and how a target server error reads (its code, whether
reconnecting and trying again may cure it, its text)."""

from __future__ import annotations

from typing import Any

# client and server errors after which reconnecting and trying again may work
TRANSIENT = frozenset({1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055, 4031})


class ApplyError(Exception):
    """Applying stopped: one line, safe to print (no password)."""


def short(v: Any, limit: int = 60) -> str:
    """``repr(v)``, cut at ``limit`` characters (for error lines)."""
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def error_code(exc: BaseException) -> int | None:
    """The server (or client) error number of ``exc``, if it has one."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def transient(exc: BaseException) -> bool:
    """Whether reconnecting and trying again may cure ``exc``."""
    import pymysql  # noqa: PLC0415

    if isinstance(exc, pymysql.err.InterfaceError | ConnectionError | TimeoutError):
        return True
    return error_code(exc) in TRANSIENT


def server_text(exc: BaseException) -> str:
    """``(code) message`` of a server error, else the exception's text."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2:
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__
