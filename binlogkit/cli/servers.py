"""Server URLs, passwords and TLS for CLI commands that query a live server.

A server is named by a URL, ``mysql://user[:password]@host[:port][?gtid=VAR]``
or ``mariadb://...``. Connection settings come, in this order of precedence:

- the URL (user, password, host, port);
- ``--password-env NAME``: the password is the value of environment variable NAME;
- a MySQL option file: ``--defaults-file PATH``, else ``~/.my.cnf`` when it
  exists (``--no-defaults``: none), groups ``[client]``, then
  ``[client-mariadb]`` for mariadb:// URLs, then ``[binlogkit]``; keys
  ``user``, ``password``, ``host``, ``port``, ``ssl-ca``, ``ssl-cert``,
  ``ssl-key``, ``ssl-mode``, ``ssl-verify-server-cert``;
- the environment variable ``MYSQL_PWD`` (as the mysql client: below option
  files);
- defaults: user = login name, host ``localhost``, port 3306.

TLS is required when any of ``--ssl-ca/--ssl-cert/--ssl-key`` is given (or
``ssl-*`` in the option file, or an explicit ``--ssl-verify/--no-ssl-verify``).
``--ssl-verify`` checks the server certificate chain against the CA (the
system's when no ``--ssl-ca``) and the host name; it is on by default when a
CA is given. Without any of these, TLS is used when the server offers it,
without checking the certificate (the mysql client's ``PREFERRED``);
``ssl-mode=DISABLED`` in the option file turns it off.

A password is never printed: every message shows the URL with the password
replaced by ``***`` (and any text of the password found in a server message is
masked too); over an unencrypted connection the password is never sent as it
is (the ``mysql_clear_password`` and ``dialog`` plugins are refused).
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import click
import pymysql

SCHEMES = ("mysql", "mariadb")
DEFAULT_PORT = 3306
MASK = "***"

F = TypeVar("F", bound=Callable[..., Any])


class ServerError(Exception):
    """A server URL is malformed or a server cannot be reached or queried.
    The text is safe to print: it never holds a password. ``code`` is the
    server's or client's error number when there is one (1045: access denied,
    2003: cannot connect)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def is_server_url(text: str) -> bool:
    """True if ``text`` starts with ``mysql://`` or ``mariadb://``."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.lower() in SCHEMES


def mask_url(text: str) -> str:
    """``text`` with the password of a ``scheme://user:password@...`` replaced by
    ``***``. Works on malformed URLs too (the password runs from the first ``:``
    after ``//`` to the last ``@``)."""
    head, sep, rest = text.partition("://")
    if not sep:
        return text
    at = rest.rfind("@")
    if at < 0:
        return text
    user, colon, _ = rest[:at].partition(":")
    if not colon:
        return text
    return f"{head}{sep}{user}:{MASK}{rest[at:]}"


@dataclass(frozen=True)
class ServerURL:
    """A parsed server URL. ``str()`` and ``display`` never show the password."""

    scheme: str
    user: str | None
    password: str | None = field(repr=False)
    host: str | None
    port: int | None
    query: dict[str, str] = field(default_factory=dict, compare=False)
    text: str = field(default="", repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> ServerURL:
        shown = mask_url(text)
        if not is_server_url(text):
            raise ServerError(f"{shown}: a server URL starts with mysql:// or mariadb://")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            # urllib's message may quote part of the password: not shown.
            raise ServerError(f"{shown}: bad server URL, expected "
                              "mysql://user[:password]@host[:port] (port 0-65535; '/', '?', "
                              "'#' in a password must be percent-encoded)") from None
        if parts.path not in ("", "/"):
            raise ServerError(f"{shown}: unexpected path {parts.path!r} in server URL "
                              "(a password holding '/', '?' or '#' must be percent-encoded)")
        query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        return cls(
            scheme=parts.scheme.lower(),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname or None,
            port=port,
            query=query,
            text=text,
        )

    @property
    def display(self) -> str:
        """The URL as typed, password masked."""
        return mask_url(self.text) if self.text else self._built()

    def _built(self) -> str:
        user = self.user or ""
        if self.password is not None:
            user += ":" + MASK
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{user}{'@' if user else ''}{host}{port}"

    def __str__(self) -> str:
        return self.display


# --- option files ---------------------------------------------------------------

_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "\\": "\\", "s": " ",
            '"': '"', "'": "'"}


def _unquote_value(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _strip_comment(value: str) -> str:
    """Drop a ``#`` comment that is outside quotes."""
    quote = ""
    for i, ch in enumerate(value):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\":
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return value[:i]
    return value


def _norm_option(name: str) -> str:
    name = name.strip().lower().replace("_", "-")
    return name[len("loose-"):] if name.startswith("loose-") else name


def read_option_file(path: Path, groups: tuple[str, ...],
                     _depth: int = 0) -> dict[str, str]:
    """The options of ``groups`` (later groups and later lines win) in a MySQL
    option file, following ``!include`` and ``!includedir``."""
    if _depth > 10:
        raise ServerError(f"{path}: !include nested too deeply")
    try:
        st = path.stat()
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ServerError(f"{path}: cannot read option file: {exc.strerror or exc}") from None
    if st.st_mode & stat.S_IWOTH:
        raise ServerError(f"{path}: option file is world-writable; not reading it "
                          "(the mysql client ignores such files too; chmod o-w)")
    found: dict[str, dict[str, str]] = {g: {} for g in groups}
    current: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("!include"):
            directive, _, arg = s.partition(" ")
            target = Path(arg.strip()).expanduser()
            if not target.is_absolute():
                target = path.parent / target
            if directive == "!include":
                files = [target]
            elif directive == "!includedir":
                files = sorted(p for p in target.glob("*") if p.suffix in (".cnf", ".ini"))
            else:
                raise ServerError(f"{path} line {lineno}: unknown directive {directive}")
            for f in files:
                sub = read_option_file(f, groups, _depth + 1)
                if current in found:
                    found[current].update(sub)
                else:
                    for g in groups:
                        found[g].update(sub)
            continue
        if s.startswith("["):
            if not s.endswith("]"):
                raise ServerError(f"{path} line {lineno}: group header without ']'")
            current = s[1:-1].strip().lower()
            continue
        if current not in found:
            continue
        name, eq, value = s.partition("=")
        found[current][_norm_option(name)] = _unquote_value(_strip_comment(value)) if eq else ""
    merged: dict[str, str] = {}
    for g in groups:
        merged.update(found[g])
    return merged


# --- connection settings --------------------------------------------------------


@dataclass(frozen=True)
class ConnectOptions:
    """What the CLI's connection options say (see :func:`connection_options`)."""

    password_env: str | None = None
    defaults_file: str | None = None
    no_defaults: bool = False
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_verify: bool | None = None
    connect_timeout: float = 10.0


def _option_file_settings(opts: ConnectOptions, scheme: str) -> tuple[dict[str, str], str]:
    """(settings, file name) from the option file in effect."""
    if opts.no_defaults:
        return {}, ""
    groups = ("client", f"client-{scheme}", "binlogkit") if scheme == "mariadb" else (
        "client", "binlogkit")
    if opts.defaults_file:
        path = Path(opts.defaults_file).expanduser()
        if not path.is_file():
            raise ServerError(f"--defaults-file {opts.defaults_file}: no such file")
        return read_option_file(path, groups), str(path)
    home = Path("~/.my.cnf").expanduser()
    if home.is_file():
        return read_option_file(home, groups), str(home)
    return {}, ""


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("0", "off", "false", "no", "disabled")


@dataclass(frozen=True)
class Settings:
    """Everything needed to connect; ``password`` is never part of repr."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ssl: dict[str, Any] | None
    password_source: str
    tls_disabled: bool = False


def resolve_settings(url: ServerURL, opts: ConnectOptions) -> Settings:
    """Merge URL, options, option file and environment (see the module doc)."""
    conf, conf_name = _option_file_settings(opts, url.scheme)
    password: str | None = url.password
    source = "URL"
    if password is None and opts.password_env:
        if opts.password_env not in os.environ:
            raise ServerError(f"--password-env {opts.password_env}: no such environment "
                              "variable")
        password, source = os.environ[opts.password_env], f"${opts.password_env}"
    if password is None and "password" in conf:
        password, source = conf["password"], conf_name
    if password is None and "MYSQL_PWD" in os.environ:
        password, source = os.environ["MYSQL_PWD"], "$MYSQL_PWD"
    if password is None:
        password, source = "", "none"
    user = url.user or conf.get("user") or getpass.getuser()
    host = url.host or conf.get("host") or "localhost"
    port_text = str(url.port) if url.port else conf.get("port", "")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ServerError(f"{conf_name}: port {port_text!r} is not a number") from None

    ssl_ca = opts.ssl_ca or conf.get("ssl-ca")
    ssl_cert = opts.ssl_cert or conf.get("ssl-cert")
    ssl_key = opts.ssl_key or conf.get("ssl-key")
    mode = conf.get("ssl-mode", "").upper()
    verify_cert: bool | None = opts.ssl_verify
    verify_identity: bool | None = opts.ssl_verify
    if verify_cert is None and mode:
        verify_cert = mode in ("VERIFY_CA", "VERIFY_IDENTITY")
        verify_identity = mode == "VERIFY_IDENTITY"
    if verify_cert is None and "ssl-verify-server-cert" in conf:
        verify_cert = verify_identity = _truthy(conf["ssl-verify-server-cert"])
    use_tls = bool(ssl_ca or ssl_cert or ssl_key or opts.ssl_verify is not None
                   or mode in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
                   or verify_cert)
    disabled = mode == "DISABLED" and not (opts.ssl_ca or opts.ssl_cert or opts.ssl_key
                                           or opts.ssl_verify is not None)
    if disabled:
        use_tls = False
    tls: dict[str, Any] | None = None
    if use_tls:
        if verify_cert is None:
            verify_cert = verify_identity = bool(ssl_ca)
        for what, path in (("--ssl-ca", ssl_ca), ("--ssl-cert", ssl_cert),
                           ("--ssl-key", ssl_key)):
            if path and not Path(path).expanduser().is_file():
                raise ServerError(f"{what} {path}: no such file")
        if ssl_key and not ssl_cert:
            raise ServerError("--ssl-key needs --ssl-cert")
        tls = {"ca": ssl_ca, "cert": ssl_cert, "key": ssl_key,
               "verify_cert": bool(verify_cert), "verify_identity": bool(verify_identity)}
    return Settings(host=host, port=port, user=user, password=password, ssl=tls,
                    password_source=source, tls_disabled=disabled)


class _ClearTextGuard:
    """Auth plugin handler for plugins that send the password as it is: only
    over an encrypted connection (PyMySQL's own code then does it)."""

    plugin = b"mysql_clear_password"

    def __init__(self, con: Any) -> None:
        self.con = con

    def authenticate(self, pkt: Any) -> Any:
        if getattr(self.con, "_secure", False):
            return self.con._process_auth(self.plugin, pkt)
        raise pymysql.err.OperationalError(
            2059, f"the server asks for the password in clear text ({self.plugin.decode()}) "
                  "over an unencrypted connection; refused (use TLS: --ssl-ca ...)")


class _DialogGuard(_ClearTextGuard):
    plugin = b"dialog"


def _scrub(message: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, MASK)
    return message


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, pymysql.MySQLError) and len(exc.args) >= 2:
        return str(exc.args[1])
    return str(exc) or type(exc).__name__


def _ssl_context(conf: dict[str, Any]) -> ssl.SSLContext:
    """TLS context: the CA file (else the system's), client certificate, and
    verification of the chain (``verify_cert``) and host name (``verify_identity``)."""
    try:
        ctx = ssl.create_default_context(cafile=conf["ca"])
        # Certificates MySQL generates itself lack extensions strict mode wants.
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        if conf["verify_cert"]:
            ctx.check_hostname = bool(conf["verify_identity"])
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if conf["cert"]:
            ctx.load_cert_chain(conf["cert"], keyfile=conf["key"])
    except (ssl.SSLError, OSError) as exc:
        what = conf["cert"] if conf["cert"] else conf["ca"]
        raise ServerError(f"TLS setup ({what}): {exc.strerror or exc}") from None
    return ctx


def connect(url: ServerURL, opts: ConnectOptions) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection (autocommit) to the server ``url`` names; failures
    raise :class:`ServerError` with one masked line."""
    s = resolve_settings(url, opts)
    kw: dict[str, Any] = {
        "host": s.host, "port": s.port, "user": s.user, "password": s.password,
        "autocommit": True, "charset": "utf8mb4", "connect_timeout": opts.connect_timeout,
        "read_timeout": 60, "write_timeout": 60,
    }
    if s.ssl is not None:
        kw["ssl"] = _ssl_context(s.ssl)
    elif s.tls_disabled:
        kw["ssl_disabled"] = True
    # else PyMySQL's default: TLS when the server offers it, unverified (PREFERRED)
    kw["auth_plugin_map"] = {"mysql_clear_password": _ClearTextGuard, "dialog": _DialogGuard}
    try:
        return pymysql.connect(**kw)
    except (pymysql.MySQLError, OSError, ValueError) as exc:
        text = _scrub(_error_text(exc), s.password, url.password)
        code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args \
            and isinstance(exc.args[0], int) else None
        raise ServerError(f"{url.display}: cannot connect: {text}", code) from None


def query_one(url: ServerURL, opts: ConnectOptions, sql: str) -> tuple[Any, ...]:
    """The first row of ``sql`` on the server (one connection, closed after)."""
    conn = connect(url, opts)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
    except pymysql.MySQLError as exc:
        raise ServerError(f"{url.display}: {sql}: "
                          f"{_scrub(_error_text(exc), url.password)}") from None
    finally:
        conn.close()
    if row is None:
        raise ServerError(f"{url.display}: {sql}: no row")
    return tuple(row)


def _version_tuple(version: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


@dataclass(frozen=True)
class ServerInfo:
    """What a server reported: its flavor, version and the variables asked for."""

    url: ServerURL
    flavor: str  # "mysql" | "mariadb"
    version: str
    values: dict[str, str]

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return _version_tuple(self.version)


def server_variables(url: ServerURL, opts: ConnectOptions,
                     names: Callable[[str], list[str]]) -> ServerInfo:
    """Connect once, read VERSION() and the global variables ``names(flavor)``."""
    conn = connect(url, opts)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            version = str(row[0]) if row else ""
            flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
            wanted = names(flavor)
            values: dict[str, str] = {}
            if wanted:
                cur.execute("SELECT " + ", ".join(f"@@GLOBAL.{n}" for n in wanted))
                got = cur.fetchone() or ()
                for n, v in zip(wanted, got, strict=False):
                    values[n] = "" if v is None else (
                        v.decode() if isinstance(v, bytes) else str(v))
    except pymysql.MySQLError as exc:
        raise ServerError(f"{url.display}: {_scrub(_error_text(exc), url.password)}") from None
    finally:
        conn.close()
    return ServerInfo(url=url, flavor=flavor, version=version, values=values)


# --- click options --------------------------------------------------------------


def connection_options(func: F) -> F:
    """Add the connection options to a command; it gets ``conn_opts``."""

    @click.option("--password-env", metavar="NAME",
                  help="Take the password from environment variable NAME.")
    @click.option("--defaults-file", type=click.Path(dir_okay=False),
                  help="MySQL option file to read [client] settings from "
                       "(default: ~/.my.cnf if it exists).")
    @click.option("--no-defaults", is_flag=True, help="Read no option file.")
    @click.option("--ssl-ca", type=click.Path(dir_okay=False),
                  help="CA certificate (PEM) to verify the server with; turns TLS on.")
    @click.option("--ssl-cert", type=click.Path(dir_okay=False),
                  help="Client certificate (PEM); turns TLS on.")
    @click.option("--ssl-key", type=click.Path(dir_okay=False),
                  help="Client private key (PEM).")
    @click.option("--ssl-verify/--no-ssl-verify", default=None,
                  help="Check the server certificate and host name (default: on when "
                       "--ssl-ca is given); either turns TLS on.")
    @click.option("--connect-timeout", type=float, default=10.0, show_default=True,
                  help="Seconds to wait for a server to answer.")
    @functools.wraps(func)
    def wrapper(*args: Any, password_env: str | None, defaults_file: str | None,
                no_defaults: bool, ssl_ca: str | None, ssl_cert: str | None,
                ssl_key: str | None, ssl_verify: bool | None, connect_timeout: float,
                **kwargs: Any) -> Any:
        kwargs["conn_opts"] = ConnectOptions(
            password_env=password_env, defaults_file=defaults_file, no_defaults=no_defaults,
            ssl_ca=ssl_ca, ssl_cert=ssl_cert, ssl_key=ssl_key, ssl_verify=ssl_verify,
            connect_timeout=connect_timeout)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
