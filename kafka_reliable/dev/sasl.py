"""SASL/SCRAM-SHA-512 and ACLs for the dev cluster (``dev-broker start --sasl``).

Two users with random passwords kept in ``<cluster home>/users.json`` (mode 0600, never
printed): ``admin`` (super user) and ``limited``, who may do anything on topics, groups and
transactional ids except WRITE on topics whose name starts with :data:`RESTRICTED_PREFIX`.
Brokers talk to each other and to the controller over PLAINTEXT listeners on loopback; only
the client listener asks for SCRAM.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka_reliable.dev.cluster import DevCluster

#: The super user.
ADMIN_USER = "admin"
#: The user without WRITE on :data:`RESTRICTED_PREFIX` topics.
LIMITED_USER = "limited"
#: Topics ``limited`` may not write to (their ``.retry``/``.dlq`` included).
RESTRICTED_PREFIX = "restricted-"
MECHANISM = "SCRAM-SHA-512"
_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def _users_file(home: Path) -> Path:
    return home / "users.json"


def ensure_credentials(home: Path) -> dict[str, str]:
    """Create the users' random passwords once; return ``{user: password}``."""
    f = _users_file(home)
    if f.exists():
        return dict(json.loads(f.read_text()))
    home.mkdir(parents=True, exist_ok=True)
    users = {ADMIN_USER: secrets.token_hex(16), LIMITED_USER: secrets.token_hex(16)}
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(users, out)
    return users


def credentials(home: Path) -> dict[str, str]:
    return dict(json.loads(_users_file(home).read_text()))


def format_scram_args(home: Path) -> list[str]:
    """``kafka-storage format`` arguments that create both SCRAM users in the metadata log."""
    out: list[str] = []
    for user, pw in ensure_credentials(home).items():
        out += ["--add-scram", f"{MECHANISM}=[name={user},password={pw}]"]
    return out


def broker_props(role: str) -> dict[str, str]:
    props = {
        "authorizer.class.name": _AUTHORIZER,
        "super.users": f"User:ANONYMOUS;User:{ADMIN_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }
    if role == "broker":
        props.update(
            {
                "sasl.enabled.mechanisms": MECHANISM,
                "listener.name.external.sasl.enabled.mechanisms": MECHANISM,
                "listener.name.external.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
            }
        )
    return props


def client_settings(home: Path, user: str, password: str | None = None) -> dict[str, Any]:
    """librdkafka SASL settings for ``user`` (password from users.json unless given)."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password if password is not None else credentials(home)[user],
    }


def ensure_acls(cluster: DevCluster) -> None:
    """Grant ``limited`` everything but WRITE on :data:`RESTRICTED_PREFIX` topics (idempotent)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    principal = f"User:{LIMITED_USER}"
    allow, lit = AclPermissionType.ALLOW, ResourcePatternType.LITERAL
    bindings = [
        AclBinding(ResourceType.TOPIC, "*", lit, principal, "*", AclOperation.ALL, allow),
        AclBinding(ResourceType.GROUP, "*", lit, principal, "*", AclOperation.ALL, allow),
        AclBinding(
            ResourceType.TRANSACTIONAL_ID, "*", lit, principal, "*", AclOperation.ALL, allow
        ),
        AclBinding(
            ResourceType.BROKER,
            "kafka-cluster",
            lit,
            principal,
            "*",
            AclOperation.IDEMPOTENT_WRITE,
            allow,
        ),
        AclBinding(
            ResourceType.TOPIC,
            RESTRICTED_PREFIX,
            ResourcePatternType.PREFIXED,
            principal,
            "*",
            AclOperation.WRITE,
            AclPermissionType.DENY,
        ),
    ]
    admin = AdminClient({"bootstrap.servers": cluster.internal_bootstrap})
    for fut in admin.create_acls(bindings).values():
        fut.result(timeout=30)


def scrub(text: str) -> str:
    """Hide SCRAM passwords in tool output before it reaches an error message."""
    return re.sub(r"password=[^,\]\s]+", "password=***", text)
