"""The ``server.properties`` of one dev cluster node (see :mod:`kafka_reliable.dev.cluster`)."""

from __future__ import annotations

from pathlib import Path

from kafka_reliable.dev import sasl as S

#: Node id of the dedicated controller.
CONTROLLER_ID = 0


def node_props(
    node_id: int,
    role: str,
    port: int,
    internal_port: int | None,
    home: Path,
    *,
    controller_port: int,
    rf: int,
    isr: int,
    sasl: bool,
) -> dict[str, str]:
    """Settings of node ``node_id`` (``role`` broker or controller) of a cluster with replication
    factor ``rf`` and ``min.insync.replicas`` ``isr``."""
    props = _common_props(node_id, home, controller_port=controller_port, rf=rf, isr=isr)
    props.update(_listener_props(role, port, internal_port, sasl=sasl))
    if sasl:
        props.update(S.broker_props(role))
    return props


def _common_props(
    node_id: int, home: Path, *, controller_port: int, rf: int, isr: int
) -> dict[str, str]:
    """Settings every node shares: quorum, storage, replication of internal topics, threads."""
    rf_s, isr_s = str(rf), str(isr)
    return {
        "node.id": str(node_id),
        "controller.quorum.voters": f"{CONTROLLER_ID}@127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(home / "data"),
        "num.partitions": "3",
        "default.replication.factor": rf_s,
        "min.insync.replicas": isr_s,
        "offsets.topic.replication.factor": rf_s,
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.replication.factor": rf_s,
        "transaction.state.log.min.isr": isr_s,
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": rf_s,
        "share.coordinator.state.topic.min.isr": isr_s,
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "delete.topic.enable": "true",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.replica.fetchers": "1",
        "background.threads": "2",
        "log.retention.check.interval.ms": "10000",
        "replica.lag.time.max.ms": "10000",
        "controlled.shutdown.enable": "true",
    }


def _listener_props(
    role: str, port: int, internal_port: int | None, *, sasl: bool
) -> dict[str, str]:
    """Roles and listeners: CONTROLLER on a controller; EXTERNAL and INTERNAL on a broker."""
    if role == "controller":
        return {
            "process.roles": "controller",
            "listeners": f"CONTROLLER://127.0.0.1:{port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
        }
    ext = "SASL_PLAINTEXT" if sasl else "PLAINTEXT"
    listeners = f"EXTERNAL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port}"
    return {
        "process.roles": "broker",
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": (
            f"EXTERNAL:{ext},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
    }
