"""``kafka-reliable dev-broker`` and ``dev-redis``: local real services without Docker."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kafka_reliable.dev.broker import DEFAULT_PORT, DevBroker
from kafka_reliable.dev.redis_server import DEFAULT_REDIS_PORT, DevRedis


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = sub.add_parser("dev-broker", help="start/stop/status of a local Apache Kafka broker (KRaft)")
    broker.add_argument("action", choices=["start", "stop", "status"])
    broker.add_argument("--port", type=int, default=DEFAULT_PORT, help="client port (default %(default)s)")
    broker.add_argument("--controller-port", type=int, default=None, help="controller port (default port+1)")
    broker.add_argument("--data-dir", type=Path, default=None, help="data, pid and log folder")
    broker.add_argument("--json", action="store_true", help="status as JSON")
    broker.set_defaults(func=_broker)

    redis = sub.add_parser("dev-redis", help="start/stop/status of a local redis-server")
    redis.add_argument("action", choices=["start", "stop", "status"])
    redis.add_argument("--port", type=int, default=DEFAULT_REDIS_PORT)
    redis.add_argument("--data-dir", type=Path, default=None)
    redis.set_defaults(func=_redis)


def _broker(args: argparse.Namespace) -> int:
    b = DevBroker(port=args.port, controller_port=args.controller_port, data_dir=args.data_dir)
    if args.action == "start":
        started = b.start()
        print(("started" if started else "already running") + f": Apache Kafka on {b.bootstrap_servers} (pid {b.pid()})")
        return 0
    if args.action == "stop":
        print("stopped" if b.stop() else "not running (nothing this launcher started)")
        return 0
    status = b.status()
    if args.json:
        print(json.dumps(status))
    else:
        for k, v in status.items():
            print(f"{k:18} {v}")
    return 0 if status["running"] else 3


def _redis(args: argparse.Namespace) -> int:
    r = DevRedis(port=args.port, data_dir=args.data_dir)
    if args.action == "start":
        print(("started" if r.start() else "already answering") + f": {r.url}")
        return 0
    if args.action == "stop":
        print("stopped" if r.stop() else "not running (nothing this launcher started)")
        return 0
    ok = r.answers()
    print(f"{r.url} {'answers' if ok else 'does not answer'}")
    return 0 if ok else 3
