"""Health: the monitor and its alerts, the circuit breaker and the send rate limiter."""

from __future__ import annotations

from kafka_reliable.health.alerts import Alert, AlertCallback, AlertManager, make_alert
from kafka_reliable.health.circuit import CircuitBreaker, CircuitOpenError
from kafka_reliable.health.memory import container_memory_usage, process_memory_usage
from kafka_reliable.health.monitor import DEGRADED, HEALTHY, UNHEALTHY, HealthMonitor
from kafka_reliable.health.ratelimit import RateLimiter, RateLimitExceededError

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "UNHEALTHY",
    "Alert",
    "AlertCallback",
    "AlertManager",
    "CircuitBreaker",
    "CircuitOpenError",
    "HealthMonitor",
    "RateLimitExceededError",
    "RateLimiter",
    "container_memory_usage",
    "make_alert",
    "process_memory_usage",
]
