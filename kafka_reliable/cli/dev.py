"""``kafka-reliable dev-broker`` and ``dev-redis``: local real services without Docker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kafka_reliable.cli import dev_cluster
from kafka_reliable.dev.broker import DEFAULT_PORT, DevBroker
from kafka_reliable.dev.cluster import DEFAULT_CLUSTER_PORT
from kafka_reliable.dev.redis_cluster import DevRedisCluster
from kafka_reliable.dev.redis_server import DEFAULT_REDIS_PORT, DevRedis, DevRedisError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_broker(sub)
    _register_redis(sub)


def _register_broker(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dev-broker``: the single dev broker, or the dev cluster."""
    broker = sub.add_parser(
        "dev-broker",
        help="a local Apache Kafka broker (KRaft), or a multi-broker cluster with --brokers N",
        epilog=f"Cluster mode (--brokers, --node, --sasl or --cluster): controller = node 0, "
        "brokers 1..N, "
        f"client ports from --port (default {DEFAULT_CLUSTER_PORT}).",
    )
    broker.add_argument("action", choices=["start", "stop", "status", "kill", "pause", "resume"])
    broker.add_argument(
        "--port",
        type=dev_cluster.port,
        default=None,
        help=f"client port (default {DEFAULT_PORT}; cluster: first port, "
        f"default {DEFAULT_CLUSTER_PORT})",
    )
    broker.add_argument(
        "--controller-port",
        type=dev_cluster.port,
        default=None,
        help="controller port (default port+1)",
    )
    broker.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data, pid and log folder (a cluster's folder is enough to find it: cluster.json)",
    )
    broker.add_argument("--json", action="store_true", help="status as JSON")
    broker.add_argument(
        "--brokers",
        type=dev_cluster.broker_count,
        default=None,
        help="start a cluster of N (1..9) brokers + 1 controller",
    )
    broker.add_argument(
        "--node",
        type=dev_cluster.node_id,
        default=None,
        help="cluster node the action applies to (0 = controller)",
    )
    broker.add_argument(
        "--sasl", action="store_true", help="SASL/SCRAM-SHA-512 client listener with ACLs"
    )
    broker.add_argument(
        "--cluster", action="store_true", help="act on the dev cluster, not the single broker"
    )
    broker.set_defaults(func=_broker)


def _register_redis(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dev-redis``: a local redis-server, or a Redis Cluster."""
    redis = sub.add_parser(
        "dev-redis",
        help="start/stop/status of a local redis-server, or a Redis Cluster",
        epilog="stop without --cluster also stops the dev cluster of the default data dir.",
    )
    redis.add_argument("action", choices=["start", "stop", "status"])
    redis.add_argument("--port", type=int, default=DEFAULT_REDIS_PORT)
    redis.add_argument("--data-dir", type=Path, default=None)
    redis.add_argument(
        "--cluster",
        type=int,
        nargs="?",
        const=3,
        default=None,
        metavar="MASTERS",
        help="a Redis Cluster of MASTERS masters (default 3), ports found free from 17100",
    )
    redis.add_argument("--json", action="store_true", help="status as JSON")
    redis.set_defaults(func=_redis)


def _broker(args: argparse.Namespace) -> int:
    if (
        args.brokers is not None
        or args.node is not None
        or args.sasl
        or args.cluster
        or dev_cluster.is_cluster_dir(args.data_dir)
    ):
        return dev_cluster.run(args)
    if args.action in {"kill", "pause", "resume"}:
        print(
            f"kafka-reliable dev-broker: error: {args.action} needs --node N (cluster mode)",
            file=sys.stderr,
        )
        return 2
    b = DevBroker(
        port=args.port or DEFAULT_PORT, controller_port=args.controller_port, data_dir=args.data_dir
    )
    if args.action == "start":
        started = b.start()
        print(
            ("started" if started else "already running")
            + f": Apache Kafka on {b.bootstrap_servers} (pid {b.pid()})"
        )
        return 0
    if args.action == "stop":
        print("stopped" if b.stop() else "not running (nothing this launcher started)")
        if args.port is None and args.data_dir is None:
            dev_cluster.stop_default()
        return 0
    status = b.status()
    if args.json:
        print(json.dumps(status))
    else:
        for k, v in status.items():
            print(f"{k:18} {v}")
    return 0 if status["running"] else 3


def _redis(args: argparse.Namespace) -> int:
    if args.cluster is not None:
        return _redis_cluster(args)
    r = DevRedis(port=args.port, data_dir=args.data_dir)
    if args.action == "start":
        print(("started" if r.start() else "already answering") + f": {r.url}")
        return 0
    if args.action == "stop":
        print("stopped" if r.stop() else "not running (nothing this launcher started)")
        if args.data_dir is None and DevRedisCluster().stop():
            print("stopped the dev Redis Cluster")
        return 0
    ok = r.answers()
    print(f"{r.url} {'answers' if ok else 'does not answer'}")
    return 0 if ok else 3


def _redis_cluster(args: argparse.Namespace) -> int:
    if args.cluster < 3:
        print(
            "kafka-reliable dev-redis: error: --cluster needs at least 3 masters, "
            f"got {args.cluster}",
            file=sys.stderr,
        )
        return 2
    c = DevRedisCluster(masters=args.cluster, data_dir=args.data_dir)
    if args.action == "start":
        try:
            started = c.start()
        except DevRedisError as exc:
            print(f"kafka-reliable dev-redis: error: {exc}", file=sys.stderr)
            return 1
        print(("started" if started else "already running") + f": Redis Cluster at {c.url}")
        return 0
    if args.action == "stop":
        print("stopped" if c.stop() else "not running (nothing this launcher started)")
        return 0
    status = c.status()
    if args.json:
        print(json.dumps(status))
    else:
        print(f"{status['url'] or 'no cluster'} {'ok' if status['running'] else 'not ok'}")
        for n in status["nodes"]:
            print(
                f"  node {n['node']}  port {n['port']}  pid {n['pid']}  "
                f"cluster_state {n['cluster_state']}"
            )
    return 0 if status["running"] else 3
