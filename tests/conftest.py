"""Live-server fixtures (see docs/lab.md).

- ``mariadb_server`` / ``mysql_server``: session-wide servers with the default
  options, or the servers named by ``BINLOGKIT_MARIADB_URL`` /
  ``BINLOGKIT_MYSQL_URL`` (e.g. ``mysql://root@127.0.0.1:3306``).
- ``server_factory(flavor, **options)``: a server with extra options
  (``binlog_format="STATEMENT"``; value None is a bare flag), cached per
  (flavor, options) for the session.
- ``sid_root``: the Debian sid root holding MySQL (``BINLOGKIT_SID_ROOT``).

Servers are shared by every test of the session: do not rely on a fresh
binlog; FLUSH BINARY LOGS or note the position first. Tests that use these
fixtures get the ``server`` marker (deselect with ``-m "not server"``).
Missing binaries skip the test with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from binlogkit.lab import (
    Flavor,
    LabError,
    Server,
    default_options,
    start_server,
    unavailable_reason,
)
from binlogkit.lab.sid import sid_root as _sid_root

ServerFactory = Callable[..., Server]
_SERVER_FIXTURES = {"mariadb_server", "mysql_server", "server_factory"}
_URL_ENV = {"mariadb": "BINLOGKIT_MARIADB_URL", "mysql": "BINLOGKIT_MYSQL_URL"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def sid_root() -> Path:
    """The Debian sid root with MySQL's mysqld/mysqlbinlog (skip if absent)."""
    root = _sid_root()
    if not (root / "usr/bin/mysqlbinlog").exists():
        pytest.skip(f"no MySQL sid root at {root} (run scripts/provision.sh "
                    "or set BINLOGKIT_SID_ROOT)")
    return root


@pytest.fixture(scope="session")
def server_factory() -> Iterator[ServerFactory]:
    """``server_factory(flavor, **options) -> Server``, cached per (flavor, options)."""
    cache: dict[tuple[str, frozenset[tuple[str, str | None]]], Server] = {}
    started: list[Server] = []
    failed: dict[tuple[str, frozenset[tuple[str, str | None]]], str] = {}

    def factory(flavor: Flavor, **options: str | int | None) -> Server:
        opts = {k.replace("_", "-"): None if v is None else str(v) for k, v in options.items()}
        effective = {**default_options(flavor), **opts}
        key = (flavor, frozenset(effective.items()))  # {"binlog-format": "ROW"} == default
        if effective == default_options(flavor):
            opts = {}
        if key in cache:
            return cache[key]
        if key in failed:
            pytest.fail(failed[key])
        url = os.environ.get(_URL_ENV[flavor])
        if url and not opts:
            try:
                srv = Server.attach(url)
            except LabError as exc:
                pytest.fail(f"{_URL_ENV[flavor]}: {exc}")
            if srv.flavor != flavor:
                pytest.fail(f"{_URL_ENV[flavor]} points at a {srv.flavor} server ({srv.version})")
        else:
            reason = unavailable_reason(flavor)
            if reason:
                pytest.skip(reason)
            try:
                srv = start_server(flavor, options=opts)
            except LabError as exc:
                failed[key] = f"starting {flavor} with {opts}: {exc}"
                pytest.fail(failed[key])
            started.append(srv)
        cache[key] = srv
        return srv

    yield factory
    for srv in started:
        srv.stop(remove_data=True)


@pytest.fixture(scope="session")
def mariadb_server(server_factory: ServerFactory) -> Server:
    """MariaDB with the default options (or ``$BINLOGKIT_MARIADB_URL``)."""
    return server_factory("mariadb")


@pytest.fixture(scope="session")
def mysql_server(server_factory: ServerFactory) -> Server:
    """MySQL with the default options (or ``$BINLOGKIT_MYSQL_URL``)."""
    return server_factory("mysql")


# --- message brokers (binlogkit.lab.brokers; see docs/lab.md) -------------------

from binlogkit.lab import brokers as _brokers  # noqa: E402


def _broker_or_skip(kind: _brokers.BrokerKind) -> None:
    reason = _brokers.broker_unavailable_reason(kind)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[_brokers.BrokerServer]:
    """A single ``nats-server`` with JetStream (a ``BrokerServer``); skips without the binary."""
    _broker_or_skip("nats")
    srv = _brokers.start_nats()
    yield srv
    srv.stop(remove_data=True)


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[list[_brokers.BrokerServer]]:
    """Three routed JetStream nodes with a meta leader (``list[BrokerServer]``)."""
    _broker_or_skip("nats")
    nodes = _brokers.start_nats_cluster(3)
    yield nodes
    for node in nodes:
        node.stop(remove_data=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[_brokers.BrokerServer]:
    """A ``redis-server`` with ``appendonly yes`` (a ``BrokerServer``); skips without the binary."""
    _broker_or_skip("redis")
    srv = _brokers.start_redis()
    yield srv
    srv.stop(remove_data=True)


@pytest.fixture
def private_nats() -> Iterator[_brokers.BrokerServer]:
    """A ``nats-server`` of the test's own, to kill and restart."""
    _broker_or_skip("nats")
    srv = _brokers.start_nats()
    yield srv
    srv.stop(timeout=5.0, remove_data=True)


@pytest.fixture
def private_redis() -> Iterator[_brokers.BrokerServer]:
    """A ``redis-server`` (``appendonly yes``) of the test's own, to kill and restart."""
    _broker_or_skip("redis")
    srv = _brokers.start_redis()
    yield srv
    srv.stop(timeout=5.0, remove_data=True)
