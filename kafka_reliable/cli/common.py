"""Options every verb that talks to Kafka shares: brokers and extra client settings."""

from __future__ import annotations

import argparse
import os
from typing import Any

from kafka_reliable.errors import ConfigurationError


def connection_parent() -> argparse.ArgumentParser:
    """``--bootstrap-servers`` (default $KAFKA_BOOTSTRAP_SERVERS) and repeatable ``--kafka-config``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
                   help="Kafka brokers (default: $KAFKA_BOOTSTRAP_SERVERS or localhost:9092)")
    p.add_argument("--kafka-config", action="append", default=[], metavar="KEY=VALUE",
                   help="extra librdkafka client setting, repeatable (e.g. security.protocol=SASL_SSL)")
    return p


def client_conf(args: argparse.Namespace) -> dict[str, Any]:
    """librdkafka client config from the shared options."""
    conf: dict[str, Any] = {"bootstrap.servers": args.bootstrap_servers}
    for item in args.kafka_config:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--kafka-config wants KEY=VALUE, got {item.split('=')[0]!r}")
        conf[key.strip()] = value
    return conf
