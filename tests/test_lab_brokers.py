"""The broker harness: private nats-server (JetStream, cluster) and redis-server."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from binlogkit.lab import LabError
from binlogkit.lab.brokers import (
    BrokerServer,
    broker_unavailable_reason,
    resp_command,
    start_nats,
    start_nats_cluster,
    start_redis,
)

needs_nats = pytest.mark.skipif(broker_unavailable_reason("nats") is not None,
                                reason=str(broker_unavailable_reason("nats")))
needs_redis = pytest.mark.skipif(broker_unavailable_reason("redis") is not None,
                                 reason=str(broker_unavailable_reason("redis")))


def _info_line(port: int) -> dict[str, object]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s, s.makefile("rb") as f:
        line = f.readline()
    assert line.startswith(b"INFO ")
    return dict(json.loads(line[5:]))


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# --- NATS ------------------------------------------------------------------------


def test_nats_single_jetstream(nats_server: BrokerServer) -> None:
    srv = nats_server
    assert srv.url == f"nats://127.0.0.1:{srv.port}"
    assert srv.version and srv.is_running()
    info = _info_line(srv.port)
    assert info["jetstream"] is True
    assert info["version"] == srv.version
    varz = srv.monitor("varz")
    assert varz["port"] == srv.port
    store = Path(varz["jetstream"]["config"]["store_dir"])
    assert store.is_relative_to(srv.datadir)
    jsz = srv.monitor("jsz")
    assert Path(jsz["config"]["store_dir"]) == store
    assert "meta_cluster" not in jsz  # not clustered
    assert srv.monitor("healthz?js-enabled-only=true")["status"] == "ok"


@needs_nats
def test_nats_stop_and_remove(tmp_path: Path) -> None:
    srv = start_nats(basedir=tmp_path, name="solo", jetstream=False)
    assert srv.instance_dir == tmp_path / "solo"
    assert "jetstream" not in srv.config.read_text()
    assert _info_line(srv.port).get("jetstream") in (None, False)
    with pytest.raises(LabError, match="in use"):
        start_nats(port=srv.port, basedir=tmp_path)
    srv.stop(remove_data=True)
    assert not srv.is_running()
    assert not _connectable(srv.port)
    assert not srv.instance_dir.exists()


def test_nats_cluster_forms(nats_cluster: list[BrokerServer]) -> None:
    names = {n.name for n in nats_cluster}
    assert len(nats_cluster) == 3
    deadline = time.monotonic() + 30
    while True:  # every node routed to both others, one leader they all follow
        metas = [n.meta_cluster() for n in nats_cluster]
        leaders = {m.get("leader") for m in metas}
        routes = [n.monitor("routez")["num_routes"] for n in nats_cluster]
        if len(leaders) == 1 and leaders <= names and routes == [2, 2, 2]:
            break
        assert time.monotonic() < deadline, f"the cluster did not form: {metas} {routes}"
        time.sleep(0.2)
    for node, meta in zip(nats_cluster, metas, strict=True):
        # (a node's own cluster_size can lag behind its routes under load)
        assert meta["name"] == "binlogkit"
        assert node.monitor("varz")["cluster"]["name"] == "binlogkit"
        assert node.monitor("healthz?js-enabled-only=true")["status"] == "ok"
        assert len({node.port, node.monitor_port, node.cluster_port}) == 3
    stores = {n.datadir for n in nats_cluster}
    assert len(stores) == 3


@needs_nats
def test_nats_cluster_node_dies_and_rejoins(tmp_path: Path) -> None:
    nodes = start_nats_cluster(3, basedir=tmp_path)
    try:
        old_leader = nodes[0].meta_leader()
        victim = next(n for n in nodes if n.name == old_leader)
        rest = [n for n in nodes if n is not victim]
        port, pid = victim.port, victim.pid
        victim.kill()
        assert not victim.is_running() and not _connectable(port)
        # the two survivors keep a quorum and elect a new meta leader
        new_leader = rest[0].wait_meta_leader(30, exclude={victim.name})
        assert new_leader in {n.name for n in rest}
        assert rest[1].wait_meta_leader(30, exclude={victim.name}) == new_leader
        assert rest[0].monitor("routez")["num_routes"] == 1

        victim.restart()
        assert victim.port == port and victim.pid != pid and victim.is_running()
        assert victim.wait_meta_leader(30) == new_leader
        leader = next(n for n in nodes if n.name == new_leader)
        deadline = time.monotonic() + 40
        while True:
            replicas = {r["name"]: r for r in leader.meta_cluster().get("replicas", [])}
            rep = replicas.get(victim.name)
            mine = victim.meta_cluster()
            # rejoined: routed to both peers, current in the leader's view, and it
            # follows the new leader (its own cluster_size can lag behind under load)
            if (rep and rep["current"] and victim.monitor("routez")["num_routes"] == 2
                    and mine.get("leader") == new_leader):
                break
            assert time.monotonic() < deadline, f"{victim.name} did not rejoin: {replicas} {mine}"
            time.sleep(0.2)
    finally:
        for n in nodes:
            n.stop(timeout=5, remove_data=True)


# --- Redis ------------------------------------------------------------------------


def test_redis_fixture(redis_server: BrokerServer) -> None:
    srv = redis_server
    assert srv.url == f"redis://127.0.0.1:{srv.port}"
    assert srv.command("PING") == "PONG"
    assert srv.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"yes"]
    assert srv.command("CONFIG", "GET", "dir") == [b"dir", str(srv.datadir).encode()]


@needs_redis
def test_redis_key_survives_sigkill(tmp_path: Path) -> None:
    srv = start_redis(basedir=tmp_path, name="aof")
    try:
        # raw RESP over a plain socket, no client library
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$5\r\nbinlg\r\n$5\r\nkit42\r\n")
            assert s.recv(16) == b"+OK\r\n"
        port, pid = srv.port, srv.pid
        srv.kill()
        assert not _connectable(port)
        assert list((srv.datadir / "appendonlydir").glob("*.incr.aof"))
        srv.restart()
        assert srv.port == port and srv.pid != pid
        assert resp_command("127.0.0.1", port, "GET", "binlg") == b"kit42"
    finally:
        srv.stop(remove_data=True)
    assert not (tmp_path / "aof").exists()


@needs_redis
def test_redis_without_aof_loses_key_on_sigkill(tmp_path: Path) -> None:
    with start_redis(basedir=tmp_path, appendonly=False) as srv:
        srv.command("SET", "k", "v")
        srv.kill()
        srv.restart()
        assert srv.command("GET", "k") is None


@needs_redis
def test_redis_bad_config_reports_log(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"exited with status 1(.|\n)*Bad directive"):
        start_redis(basedir=tmp_path, options={"no-such-directive": "1"})
    with pytest.raises(LabError, match="redis error: ERR unknown command"):
        with start_redis(basedir=tmp_path) as srv:
            srv.command("NOSUCHCMD")
