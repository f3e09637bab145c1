"""Private MariaDB and MySQL server instances for tests and fixture generation.

:func:`start_server` initialises a datadir (copied from a cached, freshly
initialised template), starts the server on a free TCP port of 127.0.0.1 with
binary logging on, waits until it accepts connections and records it in a
registry (``<lab home>/registry.json``) so ``binlogkit lab list/stop`` find it
later. MariaDB runs from the host (``mariadbd``); MySQL runs inside the Debian
sid root (``chroot <root> mysqld``), so its datadir lives inside that root.

The lab home is ``$BINLOGKIT_LAB_DIR`` or ``<tmp>/binlogkit-lab``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

import pymysql

from binlogkit.lab.sid import host_path, sid_root

__all__ = [
    "Flavor",
    "LabError",
    "Server",
    "default_options",
    "get_server",
    "lab_home",
    "list_servers",
    "start_server",
    "unavailable_reason",
]

Flavor = Literal["mariadb", "mysql"]
Options = Mapping[str, "str | int | None"]

HOST = "127.0.0.1"
MARIADB_DEFAULTS: dict[str, str | None] = {
    "log-bin": "binlog",
    "server-id": "1",
    "binlog-format": "ROW",
}
MYSQL_DEFAULTS: dict[str, str | None] = {
    "log-bin": "binlog",
    "server-id": "1",
    "gtid-mode": "ON",
    "enforce-gtid-consistency": "ON",
    "mysqlx": "OFF",
    "secure-file-priv": "",
}
# Set by the harness itself; not accepted in ``options``.
_MANAGED = {
    "datadir", "socket", "port", "pid-file", "log-error", "user", "bind-address",
    "no-defaults", "defaults-file", "defaults-extra-file", "initialize",
    "initialize-insecure",
}
# Options that shape the datadir at initialisation; a template cannot be reused.
_INIT_OPTIONS = {"innodb-page-size", "lower-case-table-names", "innodb-data-file-path",
                 "innodb-log-file-size", "innodb-undo-tablespaces"}
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LabError(RuntimeError):
    """A server could not be started, reached or stopped."""


def lab_home() -> Path:
    """Directory of the registry (and CLI instances): ``$BINLOGKIT_LAB_DIR`` or
    ``<tmp>/binlogkit-lab``."""
    env = os.environ.get("BINLOGKIT_LAB_DIR")
    home = Path(env) if env else Path(tempfile.gettempdir()) / "binlogkit-lab"
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def default_options(flavor: Flavor) -> dict[str, str | None]:
    """The server options used when ``start_server`` is given none."""
    return dict(MARIADB_DEFAULTS if flavor == "mariadb" else MYSQL_DEFAULTS)


def _norm_key(key: str) -> str:
    return key.strip().lstrip("-").replace("_", "-")


def _merge_options(flavor: Flavor, options: Options | None) -> dict[str, str | None]:
    merged = default_options(flavor)
    for key, value in (options or {}).items():
        k = _norm_key(key)
        if k in _MANAGED:
            raise ValueError(f"option {k!r} is set by the harness")
        merged[k] = None if value is None else str(value)
    return merged


def _option_args(options: Mapping[str, str | None]) -> list[str]:
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in options.items()]


# --- binaries -----------------------------------------------------------------


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_PATH)


def unavailable_reason(flavor: Flavor) -> str | None:
    """Why servers of ``flavor`` cannot be started here, or None if they can."""
    if flavor == "mariadb":
        missing = [b for b in ("mariadbd", "mariadb-install-db") if _which(b) is None]
        if missing:
            return (f"MariaDB not installed ({', '.join(missing)} not found; "
                    "run scripts/provision.sh)")
        return None
    if flavor == "mysql":
        root = sid_root()
        if not (root / "usr/sbin/mysqld").exists():
            return (f"MySQL not installed ({root}/usr/sbin/mysqld not found; "
                    "run scripts/provision.sh or set BINLOGKIT_SID_ROOT)")
        if os.geteuid() != 0:
            return "MySQL runs via chroot, which needs root"
        return None
    raise ValueError(f"unknown flavor {flavor!r} (mariadb or mysql)")


def _binary_version(flavor: Flavor) -> str:
    if flavor == "mariadb":
        cmd = [cast(str, _which("mariadbd")), "--version"]
    else:
        cmd = ["chroot", str(sid_root()), "mysqld", "--version"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
    words = out.stdout.split()
    return words[2] if len(words) > 2 and words[1] == "Ver" else "unknown"


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": _PATH}


# --- small process helpers ------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (zombie children are reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    if stat[stat.rindex(")") + 2:].startswith("Z"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def wait_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Has process ``pid`` (our child ``proc`` when we started it) exited
    within ``timeout`` seconds?"""
    if proc is not None:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- registry ------------------------------------------------------------------


def _registry_file() -> Path:
    return lab_home() / "registry.json"


def _read_registry() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_registry_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_registry(data: dict[str, dict[str, Any]]) -> None:
    path = _registry_file()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _registry_lock() -> contextlib.AbstractContextManager[None]:
    return _locked(lab_home() / "registry.lock")


def list_servers() -> list[Server]:
    """Servers recorded in the registry (running or not; see ``Server.is_running``)."""
    with _registry_lock():
        data = _read_registry()
    return [Server._from_record(rec) for _, rec in sorted(data.items())]


def get_server(name: str) -> Server:
    """The registered server called ``name``."""
    with _registry_lock():
        rec = _read_registry().get(name)
    if rec is None:
        raise LabError(f"no lab server named {name!r} (see `binlogkit lab list`)")
    return Server._from_record(rec)


# --- the server object -----------------------------------------------------------


@dataclass
class Server:
    """A running (or attached) server. ``datadir``/``socket`` are host-side paths."""

    flavor: Flavor
    version: str
    host: str
    port: int
    user: str = "root"
    password: str = field(default="", repr=False)
    socket: Path | None = None
    datadir: Path | None = None
    pid: int | None = None
    name: str | None = None
    instance_dir: Path | None = None
    error_log: Path | None = None
    options: dict[str, str | None] = field(default_factory=dict)
    root: Path | None = None  # sid root (MySQL) whose "/" the server sees
    _remove: list[Path] = field(default_factory=list, repr=False, compare=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    # -- identity -------------------------------------------------------------

    @property
    def url(self) -> str:
        """``mariadb://root@127.0.0.1:PORT`` / ``mysql://...`` (never with a password)."""
        return f"{self.flavor}://{self.user}@{self.host}:{self.port}"

    @property
    def managed(self) -> bool:
        """True if the harness started it (it has a pid and can be stopped)."""
        return self.pid is not None

    @classmethod
    def attach(cls, url: str) -> Server:
        """A server given by URL (``mysql://user:pass@host:port``); never started or
        stopped here. The flavor comes from ``SELECT VERSION()``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise LabError("server URL must look like mysql://user[:password]@host[:port]")
        srv = cls(
            flavor="mariadb" if parts.scheme == "mariadb" else "mysql",
            version="",
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
        )
        try:
            version = str(srv.execute("SELECT VERSION()")[0][0])
        except pymysql.MySQLError as exc:
            raise LabError(f"cannot connect to {srv.url}: {exc.args[-1]}") from None
        srv.version = version
        srv.flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
        return srv

    # -- SQL --------------------------------------------------------------------

    def connect(self, **kw: Any) -> pymysql.connections.Connection[Any]:
        """A PyMySQL connection (autocommit, LOCAL INFILE on, utf8mb4); ``kw`` overrides."""
        args: dict[str, Any] = {
            "host": self.host, "port": self.port, "user": self.user,
            "password": self.password, "autocommit": True, "local_infile": True,
            "charset": "utf8mb4", "connect_timeout": 10,
        }
        args.update(kw)
        return pymysql.connect(**args)

    def execute(self, sql: str | Sequence[str]) -> list[tuple[Any, ...]]:
        """Run one statement or a list of them on one connection; return the last
        statement's rows."""
        statements = [sql] if isinstance(sql, str) else list(sql)
        rows: list[tuple[Any, ...]] = []
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for stmt in statements:
                    cur.execute(stmt)
                    rows = list(cur.fetchall())
        finally:
            conn.close()
        return rows

    def variable(self, name: str) -> Any:
        """The global value of system variable ``name``."""
        return self.execute(f"SELECT @@GLOBAL.{name}")[0][0]

    # -- files ------------------------------------------------------------------

    def host_path(self, server_path: str) -> Path:
        """Map a path as the server sees it to the host path."""
        return host_path(server_path, root=self.root) if self.root else Path(server_path)

    def server_path(self, path: str | os.PathLike[str]) -> str:
        """Map a host path to the path the server sees (it must be inside the root
        for MySQL)."""
        p = Path(path).resolve()
        if self.root is None:
            return str(p)
        try:
            return "/" + p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            raise LabError(f"{p} is outside {self.root}; the server cannot see it") from None

    @property
    def tmpdir(self) -> Path:
        """A host directory the server can read files from (e.g. for LOAD DATA INFILE)."""
        if self.instance_dir is None:
            raise LabError(f"{self.url} was not started here: no tmpdir")
        d = self.instance_dir / "tmp"
        d.mkdir(exist_ok=True)
        return d

    def binlog_files(self) -> list[Path]:
        """Host paths of the binary logs, oldest first (from SHOW BINARY LOGS)."""
        try:
            conn = self.connect()
            with conn.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.log_bin_basename")
                basename = cur.fetchone()
                cur.execute("SHOW BINARY LOGS")
                names = [str(r[0]) for r in cur.fetchall()]
            conn.close()
        except pymysql.MySQLError as exc:
            raise LabError(f"{self.url}: cannot list binary logs: {exc.args[-1]}") from None
        if not basename or not basename[0]:
            raise LabError(f"{self.url}: binary logging is off")
        server_dir = os.path.dirname(str(basename[0]))
        candidates = [self.host_path(server_dir)]
        if self.root is None and self.flavor == "mysql":
            candidates.append(host_path(server_dir))  # attached server in the sid root
        for d in candidates:
            if d.is_dir():
                return [d / n for n in names]
        raise LabError(f"{self.url}: binlog directory {server_dir} is not on this machine")

    def flush_logs(self) -> None:
        """FLUSH BINARY LOGS: close the current binlog and open the next."""
        self.execute("FLUSH BINARY LOGS")

    # -- lifetime ---------------------------------------------------------------

    def is_running(self) -> bool:
        """True if the process started here is still alive (attached: reachable)."""
        if self.pid is None:
            try:
                self.execute("SELECT 1")
            except pymysql.MySQLError:
                return False
            return True
        return _alive(self.pid) and self._owns_pid()

    def _owns_pid(self) -> bool:
        if self.pid is None or self.datadir is None:
            return False
        cmd = _cmdline(self.pid)
        if not cmd or cmd == [""]:
            return True  # no /proc: trust the registry
        want = f"--datadir={self.server_path(self.datadir)}"
        return want in cmd

    def stop(self, *, timeout: float = 30.0, remove_data: bool = False) -> None:
        """SIGTERM the server, wait ``timeout`` s, then SIGKILL; unregister it.
        With ``remove_data`` also delete its directory."""
        if self.pid is None:
            raise LabError(f"{self.url} was not started by the harness; not stopping it")
        if _alive(self.pid) and self._owns_pid():
            os.kill(self.pid, signal.SIGTERM)
            if not self._wait_exit(timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                if not self._wait_exit(10.0):
                    raise LabError(f"{self.name}: pid {self.pid} survived SIGKILL")
        elif self._proc is not None:
            self._proc.poll()
        if self.name:
            with _registry_lock():
                data = _read_registry()
                if data.get(self.name, {}).get("pid") == self.pid:
                    del data[self.name]
                    _write_registry(data)
        if remove_data:
            for p in self._remove:
                if p.is_symlink():
                    p.unlink()
                else:
                    shutil.rmtree(p, ignore_errors=True)

    def _wait_exit(self, timeout: float) -> bool:
        assert self.pid is not None
        return wait_exit(self.pid, self._proc, timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.managed:
            self.stop(remove_data=True)

    # -- registry records -------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        def s(p: Path | None) -> str | None:
            return None if p is None else str(p)

        return {
            "name": self.name, "flavor": self.flavor, "version": self.version,
            "host": self.host, "port": self.port, "user": self.user, "pid": self.pid,
            "socket": s(self.socket), "datadir": s(self.datadir),
            "instance_dir": s(self.instance_dir), "error_log": s(self.error_log),
            "options": self.options, "root": s(self.root), "url": self.url,
            "remove": [str(p) for p in self._remove], "started": time.time(),
        }

    @classmethod
    def _from_record(cls, rec: Mapping[str, Any]) -> Server:
        def p(key: str) -> Path | None:
            v = rec.get(key)
            return None if v is None else Path(v)

        return cls(
            flavor=rec["flavor"], version=rec.get("version", ""), host=rec["host"],
            port=int(rec["port"]), user=rec.get("user", "root"), socket=p("socket"),
            datadir=p("datadir"), pid=rec.get("pid"), name=rec.get("name"),
            instance_dir=p("instance_dir"), error_log=p("error_log"),
            options=dict(rec.get("options") or {}), root=p("root"),
            _remove=[Path(x) for x in rec.get("remove", [])],
        )


# --- starting -------------------------------------------------------------------


def _template(flavor: Flavor, cache: Path) -> Path:
    """A freshly initialised datadir to copy (made once per server version)."""
    version = _binary_version(flavor)
    tdir = cache / f"{flavor}-{version}"
    data = tdir / "data"
    if (tdir / "ok").exists():
        return data
    with _locked(cache / f"{flavor}.lock"):
        if (tdir / "ok").exists():
            return data
        shutil.rmtree(tdir, ignore_errors=True)
        tdir.mkdir(parents=True)
        _initialize(flavor, data, tdir / "init.log", {})
        (tdir / "ok").write_text(version + "\n")
    return data


def _initialize(flavor: Flavor, data: Path, log: Path, options: Mapping[str, str | None]) -> None:
    if flavor == "mariadb":
        cmd = [cast(str, _which("mariadb-install-db")), "--no-defaults", f"--datadir={data}",
               "--auth-root-authentication-method=normal", "--user=root", "--skip-test-db",
               "--skip-name-resolve", *_option_args(options)]
    else:
        root = sid_root().resolve()
        inner = "/" + data.relative_to(root).as_posix()
        inner_log = "/" + log.relative_to(root).as_posix()
        cmd = ["chroot", str(root), "mysqld", "--no-defaults", "--initialize-insecure",
               "--user=root", f"--datadir={inner}", f"--log-error={inner_log}",
               *_option_args(options)]
    with open(log, "ab") as out:
        res = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                             stdin=subprocess.DEVNULL, check=False)
    if res.returncode != 0:
        raise LabError(f"{flavor}: initialising {data} failed (exit {res.returncode}):\n"
                       + _tail(log))


def _pick_dirs(flavor: Flavor, basedir: str | Path | None, name: str | None,
               port: int) -> tuple[Path, list[Path], str]:
    """Return (instance dir, paths to remove with the data, name)."""
    env_dir = os.environ.get("BINLOGKIT_LAB_DIR")
    fresh = basedir is None and not env_dir
    base = Path(basedir or env_dir or "").resolve() if not fresh else None
    root = sid_root().resolve()
    registered = _read_registry()
    if name and name in registered:
        raise LabError(f"a lab server named {name!r} already exists")
    if flavor == "mysql":
        parent = base if base is not None and base.is_relative_to(root) else (
            root / "var/lib/binlogkit")
    else:
        parent = base if base is not None else Path(tempfile.mkdtemp(prefix="binlogkit-lab-"))
    parent.mkdir(parents=True, exist_ok=True)
    stem = name or f"{flavor}-{port}"
    chosen = stem
    n = 1
    while (chosen in registered or (parent / chosen).exists()
           or (base is not None and (base / chosen).exists())):
        if name:
            raise LabError(f"a lab server or directory named {name!r} already exists")
        n += 1
        chosen = f"{stem}-{n}"
    inst = parent / chosen
    inst.mkdir()
    remove = [inst]
    if flavor == "mariadb" and fresh:
        remove = [parent]
    if base is not None and parent != base:
        base.mkdir(parents=True, exist_ok=True)
        link = base / chosen
        link.symlink_to(inst, target_is_directory=True)
        remove.append(link)
    return inst, remove, chosen


def start_server(
    flavor: Flavor,
    *,
    options: Options | None = None,
    basedir: str | Path | None = None,
    port: int | None = None,
    name: str | None = None,
    timeout: float = 60.0,
) -> Server:
    """Start a private server with binary logging and return it once it accepts
    connections.

    ``options`` add to or override :func:`default_options` (``_`` and ``-`` are
    the same; value None gives a bare ``--flag``). The instance lives in
    ``basedir/<name>`` (default: ``$BINLOGKIT_LAB_DIR``, else a fresh temp dir;
    MySQL's datadir must be inside the sid root, so outside it the instance lives
    in ``<root>/var/lib/binlogkit/<name>`` with a symlink in ``basedir``). The
    default name is ``<flavor>-<port>``. On failure raises :class:`LabError`
    with the tail of the error log.
    """
    if flavor not in ("mariadb", "mysql"):
        raise ValueError(f"unknown flavor {flavor!r} (mariadb or mysql)")
    reason = unavailable_reason(flavor)
    if reason:
        raise LabError(reason)
    merged = _merge_options(flavor, options)
    if port is not None and not _port_free(port):
        raise LabError(f"port {port} on {HOST} is in use")
    attempts = 1 if port is not None else 3
    last: LabError | None = None
    for _ in range(attempts):
        try:
            return _start_once(flavor, merged, basedir, port or _free_port(), name, timeout)
        except _PortTaken as exc:
            last = LabError(str(exc))
    assert last is not None
    raise last


class _PortTaken(LabError):
    pass


def _start_once(flavor: Flavor, options: dict[str, str | None], basedir: str | Path | None,
                port: int, name: str | None, timeout: float) -> Server:
    with _registry_lock():
        inst, remove, chosen = _pick_dirs(flavor, basedir, name, port)
    root = sid_root().resolve() if flavor == "mysql" else None
    data = inst / "data"
    try:
        if {k for k in options} & _INIT_OPTIONS:
            init = {k: v for k, v in options.items() if k in _INIT_OPTIONS}
            _initialize(flavor, data, inst / "init.log", init)
        else:
            cache = (Path(tempfile.gettempdir()) / "binlogkit-lab-templates" if root is None
                     else root / "var/lib/binlogkit/templates")
            shutil.copytree(_template(flavor, cache), data, symlinks=True)
            (data / "auto.cnf").unlink(missing_ok=True)  # fresh server_uuid
    except BaseException:
        _remove_paths(remove)
        raise
    srv = Server(
        flavor=flavor, version="", host=HOST, port=port, socket=inst / "mysqld.sock",
        datadir=data, name=chosen, instance_dir=inst, error_log=inst / "mysqld.err",
        options=dict(options), root=root, _remove=remove,
    )

    def inner(p: Path) -> str:
        return srv.server_path(p)

    argv = [
        "--no-defaults", "--user=root", f"--datadir={inner(data)}",
        f"--socket={inner(inst / 'mysqld.sock')}", f"--port={port}", f"--bind-address={HOST}",
        f"--pid-file={inner(inst / 'mysqld.pid')}", f"--log-error={inner(inst / 'mysqld.err')}",
        *_option_args(options),
    ]
    if root is None:
        cmd = [cast(str, _which("mariadbd")), *argv]
    else:
        cmd = ["chroot", str(root), "mysqld", *argv]
    with open(inst / "console.log", "ab") as console:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
                                cwd=str(inst))
    srv.pid = proc.pid
    srv._proc = proc
    try:
        srv.version = _wait_ready(srv, proc, timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _remove_paths(remove)
        raise
    with _registry_lock():
        reg = _read_registry()
        reg[chosen] = srv._record()
        _write_registry(reg)
    return srv


def _remove_paths(paths: Sequence[Path]) -> None:
    for p in paths:
        if p.is_symlink():
            p.unlink()
        else:
            shutil.rmtree(p, ignore_errors=True)


def _wait_ready(srv: Server, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if proc.poll() is not None:
            break
        try:
            conn = srv.connect(connect_timeout=2)
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
            conn.close()
            return str(row[0]) if row else ""
        except pymysql.MySQLError as exc:
            last = str(exc.args[-1]) if exc.args else str(exc)
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    log = _tail(srv.error_log) or _tail(
        srv.instance_dir / "console.log" if srv.instance_dir else None)
    if proc.returncode is not None:
        what = f"exited with status {proc.returncode}"
    else:
        what = f"did not accept connections within {timeout:.0f} s ({last})"
    errors = [ln for ln in log.splitlines()
              if "[ERROR]" in ln and not ln.rstrip().endswith("Aborting")]
    first = f": {errors[-1][errors[-1].index('[ERROR]'):].strip()}" if errors else ""
    msg = f"{srv.flavor} server on port {srv.port} {what}{first}\nerror log tail:\n{log}"
    if "Address already in use" in log or "Bind on TCP/IP port" in log:
        raise _PortTaken(msg)
    raise LabError(msg)
