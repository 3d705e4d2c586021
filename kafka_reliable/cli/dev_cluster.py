"""``kafka-reliable dev-broker … --brokers N | --node N | --sasl | --cluster``: the dev cluster."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from kafka_reliable.dev.broker import DevBrokerError
from kafka_reliable.dev.cluster import DEFAULT_CLUSTER_PORT, MAX_BROKERS, DevCluster

#: Default first port of a SASL cluster, so it can run beside the plain one.
DEFAULT_SASL_PORT = 29092

_SIGNALS = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}


class _Usage(Exception):
    """A usage error of the cluster verbs (exit 2, one line)."""


# ---- argument types (argparse: exit 2, one line) ---------------------------------------------
def _int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be {low}..{high}, got {value}")
    return value


def port(text: str) -> int:
    return _int(text, "a port", 1, 65535)


def broker_count(text: str) -> int:
    return _int(text, "the broker count", 1, MAX_BROKERS)


def node_id(text: str) -> int:
    return _int(text, "a node id (0 = controller)", 0, MAX_BROKERS)


def is_cluster_dir(data_dir: Path | None) -> bool:
    """A data dir a dev cluster was started in (it holds ``cluster.json``)."""
    return data_dir is not None and (data_dir / "cluster.json").is_file()


def _cluster(args: argparse.Namespace) -> tuple[DevCluster, bool]:
    """The cluster the arguments mean, and whether it was ever started (``cluster.json``)."""
    default = DEFAULT_SASL_PORT if args.sasl else DEFAULT_CLUSTER_PORT
    known = DevCluster.load(args.port or default, args.data_dir)
    if known is not None and args.port is not None and args.port != known.base_port:
        raise _Usage(
            f"the cluster in {known.home} uses --port {known.base_port}, not {args.port}; "
            "drop --port or pass that one"
        )
    port = known.base_port if known is not None else (args.port or default)
    brokers = args.brokers or (known.brokers if known else (1 if args.sasl else 3))
    sasl = args.sasl or bool(known and known.sasl)
    if known is not None and args.brokers and args.brokers != known.brokers:
        raise _Usage(
            f"the cluster at port {port} has {known.brokers} brokers; stop it and remove "
            f"{known.home} to change the count"
        )
    c = DevCluster(brokers=brokers, base_port=port, data_dir=args.data_dir, sasl=sasl)
    if args.node is not None:
        c.node(args.node)  # DevBrokerError "no node N" for one the cluster does not have
    return c, known is not None


def run(args: argparse.Namespace) -> int:
    """Dispatch one cluster action; exit code 0 ok, 1 failed, 2 usage, 3 not running."""
    try:
        if args.action in _SIGNALS and args.node is None:
            raise _Usage(f"{args.action} needs --node N")
        c, exists = _cluster(args)
    except (_Usage, DevBrokerError) as exc:
        print(f"kafka-reliable dev-broker: error: {exc}", file=sys.stderr)
        return 2
    if args.action != "start" and not exists:
        print(
            f"no dev cluster in {c.home} (nothing started there; start it with --brokers N)",
            file=sys.stderr,
        )
        return 3 if args.action == "status" else (0 if args.action == "stop" else 1)
    if args.action == "status":
        return _status(c, args.json, args.node)
    if args.action == "start":
        if args.node is not None:
            done = c.start_node(args.node)
            print(f"{'started' if done else 'already running'}: node {args.node}")
        else:
            started = c.start()
            print(
                f"started nodes {started or 'none (all running)'}: {c.brokers} broker(s) on "
                f"{c.bootstrap_servers}{' (SASL/SCRAM-SHA-512)' if c.sasl else ''}"
            )
        return 0
    if args.action == "stop":
        if args.node is not None:
            print(f"{'stopped' if c.stop_node(args.node) else 'not running'}: node {args.node}")
        else:
            print(f"stopped nodes {c.stop() or 'none (nothing running)'}")
        return 0
    pid = c.signal_node(args.node, _SIGNALS[args.action])
    print(f"{args.action}: node {args.node} (pid {pid})")
    return 0


def _status(c: DevCluster, as_json: bool, node: int | None) -> int:
    status = c.status()
    if node is not None:
        status["nodes"] = [n for n in status["nodes"] if n["node_id"] == node]
    if as_json:
        print(json.dumps(status))
    else:
        print(
            f"cluster {status['bootstrap_servers']}  RF {status['replication_factor']}  "
            f"min.insync {status['min_insync_replicas']}  sasl {status['sasl']}  "
            f"{status['data_dir']}"
        )
        for n in status["nodes"]:
            print(
                f"  node {n['node_id']} {n['role']:10} port {n['port']:5}  "
                f"pid {n['pid'] or '-':>7}  {n['state']}"
            )
    return 0 if all(n["running"] for n in status["nodes"]) else 3


def stop_default() -> None:
    """``dev-broker stop`` also stops the default-port cluster when one was started."""
    c = DevCluster.load(DEFAULT_CLUSTER_PORT)
    if c is not None and c.stop():
        print(f"stopped the dev cluster on {c.bootstrap_servers}")
