"""Fraud episodes of the data generator that need no session: card testing, velocity abuse.

Account takeover, which replays a visit, stays with the session code in ``generators``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_reliable.datagen.catalog import COUNTRIES, new_card, new_user, rng_ip

if TYPE_CHECKING:
    from kafka_reliable.datagen.generators import EventGenerator, GeneratedRecord


def card_testing(gen: EventGenerator, at_ms: int) -> list[GeneratedRecord]:
    """One stolen card tried for tiny amounts from fresh accounts behind one IP, mostly
    declined."""
    rng, card, ip = gen.rng, new_card(gen.rng), rng_ip(gen.rng)
    gift = gen.catalog.pick_product(rng, "gift_cards")
    out, t = [], at_ms
    for i in range(rng.randint(5, 12)):
        t += rng.randrange(3_000, 20_000)
        user = new_user(rng, t, country="US")
        status = "DECLINED" if i < 4 or rng.random() < 0.6 else "COMPLETED"
        out.append(
            gen.transaction(
                at_ms=t,
                user=user,
                cart=[(gift, 1)],
                session_id=None,
                ip=ip,
                device_type="DESKTOP",
                card=card,
                status=status,
                fraud_pattern="CARD_TESTING",
                unit_price_cents=rng.randrange(100, 500),
            )
        )
    return out


def velocity_abuse(gen: EventGenerator, at_ms: int) -> list[GeneratedRecord]:
    """A fresh account places many mid-value orders within minutes, shipped abroad to one
    reshipper."""
    rng = gen.rng
    user = new_user(rng, at_ms)
    reship = rng.choice([c for c in COUNTRIES if c != user.country])
    out, t = [], at_ms
    for _ in range(rng.randint(4, 8)):
        t += rng.randrange(20_000, 60_000)
        cart = [
            (
                gen.catalog.pick_product(rng, rng.choice(("electronics", "fashion"))),
                rng.randint(1, 2),
            )
        ]
        out.append(
            gen.transaction(
                at_ms=t,
                user=user,
                cart=cart,
                session_id=None,
                ip=user.ip_address,
                device_type=user.device[0],
                ship_country=reship,
                fraud_pattern="VELOCITY_ABUSE",
            )
        )
    return out
