"""Parts of a generated transaction value: line items, payment, shipping, v2 fields."""

from __future__ import annotations

import random
from typing import Any

from kafka_reliable.datagen.catalog import COUNTRIES, Card, Product, User


def line_items(
    cart: list[tuple[Product, int]], fx: float, unit_price_cents: int | None
) -> list[dict[str, Any]]:
    """A transaction's items, priced in the buyer's currency unless ``unit_price_cents`` is set."""
    return [
        {
            "product_id": p.product_id,
            "sku": p.sku,
            "category": p.category,
            "quantity": q,
            "unit_price_cents": unit_price_cents
            if unit_price_cents is not None
            else round(p.price_cents * fx),
        }
        for p, q in cart
    ]


def payment(user: User, card: Card | None) -> dict[str, Any]:
    """A transaction's payment: the user's method for their own card, else a credit card."""
    return {
        "method": user.payment_method if card is user.card else "CREDIT_CARD",
        "card_fingerprint": card.fingerprint if card else None,
        "card_bin": card.bin if card else None,
        "card_last4": card.last4 if card else None,
        "billing_country": user.country,
    }


def ship_to(rng: random.Random, user: User, ship_country: str) -> tuple[str, str]:
    """City and postal code: the user's at home, a random one of ``ship_country`` abroad."""
    if ship_country != user.country:
        return rng.choice(COUNTRIES[ship_country][1])
    return (user.city, user.postal_code)


def v2_fields(rng: random.Random, device_type: str, fraud_pattern: str | None) -> dict[str, Any]:
    """The fields ``transaction_v2`` adds: sales channel and risk score."""
    return {
        "sales_channel": (
            "MOBILE_APP" if device_type == "MOBILE" and rng.random() < 0.6 else "WEB"
        ),
        "risk_score": round(rng.uniform(0.6, 0.99) if fraud_pattern else rng.betavariate(1, 12), 4),
    }
