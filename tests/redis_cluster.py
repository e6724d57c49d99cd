"""A real Redis Cluster on 127.0.0.1 for tests: Debian's `redis-server` (`make test`
installs it), masters with a replica each, on free ports, with a password.

The cluster is formed by hand, as `redis-cli --cluster create` would: each master takes
an equal share of the 16,384 slots and a config epoch of its own, every node meets the
first, each replica replicates its master, and `start` returns once every node sees
every slot served and every replica in sync. Nodes keep no data on disk (Purse's Redis
is disposable), only their cluster configuration, so a node started again rejoins with
its identity. A master that stops answering is replaced by its replica after
`node_timeout_ms`; every wait here is bounded and says what it waited for.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.crc import key_slot

from purse.store.embedded import free_port

slots_count = 16_384
# A master silent this long is failed (and its replica elected): short, so a test waits
# little, and still far above what a loaded 2-core machine takes to answer a ping.
node_timeout_ms = 1_000
change_seconds_max = 30.0
node_stop_seconds_max = 10.0
poll_interval_seconds = 0.05


@dataclass
class Node:
    """One redis-server of the cluster: its client port and its cluster bus port."""

    port: int
    bus_port: int
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""


def wait_until(condition: Callable[[], bool], what: str, seconds: float) -> None:
    """Return once `condition()` holds; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(poll_interval_seconds)


class LocalRedisCluster:
    """`masters` masters with `replicas_per_master` replicas each, in `directory`
    (`masters` are the nodes started as masters; `serving()` says which are now)."""

    def __init__(self, directory: Path, masters: int = 3, replicas_per_master: int = 1) -> None:
        self.directory = directory
        self.password = secrets.token_hex(16)
        self.masters = [self._new_node() for _ in range(masters)]
        self.replicas = {
            master.port: [self._new_node() for _ in range(replicas_per_master)]
            for master in self.masters
        }
        self.nodes = [*self.masters, *(r for group in self.replicas.values() for r in group)]
        # A slot of each master's share, by port: how a failover is seen to be complete.
        self._first_slot: dict[int, int] = {}

    def _new_node(self) -> Node:
        port = free_port()
        bus_port = free_port()
        while bus_port == port:
            bus_port = free_port()
        return Node(port, bus_port)

    @property
    def url(self) -> str:
        """What PURSE_REDIS_URL names: one node; the client learns the others from it."""
        return f"redis://:{self.password}@127.0.0.1:{self.masters[0].port}/0"

    def client(self, node: Node) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=node.port, password=self.password, socket_timeout=5
        )

    def start(self) -> LocalRedisCluster:
        for node in self.nodes:
            self.start_node(node)
        for index, master in enumerate(self.masters):
            share = slots_count // len(self.masters)
            last = slots_count - 1 if index == len(self.masters) - 1 else (index + 1) * share - 1
            self._first_slot[master.port] = index * share
            with self.client(master) as admin:
                admin.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
                admin.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        with self.client(self.masters[0]) as first:
            for node in self.nodes[1:]:
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        wait_until(self._everyone_knows_everyone, "every node knows every other", 10)
        for master in self.masters:
            for replica in self.replicas[master.port]:
                with self.client(replica) as admin:
                    admin.execute_command("CLUSTER", "REPLICATE", master.node_id)
        self.wait_until_healthy()
        return self

    def start_node(self, node: Node) -> None:
        """Start (or start again) one node; it keeps its cluster identity in its file."""
        log = (self.directory / f"redis-{node.port}.log").open("ab")
        node.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(node.port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-port", str(node.bus_port),
                "--cluster-config-file", str(self.directory / f"nodes-{node.port}.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                # A replica may always take over, however long it was cut off.
                "--cluster-replica-validity-factor", "0",
                "--requirepass", self.password,
                "--masterauth", self.password,
                "--save", "",
                "--appendonly", "no",
                # A replica's first sync starts at once, not after the default 5 s.
                "--repl-diskless-sync-delay", "0",
                "--dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_until(lambda: self._answers(node), f"redis-server on port {node.port} answers", 10)
        with self.client(node) as admin:
            node.node_id = admin.execute_command("CLUSTER", "MYID").decode()

    def _answers(self, node: Node) -> bool:
        assert node.process is not None
        if node.process.poll() is not None:
            log = (self.directory / f"redis-{node.port}.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server on port {node.port} exited:\n{log}")
        try:
            with self.client(node) as admin:
                return bool(admin.ping())
        except redis.ConnectionError:
            return False

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.process is not None]

    def _everyone_knows_everyone(self) -> bool:
        """Every node lists every other, past the handshake (REPLICATE needs that)."""
        for node in self.running():
            with self.client(node) as admin:
                listed = admin.execute_command("CLUSTER", "NODES").decode().splitlines()
            if sum("handshake" not in line for line in listed) != len(self.nodes):
                return False
        return True

    def wait_until_healthy(self, seconds: float = change_seconds_max) -> None:
        """Every running node sees all slots served and no running node failing, and every
        replica is in sync (a node started again is flagged failing for a moment, and the
        masters will not elect it then)."""
        wait_until(self._healthy, "the cluster serves every slot, replicas in sync", seconds)

    def _healthy(self) -> bool:
        running = {node.node_id for node in self.running()}
        for node in self.running():
            with self.client(node) as admin:
                info = _cluster_info(admin)
                if info["cluster_state"] != "ok" or info["cluster_slots_ok"] != str(slots_count):
                    return False
                listed = admin.execute_command("CLUSTER", "NODES").decode().splitlines()
                if any(line.split()[0] in running and "fail" in line.split()[2] for line in listed):
                    return False
                replication = admin.info("replication")
                if replication["role"] == "slave" and (
                    replication["master_link_status"] != "up"
                    or replication["master_sync_in_progress"]
                ):
                    return False
        return True

    def master_of(self, key: str) -> Node:
        """The node serving `key`'s slot now, as every running node says."""
        slot = key_slot(key.encode())
        owners = {self._owner(node, slot) for node in self.running()}
        assert len(owners) == 1, f"the nodes disagree on who serves slot {slot}: {owners}"
        port = owners.pop()
        return next(node for node in self.nodes if node.port == port)

    def serving(self) -> list[Node]:
        """The masters serving slots now (a failover changes which nodes they are)."""
        with self.client(self.running()[0]) as admin:
            ports = {int(owner[1]) for _, _, owner, *_ in admin.execute_command("CLUSTER", "SLOTS")}
        return [node for node in self.nodes if node.port in ports]

    def _owner(self, node: Node, slot: int) -> int:
        """The port of the master serving `slot`, as `node` sees it."""
        with self.client(node) as admin:
            for start, end, owner, *_ in admin.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(owner[1])
        raise AssertionError(f"port {node.port} knows no node serving slot {slot}")

    def replica_of(self, master: Node) -> Node:
        """A running replica of `master` now (after a failover, the old master is one)."""
        for node in self.running():
            with self.client(node) as admin:
                replication = admin.info("replication")
            if replication["role"] == "slave" and replication["master_port"] == master.port:
                return node
        raise AssertionError(f"no replica of port {master.port}")

    def wait_for_replicas(self) -> None:
        """Return once every replica has all its master wrote (replication is
        asynchronous: a write is lost with a killed master unless it reached the replica)."""
        wait_until(self._replicas_caught_up, "replicas caught up with their masters", 10)

    def _replicas_caught_up(self) -> bool:
        offsets: dict[int, int] = {}
        for node in self.running():
            with self.client(node) as admin:
                replication = admin.info("replication")
            if replication["role"] == "master":
                offsets[node.port] = int(replication["master_repl_offset"])
        for node in self.running():
            with self.client(node) as admin:
                replication = admin.info("replication")
            if replication["role"] == "slave" and int(replication["slave_repl_offset"]) < (
                offsets.get(int(replication["master_port"]), 0)
            ):
                return False
        return True

    def fail_over(self, master: Node) -> Node:
        """A manual failover: `master`'s replica takes its slots once it has every write
        (CLUSTER FAILOVER on the replica). Returns the new master."""
        replica = self.replica_of(master)
        with self.client(replica) as admin:
            admin.execute_command("CLUSTER", "FAILOVER")
        self.wait_until_serving(master, replica)
        return replica

    def wait_until_serving(self, old: Node, new: Node) -> None:
        """Return once every running node says `new` serves what `old` served, and the
        cluster is healthy again."""
        slot = self._first_slot[old.port]
        wait_until(
            lambda: all(self._owner(node, slot) == new.port for node in self.running()),
            f"every node sees port {new.port} serving the slots of port {old.port}",
            change_seconds_max,
        )
        self._first_slot[new.port] = slot
        self.wait_until_healthy()

    def _role(self, node: Node) -> str:
        with self.client(node) as admin:
            return str(admin.info("replication")["role"])

    def kill(self, node: Node) -> None:
        """SIGKILL: the node is gone at once, as in a crash."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(node_stop_seconds_max)
        node.process = None

    def stop(self) -> None:
        for node in self.running():
            assert node.process is not None
            node.process.terminate()
        for node in self.running():
            assert node.process is not None
            try:
                node.process.wait(node_stop_seconds_max)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(node_stop_seconds_max)
            node.process = None


def _cluster_info(admin: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO as names and values (`cluster_state`: `ok`...), as the client parses it."""
    info: dict[str, str] = admin.cluster("INFO")
    return info
