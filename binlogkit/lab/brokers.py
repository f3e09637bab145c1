"""Private message brokers for tests: ``nats-server`` (JetStream) and ``redis-server``.

:func:`start_nats` starts one NATS server with JetStream on (its own
``store_dir``), :func:`start_nats_cluster` three of them routed to each other
on loopback ports and waits for a JetStream meta leader, :func:`start_redis`
a Redis with ``appendonly yes``. Every instance gets a directory of its own
holding a private config file, its data and its log; ports are free ports of
127.0.0.1 unless given. :class:`BrokerServer` can ``stop()``, ``kill()``
(SIGKILL, to simulate a crash) and ``restart()`` on the same port and data.

Readiness is checked with the raw protocols (NATS ``INFO`` line and the
monitoring endpoint, Redis ``PING``), so no client library is needed. A
failed start raises :class:`~binlogkit.lab.LabError` with the log tail.
Brokers are not recorded in the ``binlogkit lab`` registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from binlogkit.lab.servers import (
    HOST,
    LabError,
    _alive,
    _free_port,
    _port_free,
    _tail,
    _which,
    wait_exit,
)

__all__ = [
    "BrokerKind",
    "BrokerServer",
    "broker_unavailable_reason",
    "resp_command",
    "start_nats",
    "start_nats_cluster",
    "start_redis",
]

BrokerKind = Literal["nats", "redis"]
_BINARY = {"nats": "nats-server", "redis": "redis-server"}
CLUSTER_NAME = "binlogkit"


def broker_unavailable_reason(kind: BrokerKind) -> str | None:
    """Why ``kind`` brokers cannot be started here, or None if they can."""
    binary = _BINARY[kind]
    if _which(binary) is None:
        return (f"{binary} not installed (apt package {binary}; "
                "run scripts/provision.sh)")
    return None


@dataclass
class BrokerServer:
    """One private ``nats-server`` or ``redis-server`` process."""

    kind: BrokerKind
    name: str
    port: int
    instance_dir: Path
    datadir: Path
    config: Path
    log: Path
    cmd: list[str]
    pid: int | None = None
    version: str = ""
    monitor_port: int | None = None  # NATS HTTP monitoring port
    cluster_port: int | None = None  # NATS route port
    host: str = HOST
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"{self.kind}://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """``http://127.0.0.1:PORT`` of the NATS monitoring endpoint (None for Redis)."""
        return None if self.monitor_port is None else f"http://{self.host}:{self.monitor_port}"

    # -- process control ----------------------------------------------------------

    def is_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _alive(self.pid)

    def _launch(self, timeout: float) -> None:
        with open(self.instance_dir / "console.log", "ab") as console:
            proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=console,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=str(self.instance_dir))
        self._proc = proc
        self.pid = proc.pid
        try:
            self.version = _wait_ready(self, proc, timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            raise

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> bool:
        if self.pid is None or not self.is_running():
            if self._proc is not None:
                self._proc.poll()
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        return wait_exit(self.pid, self._proc, timeout)

    def kill(self) -> None:
        """SIGKILL the process (a crash: no shutdown, no final flush); data stays."""
        if not self._signal_and_wait(signal.SIGKILL, 10.0):
            raise LabError(f"{self.name}: pid {self.pid} survived SIGKILL")

    def stop(self, *, timeout: float = 30.0, remove_data: bool = False) -> None:
        """SIGTERM, wait ``timeout`` s, then SIGKILL. ``remove_data`` deletes
        the instance directory (config, data, log)."""
        if not self._signal_and_wait(signal.SIGTERM, timeout):
            self.kill()
        if remove_data:
            shutil.rmtree(self.instance_dir, ignore_errors=True)

    def restart(self, *, timeout: float = 30.0) -> None:
        """Stop the process if it runs, then start it again with the same
        config: same ports, same data."""
        self.stop(timeout=timeout)
        deadline = time.monotonic() + 10.0
        ports = [p for p in (self.port, self.monitor_port, self.cluster_port) if p]
        while not all(_bindable(p) for p in ports):
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: ports {ports} still in use after stop")
            time.sleep(0.1)
        self._launch(timeout)

    def __enter__(self) -> BrokerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(remove_data=True)

    # -- protocol helpers -----------------------------------------------------------

    def command(self, *args: str | bytes | int, timeout: float = 5.0) -> Any:
        """Redis only: send one command as raw RESP, return the decoded reply
        (``str`` for simple strings, ``bytes`` for bulk strings, ``int``,
        ``list``, None); an error reply raises :class:`LabError`."""
        if self.kind != "redis":
            raise LabError(f"{self.name}: command() is for Redis")
        return resp_command(self.host, self.port, *args, timeout=timeout)

    def monitor(self, endpoint: str = "varz", timeout: float = 5.0) -> dict[str, Any]:
        """NATS only: GET ``/<endpoint>`` (``varz``, ``jsz``, ``routez``,
        ``healthz?js-enabled-only=true`` ...) from the monitoring port as JSON."""
        if self.monitor_url is None:
            raise LabError(f"{self.name}: no monitoring port")
        url = f"{self.monitor_url}/{endpoint.lstrip('/')}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:  # /healthz answers 503 with a JSON body
            body = exc.read()
            with contextlib.suppress(ValueError):
                return dict(json.loads(body))
            raise LabError(f"{url}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"{url}: {exc}") from None

    def meta_cluster(self) -> dict[str, Any]:
        """NATS only: ``meta_cluster`` of ``/jsz`` (name, leader, cluster_size,
        and on the leader ``replicas``); {} when unknown."""
        try:
            return dict(self.monitor("jsz", timeout=2.0).get("meta_cluster") or {})
        except LabError:
            return {}

    def meta_leader(self) -> str | None:
        """NATS only: the JetStream meta leader this node knows of (None: none yet)."""
        return self.meta_cluster().get("leader") or None

    def wait_meta_leader(self, timeout: float = 30.0, *, exclude: Collection[str] = ()) -> str:
        """NATS only: wait until this node reports a JetStream meta leader
        (one not named in ``exclude``, e.g. a node just killed); return its name."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.meta_leader()
            if leader and leader not in exclude:
                return leader
            if not self.is_running():
                raise LabError(f"{self.name} exited\nlog tail:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise LabError(f"{self.name}: no JetStream meta leader within {timeout:.0f} s"
                               f"\nlog tail:\n{_tail(self.log)}")
            time.sleep(0.2)


# --- raw protocol ----------------------------------------------------------------


def _encode_resp(args: Sequence[str | bytes | int]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read_resp(f: Any) -> Any:
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise LabError("connection closed in the middle of a reply")
    tag, body = line[:1], line[1:-2]
    if tag == b"+":
        return body.decode()
    if tag == b"-":
        raise LabError(f"redis error: {body.decode(errors='replace')}")
    if tag == b":":
        return int(body)
    if tag == b"$":
        n = int(body)
        if n < 0:
            return None
        data = f.read(n + 2)
        return bytes(data[:-2])
    if tag == b"*":
        n = int(body)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise LabError(f"unexpected RESP reply {line!r}")


def resp_command(host: str, port: int, *args: str | bytes | int, timeout: float = 5.0) -> Any:
    """Send one Redis command over a fresh TCP connection (raw RESP2)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_encode_resp(args))
        with s.makefile("rb") as f:
            return _read_resp(f)


def _nats_info(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    with socket.create_connection((host, port), timeout=timeout) as s, s.makefile("rb") as f:
        line = f.readline()
    if not line.startswith(b"INFO "):
        raise LabError(f"not a NATS server on port {port}: {line[:60]!r}")
    return dict(json.loads(line[5:]))


def _wait_ready(srv: BrokerServer, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while proc.poll() is None:
        try:
            if srv.kind == "nats":
                info = _nats_info(srv.host, srv.port)
                if srv.monitor_port is not None:
                    srv.monitor("varz", timeout=2.0)
                return str(info.get("version", ""))
            if resp_command(srv.host, srv.port, "PING", timeout=2.0) == "PONG":
                reply = resp_command(srv.host, srv.port, "INFO", "server", timeout=2.0)
                for ln in (reply or b"").decode().splitlines():
                    if ln.startswith("redis_version:"):
                        return ln.split(":", 1)[1].strip()
                return ""
        except (OSError, LabError, ValueError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    log = _tail(srv.log) or _tail(srv.instance_dir / "console.log")
    if proc.poll() is not None:
        what = f"exited with status {proc.returncode}"
    else:
        what = f"not ready within {timeout:.0f} s ({last})"
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "[FTL]" in ln or "[ERR]" in ln] or lines[-1:]
    first = f": {errors[-1]}" if errors else ""
    raise LabError(f"{_BINARY[srv.kind]} {srv.name} on port {srv.port} {what}{first}\n"
                   f"log tail:\n{log}")


# --- instance directories ------------------------------------------------------------


def _instance_dir(kind: BrokerKind, basedir: str | Path | None, name: str) -> Path:
    if basedir is None and os.environ.get("BINLOGKIT_LAB_DIR"):
        basedir = os.environ["BINLOGKIT_LAB_DIR"]
    if basedir is None:
        return Path(tempfile.mkdtemp(prefix=f"binlogkit-{name}-")).resolve()
    inst = Path(basedir).resolve() / name
    if inst.exists():
        raise LabError(f"instance directory {inst} already exists")
    inst.mkdir(parents=True)
    return inst


def _require(kind: BrokerKind) -> str:
    reason = broker_unavailable_reason(kind)
    if reason:
        raise LabError(reason)
    return str(_which(_BINARY[kind]))


def _check_port(port: int | None) -> int:
    if port is None:
        return _free_port()
    if not _port_free(port):
        raise LabError(f"port {port} on {HOST} is in use")
    return port


def _bindable(port: int) -> bool:
    """Like the servers themselves, bind with SO_REUSEADDR: a killed server's
    connections in TIME_WAIT do not block its restart."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _q(value: str | Path) -> str:
    return json.dumps(str(value))


# --- NATS ------------------------------------------------------------------------------


def start_nats(
    *,
    jetstream: bool = True,
    port: int | None = None,
    basedir: str | Path | None = None,
    name: str | None = None,
    cluster: Sequence[str] | None = None,
    cluster_port: int | None = None,
    cluster_name: str = CLUSTER_NAME,
    monitor_port: int | None = None,
    timeout: float = 30.0,
) -> BrokerServer:
    """Start ``nats-server`` on 127.0.0.1 with a private config.

    JetStream stores into ``<instance>/data/jetstream``. With ``cluster`` (a list of
    peer route URLs such as ``nats-route://127.0.0.1:6222``; may be empty for
    the first node) the node listens for routes on ``cluster_port`` (default:
    free) in cluster ``cluster_name``. The monitoring endpoint (``/varz``,
    ``/jsz``, ``/healthz``) is always on. Waits for the ``INFO`` line and the
    monitoring port, not for a JetStream meta leader (see
    :meth:`BrokerServer.wait_meta_leader`).
    """
    binary = _require("nats")
    port = _check_port(port)
    monitor_port = _check_port(monitor_port)
    if cluster is not None:
        cluster_port = _check_port(cluster_port)
    name = name or f"nats-{port}"
    inst = _instance_dir("nats", basedir, name)
    data = inst / "data"  # nats-server stores into data/jetstream/
    data.mkdir()
    lines = [
        f"server_name: {_q(name)}",
        f"host: {_q(HOST)}",
        f"port: {port}",
        f"http: {_q(f'{HOST}:{monitor_port}')}",
        f"pid_file: {_q(inst / 'nats.pid')}",
        f"log_file: {_q(inst / 'nats.log')}",
    ]
    if jetstream:
        lines += ["jetstream {", f"  store_dir: {_q(data)}", "}"]
    if cluster is not None:
        routes = ", ".join(_q(r) for r in cluster)
        lines += ["cluster {", f"  name: {_q(cluster_name)}", f"  host: {_q(HOST)}",
                  f"  port: {cluster_port}", f"  routes: [{routes}]", "}"]
    config = inst / "nats.conf"
    config.write_text("\n".join(lines) + "\n")
    srv = BrokerServer(kind="nats", name=name, port=port, instance_dir=inst, datadir=data,
                       config=config, log=inst / "nats.log", cmd=[binary, "-c", str(config)],
                       monitor_port=monitor_port, cluster_port=cluster_port)
    try:
        srv._launch(timeout)
    except BaseException:
        shutil.rmtree(inst, ignore_errors=True)
        raise
    return srv


def start_nats_cluster(
    n: int = 3, *, basedir: str | Path | None = None, cluster_name: str = CLUSTER_NAME,
    timeout: float = 30.0,
) -> list[BrokerServer]:
    """Start ``n`` JetStream nodes ``<cluster_name>-1..n`` routed to each other
    on loopback, each with its own store dir; return when every node reports a
    JetStream meta leader. On failure the started nodes are stopped and removed."""
    route_ports = [_free_port() for _ in range(n)]
    while len(set(route_ports)) < n:
        route_ports = [_free_port() for _ in range(n)]
    routes = [f"nats-route://{HOST}:{p}" for p in route_ports]
    nodes: list[BrokerServer] = []
    try:
        for i in range(n):
            nodes.append(start_nats(
                basedir=basedir, name=f"{cluster_name}-{i + 1}-{route_ports[0]}",
                cluster=[r for j, r in enumerate(routes) if j != i],
                cluster_port=route_ports[i], cluster_name=cluster_name, timeout=timeout))
        for node in nodes:
            node.wait_meta_leader(timeout)
    except BaseException:
        for node in nodes:
            node.stop(timeout=5.0, remove_data=True)
        raise
    return nodes


# --- Redis -------------------------------------------------------------------------------


def start_redis(
    *,
    port: int | None = None,
    basedir: str | Path | None = None,
    appendonly: bool = True,
    name: str | None = None,
    options: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> BrokerServer:
    """Start ``redis-server`` on 127.0.0.1 with a private config: data (RDB and
    the AOF directory) in ``<instance>/data``, ``appendonly yes`` unless
    ``appendonly=False``. ``options`` adds config directives (``{"appendfsync":
    "always"}``). Waits until it answers ``PING``."""
    binary = _require("redis")
    port = _check_port(port)
    name = name or f"redis-{port}"
    inst = _instance_dir("redis", basedir, name)
    data = inst / "data"
    data.mkdir()
    conf: dict[str, str] = {
        "bind": HOST,
        "port": str(port),
        "daemonize": "no",
        "dir": _q(data),
        "pidfile": _q(inst / "redis.pid"),
        "logfile": _q(inst / "redis.log"),
        "appendonly": "yes" if appendonly else "no",
    }
    conf.update(options or {})
    config = inst / "redis.conf"
    config.write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    srv = BrokerServer(kind="redis", name=name, port=port, instance_dir=inst, datadir=data,
                       config=config, log=inst / "redis.log", cmd=[binary, str(config)])
    try:
        srv._launch(timeout)
    except BaseException:
        shutil.rmtree(inst, ignore_errors=True)
        raise
    return srv
