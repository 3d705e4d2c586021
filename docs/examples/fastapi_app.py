"""A FastAPI service that answers truthfully whether Kafka has the record.

The producer lives in the app's lifespan (started before the first request, closed — and
whatever is still in flight spooled — on shutdown). ``POST /orders`` answers 202 with the
message id once Kafka acknowledged the record, or 503 with where it went instead (``retrying``,
``dlq``, ``spooled``) and why; nothing is lost either way.

Run it (``pip install 'kafka-reliable[aio]'``)::

    KAFKA_BOOTSTRAP_SERVERS=localhost:9092 uvicorn fastapi_app:app --app-dir docs/examples

Settings from the environment: ``KAFKA_BOOTSTRAP_SERVERS``, ``ORDERS_TOPIC`` (default
``orders``), ``REDIS_URL`` (dedup across replicas when set), ``KAFKA_RELIABLE_SPOOL``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kafka_reliable.aio import AsyncReliableProducer, DeliveryRoutedError

TOPIC = os.environ.get("ORDERS_TOPIC", "orders")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    redis_url = os.environ.get("REDIS_URL")
    async with AsyncReliableProducer(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        enable_deduplication=redis_url is not None,
        redis_url=redis_url,
        spool_path=os.environ.get("KAFKA_RELIABLE_SPOOL"),
    ) as producer:
        app.state.producer = producer
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/orders", status_code=202)
async def create_order(order: dict[str, Any], request: Request) -> Any:
    producer: AsyncReliableProducer = request.app.state.producer
    try:
        mid = await producer.send_message(TOPIC, order, key=str(order.get("user_id", "")) or None)
    except DeliveryRoutedError as exc:
        return JSONResponse(status_code=503, content={
            "status": exc.status, "error_class": exc.error_class, "message_id": exc.message_id,
        })
    return {"message_id": mid, "status": producer.get_message_status(mid)}


@app.get("/orders/{message_id}")
async def order_status(message_id: str, request: Request) -> dict[str, Any]:
    producer: AsyncReliableProducer = request.app.state.producer
    return {"message_id": message_id, "status": producer.get_message_status(message_id)}


@app.get("/health")
async def health(request: Request) -> Any:
    producer: AsyncReliableProducer = request.app.state.producer
    status = await producer.get_health_status()
    return JSONResponse(status_code=200 if status["status"] != "unhealthy" else 503, content=status)
