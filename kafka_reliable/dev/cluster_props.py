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
    rf_s, isr_s = str(rf), str(isr)
    props = {
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
    if role == "controller":
        props.update(
            {
                "process.roles": "controller",
                "listeners": f"CONTROLLER://127.0.0.1:{port}",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
            }
        )
    else:
        ext = "SASL_PLAINTEXT" if sasl else "PLAINTEXT"
        props.update(
            {
                "process.roles": "broker",
                "listeners": f"EXTERNAL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port}",
                "advertised.listeners": f"EXTERNAL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port}",
                "inter.broker.listener.name": "INTERNAL",
                "listener.security.protocol.map": (
                    f"EXTERNAL:{ext},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
                ),
            }
        )
    if sasl:
        props.update(S.broker_props(role))
    return props
