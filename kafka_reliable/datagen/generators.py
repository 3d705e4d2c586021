"""Seeded generators of e-commerce records: sessions (funnels), transactions, catalogue updates,
fraud.

Everything is drawn from one ``random.Random(seed)`` and a simulated clock, so the same seed
and start time give the same records. Record values are plain dicts that fit the bundled
Avro schemas (``user_event``, ``transaction`` / ``transaction_v2``, ``product_update``);
timestamps are epoch milliseconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from kafka_reliable.datagen import fraud
from kafka_reliable.datagen.catalog import CATEGORY_WEIGHTS as _CATEGORY_WEIGHTS
from kafka_reliable.datagen.catalog import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    DEVICES,
    MINOR_UNITS_PER_USD_CENT,
    Card,
    Catalog,
    Product,
    User,
    new_card,
    rng_ip,
    rng_uuid,
    weighted,
)

# The traffic shape lived here; re-exported.
from kafka_reliable.datagen.traffic import (
    HOURLY_TRAFFIC,  # noqa: F401
    daily_traffic_factor,  # noqa: F401
    exp_gap_ms,  # noqa: F401
)
from kafka_reliable.datagen.transactions import line_items, payment, ship_to, v2_fields

#: Record kinds, each with its own topic and schema.
TRANSACTION, USER_EVENT, PRODUCT_UPDATE = "transaction", "user_event", "product_update"

FRAUD_PATTERNS = ("CARD_TESTING", "ACCOUNT_TAKEOVER", "VELOCITY_ABUSE")
#: How often each pattern occurs when a scenario does not pick one.
FRAUD_PATTERN_WEIGHTS = (0.45, 0.3, 0.25)
_SEARCH_TERMS = {
    "electronics": ("wireless headphones", "4k camera", "smartwatch"),
    "books": ("bestseller", "cookbook"),
    "fashion": ("winter jacket", "sneakers"),
    "home": ("desk lamp", "blender"),
    "beauty": ("vitamin c serum",),
    "sports": ("running shoes", "yoga mat"),
    "toys": ("lego", "puzzle 1000"),
    "gift_cards": ("gift card",),
}
_REFERRERS = (
    None,
    None,
    "https://www.google.com/",
    "https://www.instagram.com/",
    "https://news.example.org/",
)


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One record to send: its kind (topic), key, value and, when set, a failure to inject."""

    kind: str
    key: str
    value: dict[str, Any]
    timestamp_ms: int
    inject: str | None = None


class _Session:
    """Collects the events of one visit with increasing timestamps and sequence numbers."""

    def __init__(
        self,
        gen: EventGenerator,
        *,
        user: User | None,
        at_ms: int,
        device: tuple[str, str, str],
        ip: str,
        country: str,
    ) -> None:
        self.gen, self.user, self.now_ms = gen, user, at_ms
        self.device, self.ip, self.country = device, ip, country
        self.session_id = f"s-{gen.rng.getrandbits(64):016x}"
        self.records: list[GeneratedRecord] = []
        self.cart: list[tuple[Product, int]] = []
        self.sequence = 0

    def event(self, event_type: str, page_url: str, **extra: Any) -> None:
        self.now_ms += int(self.gen.rng.expovariate(1 / 18_000)) + 500
        value = {
            "event_id": rng_uuid(self.gen.rng),
            "event_type": event_type,
            "user_id": self.user.user_id if self.user else None,
            "session_id": self.session_id,
            "sequence_number": self.sequence,
            "timestamp": self.now_ms,
            "page_url": page_url,
            "referrer": None,
            "device": {"type": self.device[0], "os": self.device[1], "browser": self.device[2]},
            "ip_address": self.ip,
            "country": self.country,
            "product_id": None,
            "search_query": None,
            "quantity": None,
            "cart_value_cents": None,
            "properties": {},
        }
        value.update(extra)
        self.sequence += 1
        self.records.append(GeneratedRecord(USER_EVENT, self.session_id, value, self.now_ms))

    def cart_value_cents(self) -> int:
        return sum(p.price_cents * q for p, q in self.cart)


class EventGenerator:
    """Reproducible e-commerce activity on a simulated clock."""

    def __init__(
        self,
        *,
        seed: int,
        start_ms: int,
        n_users: int = 500,
        n_products: int = 200,
        conversion_boost: float = 1.0,
        transaction_schema_version: int = 1,
    ) -> None:
        if transaction_schema_version not in (1, 2):
            raise ValueError("transaction_schema_version must be 1 or 2")
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.catalog = Catalog(
            rng=self.rng, now_ms=start_ms, n_users=n_users, n_products=n_products
        )
        self.conversion_boost = conversion_boost
        self.transaction_schema_version = transaction_schema_version

    # -- sessions ---------------------------------------------------------------------------
    def session(self, at_ms: int) -> list[GeneratedRecord]:
        """One visit through the funnel: page view → search → product views → cart → checkout."""
        rng = self.rng
        user = self.catalog.pick_user(rng) if rng.random() < 0.7 else None
        device = (
            user.device if user else rng.choices(DEVICES, weights=[d[3] for d in DEVICES])[0][:3]
        )
        country = user.country if user else weighted(rng, COUNTRY_WEIGHTS)
        s = _Session(
            self,
            user=user,
            at_ms=at_ms,
            device=device,
            ip=user.ip_address if user else rng_ip(rng),
            country=country,
        )
        s.event(
            "PAGE_VIEW", rng.choice(("/", "/", "/deals", "/new")), referrer=rng.choice(_REFERRERS)
        )
        category: str | None = None
        if rng.random() < 0.55:
            category = weighted(rng, _CATEGORY_WEIGHTS)
            query = rng.choice(_SEARCH_TERMS[category])
            s.event("SEARCH", f"/search?q={query.replace(' ', '+')}", search_query=query)
        for _ in range(1 + min(int(rng.expovariate(0.7)), 6)):
            self._view_and_maybe_add(s, self.catalog.pick_product(rng, category))
        if s.cart and rng.random() < 0.1:
            p, q = s.cart.pop()
            s.event(
                "REMOVE_FROM_CART",
                "/cart",
                product_id=p.product_id,
                quantity=q,
                cart_value_cents=s.cart_value_cents(),
            )
        if s.cart and user is not None and rng.random() < 0.55:
            s.event("BEGIN_CHECKOUT", "/checkout", cart_value_cents=s.cart_value_cents())
            if rng.random() < 0.75:
                self._purchase(s, user)
        return s.records

    def _view_and_maybe_add(self, s: _Session, product: Product) -> None:
        s.event("PRODUCT_VIEW", f"/p/{product.product_id}", product_id=product.product_id)
        p_add = min(0.9, 0.22 * self.conversion_boost)
        qty = 1 if self.rng.random() < 0.8 else self.rng.randint(2, 3)
        if product.stock_quantity >= qty and self.rng.random() < p_add:
            s.cart.append((product, qty))
            s.event(
                "ADD_TO_CART",
                f"/p/{product.product_id}",
                product_id=product.product_id,
                quantity=qty,
                cart_value_cents=s.cart_value_cents(),
            )

    def _purchase(self, s: _Session, user: User) -> None:
        s.event("PURCHASE", "/checkout/complete", cart_value_cents=s.cart_value_cents())
        txn = self.transaction(
            at_ms=s.now_ms,
            user=user,
            cart=s.cart,
            session_id=s.session_id,
            ip=s.ip,
            device_type=s.device[0],
        )
        s.records.append(txn)
        s.records.extend(self.sell(s.now_ms, s.cart))

    # -- transactions -----------------------------------------------------------------------
    def transaction(
        self,
        *,
        at_ms: int,
        user: User,
        cart: list[tuple[Product, int]],
        session_id: str | None,
        ip: str,
        device_type: str,
        card: Card | None = None,
        ship_country: str | None = None,
        status: str = "COMPLETED",
        fraud_pattern: str | None = None,
        unit_price_cents: int | None = None,
    ) -> GeneratedRecord:
        rng = self.rng
        currency = user.currency
        fx = MINOR_UNITS_PER_USD_CENT[currency]
        items = line_items(cart, fx, unit_price_cents)
        subtotal = sum(i["unit_price_cents"] * i["quantity"] for i in items)
        discount = round(subtotal * rng.choice((0.05, 0.1, 0.15))) if rng.random() < 0.12 else 0
        ship_country = ship_country or user.country
        city, postal = ship_to(rng, user, ship_country)
        tax = round((subtotal - discount) * COUNTRIES[ship_country][2])
        shipping = 0 if subtotal >= 5000 * fx else round(499 * fx)
        card = card or user.card
        value: dict[str, Any] = {
            "transaction_id": rng_uuid(rng),
            "user_id": user.user_id,
            "session_id": session_id,
            "timestamp": at_ms,
            "items": items,
            "subtotal_cents": subtotal,
            "discount_cents": discount,
            "tax_cents": tax,
            "shipping_cents": shipping,
            "total_cents": subtotal - discount + tax + shipping,
            "currency": currency,
            "status": status,
            "payment": payment(user, card),
            "shipping_address": {"country": ship_country, "city": city, "postal_code": postal},
            "ip_address": ip,
            "device_type": device_type,
            "is_fraud": fraud_pattern is not None,
            "fraud_pattern": fraud_pattern,
            "metadata": {"segment": user.segment},
        }
        if self.transaction_schema_version == 2:
            value.update(v2_fields(rng, device_type, fraud_pattern))
        return GeneratedRecord(TRANSACTION, user.user_id, value, at_ms)

    # -- catalogue and inventory ------------------------------------------------------------
    def product_update(
        self,
        at_ms: int,
        product: Product,
        update_type: str,
        *,
        previous_price: int | None = None,
        previous_stock: int | None = None,
        reason: str | None = None,
    ) -> GeneratedRecord:
        value = {
            "update_id": rng_uuid(self.rng),
            "product_id": product.product_id,
            "sku": product.sku,
            "timestamp": at_ms,
            "update_type": update_type,
            "name": product.name,
            "category": product.category,
            "brand": product.brand,
            "price_cents": product.price_cents,
            "previous_price_cents": previous_price,
            "currency": "USD",
            "stock_quantity": product.stock_quantity,
            "previous_stock_quantity": previous_stock,
            "warehouse_id": product.warehouse_id,
            "reason": reason,
            "attributes": dict(product.attributes),
        }
        return GeneratedRecord(PRODUCT_UPDATE, product.product_id, value, at_ms)

    def sell(self, at_ms: int, cart: list[tuple[Product, int]]) -> list[GeneratedRecord]:
        """Stock goes down with each sale; a product that runs out says so."""
        out = []
        for p, q in cart:
            before = p.stock_quantity
            p.stock_quantity = max(0, before - q)
            kind = "OUT_OF_STOCK" if p.stock_quantity == 0 else "STOCK_CHANGE"
            out.append(
                self.product_update(at_ms + 1, p, kind, previous_stock=before, reason="sale")
            )
        return out

    def maintenance(self, at_ms: int) -> GeneratedRecord:
        """Back office: restock a low product, or nudge a price."""
        p = self.catalog.pick_product(self.rng)
        if p.stock_quantity < 20:
            before = p.stock_quantity
            p.stock_quantity += self.rng.randrange(50, 300)
            return self.product_update(
                at_ms, p, "RESTOCK", previous_stock=before, reason="purchase order"
            )
        before_price = p.price_cents
        p.price_cents = max(99, round(before_price * self.rng.uniform(0.85, 1.1) / 100) * 100 + 99)
        return self.product_update(
            at_ms, p, "PRICE_CHANGE", previous_price=before_price, reason="repricing"
        )

    def start_flash_sale(
        self, at_ms: int, *, n_products: int, discount: float
    ) -> list[GeneratedRecord]:
        """Cut the price of the most popular products, allocate limited stock, draw the crowd to
        them."""
        top = sorted(self.catalog.products, key=lambda p: -p.popularity)[:n_products]
        out = []
        for p in top:
            before, stock_before = p.price_cents, p.stock_quantity
            p.price_cents = max(99, round(before * (1 - discount) / 100) * 100 + 99)
            p.stock_quantity = min(
                stock_before, self.rng.randrange(15, 60)
            )  # the sale's allocation
            p.attributes["flash_sale"] = "true"
            out.append(
                self.product_update(
                    at_ms,
                    p,
                    "PRICE_CHANGE",
                    previous_price=before,
                    previous_stock=stock_before,
                    reason="flash_sale",
                )
            )
        self.catalog.boost([p.product_id for p in top], 25.0)
        return out

    # -- fraud ------------------------------------------------------------------------------
    def fraud_episode(self, at_ms: int, pattern: str | None = None) -> list[GeneratedRecord]:
        """A burst of fraudulent transactions with the recognisable traits of ``pattern``."""
        pattern = pattern or self.rng.choices(FRAUD_PATTERNS, weights=FRAUD_PATTERN_WEIGHTS)[0]
        if pattern == "CARD_TESTING":
            return fraud.card_testing(self, at_ms)
        if pattern == "ACCOUNT_TAKEOVER":
            return self._account_takeover(at_ms)
        if pattern == "VELOCITY_ABUSE":
            return fraud.velocity_abuse(self, at_ms)
        raise ValueError(f"unknown fraud pattern {pattern!r} (known: {', '.join(FRAUD_PATTERNS)})")

    def _account_takeover(self, at_ms: int) -> list[GeneratedRecord]:
        """A known account logs in from a new device abroad and ships expensive goods elsewhere."""
        rng = self.rng
        victim = self.catalog.pick_user(rng)
        abroad = rng.choice([c for c in COUNTRIES if c != victim.country])
        s = _Session(
            self,
            user=victim,
            at_ms=at_ms,
            device=("DESKTOP", "Linux", "Firefox"),
            ip=rng_ip(rng),
            country=abroad,
        )
        s.event("LOGIN", "/login", properties={"new_device": "true", "password_reset": "true"})
        for _ in range(rng.randint(1, 3)):
            p = self.catalog.pick_product(rng, "electronics")
            s.event("PRODUCT_VIEW", f"/p/{p.product_id}", product_id=p.product_id)
            s.cart.append((p, rng.randint(2, 4)))
        s.event("PURCHASE", "/checkout/complete", cart_value_cents=s.cart_value_cents())
        s.records.append(
            self.transaction(
                at_ms=s.now_ms,
                user=victim,
                cart=s.cart,
                session_id=s.session_id,
                ip=s.ip,
                device_type="DESKTOP",
                card=victim.card or new_card(rng),
                ship_country=abroad,
                fraud_pattern="ACCOUNT_TAKEOVER",
            )
        )
        return s.records
