"""``kafka-reliable dev-broker … --brokers N | --node N | --sasl | --cluster``: the dev cluster."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from kafka_reliable.dev.cluster import DEFAULT_CLUSTER_PORT, DevCluster

#: Default first port of a SASL cluster, so it can run beside the plain one.
DEFAULT_SASL_PORT = 29092

_SIGNALS = {"kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}


def _cluster(args: argparse.Namespace) -> DevCluster:
    port = args.port or (DEFAULT_SASL_PORT if args.sasl else DEFAULT_CLUSTER_PORT)
    known = DevCluster.load(port, args.data_dir)
    brokers = args.brokers or (known.brokers if known else (1 if args.sasl else 3))
    sasl = args.sasl or bool(known and known.sasl)
    if known is not None and args.action == "start" and args.brokers and args.brokers != known.brokers:
        raise SystemExit(
            f"kafka-reliable dev-broker: error: the cluster at port {port} has {known.brokers} brokers; "
            f"stop it and remove {known.home} to change the count"
        )
    return DevCluster(brokers=brokers, base_port=port, data_dir=args.data_dir, sasl=sasl)


def run(args: argparse.Namespace) -> int:
    """Dispatch one cluster action; exit code 0 ok, 2 usage, 3 not running."""
    if args.action in _SIGNALS and args.node is None:
        print(f"kafka-reliable dev-broker: error: {args.action} needs --node N", file=sys.stderr)
        return 2
    c = _cluster(args)
    if args.action == "status":
        return _status(c, args.json)
    if args.action == "start":
        if args.node is not None:
            done = c.start_node(args.node)
            print(f"{'started' if done else 'already running'}: node {args.node}")
        else:
            started = c.start()
            print(f"started nodes {started or 'none (all running)'}: {c.brokers} broker(s) on "
                  f"{c.bootstrap_servers}{' (SASL/SCRAM-SHA-512)' if c.sasl else ''}")
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


def _status(c: DevCluster, as_json: bool) -> int:
    status = c.status()
    if as_json:
        print(json.dumps(status))
    else:
        print(f"cluster {status['bootstrap_servers']}  RF {status['replication_factor']}  "
              f"min.insync {status['min_insync_replicas']}  sasl {status['sasl']}  {status['data_dir']}")
        for n in status["nodes"]:
            print(f"  node {n['node_id']} {n['role']:10} port {n['port']:5}  pid {n['pid'] or '-':>7}  {n['state']}")
    return 0 if all(n["running"] for n in status["nodes"]) else 3


def stop_default() -> None:
    """``dev-broker stop`` also stops the default-port cluster when one was started."""
    c = DevCluster.load(DEFAULT_CLUSTER_PORT)
    if c is not None and c.stop():
        print(f"stopped the dev cluster on {c.bootstrap_servers}")
