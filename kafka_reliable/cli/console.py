"""``kafka-reliable console``: serve the DLQ web console (docs/console.md) with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from kafka_reliable.cli.common import (
    client_conf,
    connect_admin,
    connection_parent,
    non_negative_int,
)
from kafka_reliable.errors import InputError

#: Environment variable holding the token (better than --token: not in the process list).
TOKEN_ENV = "KAFKA_RELIABLE_CONSOLE_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "console",
        parents=[connection_parent()],
        help="web console: every DLQ, its records, redrive and purge (read-only without a token)",
        description="Serve the DLQ web console. Read-only unless a token is set; loopback unless "
        "--host says otherwise.",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; anything else is reachable "
        "from other machines)",
    )
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"token that allows redrive and purge (default: ${TOKEN_ENV}; without one the "
        "console is read-only)",
    )
    p.add_argument(
        "--spool-path",
        type=Path,
        default=None,
        help="a producer's spool file to summarize on the overview",
    )
    p.add_argument(
        "--worker-group",
        default=None,
        help="the retry workers' consumer group (default kafka-reliable-retry)",
    )
    p.add_argument(
        "--dlq-max-size",
        type=non_negative_int,
        default=None,
        help="the producers' dlq_max_size, to show each DLQ's fill",
    )
    p.add_argument(
        "--schema-registry-url",
        default=None,
        help="schema registry for Confluent wire-format Avro values",
    )
    p.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    return port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from kafka_reliable.console import ConsoleSettings, create_app
    except ImportError as exc:
        raise InputError(
            f"the console needs its extra: pip install 'kafka-reliable[console]' ({exc})"
        ) from None
    if not is_loopback(args.host) and not args.token:
        print(
            f"warning: the console listens on {args.host} without a token: anyone who can reach "
            "it can read every DLQ record (it stays read-only)",
            file=sys.stderr,
        )
    conf = client_conf(args)
    connect_admin(conf, 10.0)  # one line and exit 1 when the cluster does not answer
    kw = {}
    if args.worker_group:
        kw["worker_group"] = args.worker_group
    settings = ConsoleSettings(
        conf=conf,
        token=args.token,
        spool_path=args.spool_path,
        dlq_max_size=args.dlq_max_size,
        schema_registry_url=args.schema_registry_url,
        **kw,
    )
    mode = "read-only" if settings.read_only else "token required for changes"
    print(
        f"kafka-reliable console on http://{args.host}:{args.port}/ ({mode}); Ctrl-C stops it",
        file=sys.stderr,
    )
    audit = logging.getLogger("kafka_reliable.console.audit")
    audit.addHandler(_audit_handler())
    audit.propagate = False
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False
    )
    return 0


def _audit_handler() -> logging.Handler:
    """Audit lines on stderr whatever the verbosity (one line per action)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s audit %(message)s"))
    return handler
