"""Users and a product catalogue, built from a seed: the same seed gives the same shop."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field

#: Country -> (currency, cities with a postal-code prefix, sales-tax rate).
COUNTRIES: dict[str, tuple[str, tuple[tuple[str, str], ...], float]] = {
    "US": (
        "USD",
        (("New York", "100"), ("Austin", "787"), ("Seattle", "981"), ("Chicago", "606")),
        0.07,
    ),
    "GB": ("GBP", (("London", "EC1"), ("Manchester", "M1"), ("Leeds", "LS1")), 0.20),
    "DE": ("EUR", (("Berlin", "101"), ("Munich", "803"), ("Hamburg", "203")), 0.19),
    "FR": ("EUR", (("Paris", "750"), ("Lyon", "690")), 0.20),
    "CA": ("CAD", (("Toronto", "M5V"), ("Vancouver", "V6B")), 0.13),
    "AU": ("AUD", (("Sydney", "200"), ("Melbourne", "300")), 0.10),
    "JP": ("JPY", (("Tokyo", "100"), ("Osaka", "530")), 0.10),
}
#: Share of customers per country (sums to 1).
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 0.45,
    "GB": 0.15,
    "DE": 0.12,
    "FR": 0.08,
    "CA": 0.08,
    "AU": 0.06,
    "JP": 0.06,
}
#: Minor units of each currency per US cent (JPY has no minor unit: 1 yen is the unit).
MINOR_UNITS_PER_USD_CENT: dict[str, float] = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "CAD": 1.36,
    "AUD": 1.52,
    "JPY": 1.5,
}

#: Category -> (median price in US cents, log-normal sigma, brands, product nouns).
CATEGORIES: dict[str, tuple[int, float, tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        8999,
        0.9,
        ("Voltix", "Nordwave", "Kyoto Labs"),
        ("headphones", "tablet", "smartwatch", "speaker", "camera"),
    ),
    "books": (1599, 0.4, ("Penfold", "Harbor Press"), ("novel", "cookbook", "atlas", "biography")),
    "fashion": (
        3999,
        0.6,
        ("Linea", "Corvo", "Blue Fern"),
        ("jacket", "sneakers", "dress", "backpack"),
    ),
    "home": (2999, 0.7, ("Hearth & Co", "Oakline"), ("lamp", "blender", "rug", "cookware set")),
    "beauty": (1999, 0.5, ("Lumen", "Vireo"), ("serum", "perfume", "shampoo")),
    "sports": (
        4499,
        0.7,
        ("Stride", "Peakform"),
        ("yoga mat", "running shoes", "bike helmet", "dumbbells"),
    ),
    "toys": (2499, 0.6, ("Brickly", "Funyard"), ("puzzle", "building set", "board game")),
    "gift_cards": (2500, 0.3, ("ShopCard",), ("gift card",)),
}
#: How often a category is browsed, relative to the others.
CATEGORY_WEIGHTS: dict[str, float] = {
    "electronics": 0.22,
    "books": 0.12,
    "fashion": 0.2,
    "home": 0.15,
    "beauty": 0.1,
    "sports": 0.1,
    "toys": 0.08,
    "gift_cards": 0.03,
}
DEVICES: tuple[tuple[str, str, str, float], ...] = (
    ("DESKTOP", "Windows", "Chrome", 0.3),
    ("DESKTOP", "macOS", "Safari", 0.12),
    ("MOBILE", "iOS", "Safari", 0.25),
    ("MOBILE", "Android", "Chrome", 0.25),
    ("TABLET", "iPadOS", "Safari", 0.08),
)
PAYMENT_METHODS: tuple[tuple[str, float], ...] = (
    ("CREDIT_CARD", 0.45),
    ("DEBIT_CARD", 0.2),
    ("PAYPAL", 0.15),
    ("APPLE_PAY", 0.1),
    ("GOOGLE_PAY", 0.07),
    ("GIFT_CARD", 0.03),
)
CARD_METHODS = frozenset({"CREDIT_CARD", "DEBIT_CARD", "APPLE_PAY", "GOOGLE_PAY"})
WAREHOUSES = ("wh-us-east", "wh-us-west", "wh-eu-central", "wh-apac")


def rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (reproducible, unlike ``uuid.uuid4``)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rng_ip(rng: random.Random) -> str:
    first = rng.choice((23, 51, 78, 92, 104, 151, 185))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def weighted(rng: random.Random, pairs: dict[str, float]) -> str:
    return rng.choices(list(pairs), weights=list(pairs.values()))[0]


def lognormal_cents(rng: random.Random, median_cents: int, sigma: float) -> int:
    """A log-normal price around ``median_cents``, ending in 99 cents."""
    cents = int(math.exp(rng.gauss(math.log(median_cents), sigma)))
    return max(99, (cents // 100) * 100 + 99)


@dataclass(frozen=True, slots=True)
class Card:
    fingerprint: str
    bin: str
    last4: str


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    email: str
    country: str
    city: str
    postal_code: str
    segment: str
    device: tuple[str, str, str]
    ip_address: str
    payment_method: str
    card: Card | None
    signup_ms: int

    @property
    def currency(self) -> str:
        return COUNTRIES[self.country][0]


@dataclass(slots=True)
class Product:
    """Price and stock change as the simulation runs; the rest is fixed."""

    product_id: str
    sku: str
    name: str
    category: str
    brand: str
    price_cents: int
    stock_quantity: int
    warehouse_id: str
    popularity: float
    attributes: dict[str, str] = field(default_factory=dict)


def new_card(rng: random.Random) -> Card:
    return Card(
        fingerprint=f"card-{rng.getrandbits(64):016x}",
        bin=str(rng.choice((4, 5)) * 100000 + rng.randrange(100000)),
        last4=f"{rng.randrange(10000):04d}",
    )


def new_user(rng: random.Random, now_ms: int, *, country: str | None = None) -> User:
    country = country or weighted(rng, COUNTRY_WEIGHTS)
    city, postal_prefix = rng.choice(COUNTRIES[country][1])
    device = rng.choices(DEVICES, weights=[d[3] for d in DEVICES])[0]
    method = rng.choices([m for m, _ in PAYMENT_METHODS], weights=[w for _, w in PAYMENT_METHODS])[
        0
    ]
    user_id = f"u-{rng.getrandbits(48):012x}"
    return User(
        user_id=user_id,
        email=f"{user_id}@example.com",
        country=country,
        city=city,
        postal_code=f"{postal_prefix}{rng.randrange(100):02d}",
        segment=rng.choices(("new", "regular", "vip"), weights=(0.3, 0.6, 0.1))[0],
        device=device[:3],
        ip_address=rng_ip(rng),
        payment_method=method,
        card=new_card(rng) if method in CARD_METHODS else None,
        signup_ms=now_ms - rng.randrange(1, 3 * 365) * 86_400_000,
    )


def new_product(rng: random.Random, index: int) -> Product:
    category = weighted(rng, CATEGORY_WEIGHTS)
    median, sigma, brands, nouns = CATEGORIES[category]
    brand, noun = rng.choice(brands), rng.choice(nouns)
    return Product(
        product_id=f"p-{index:05d}",
        sku=f"{category[:3].upper()}-{rng.getrandbits(24):06X}",
        name=f"{brand} {noun}",
        category=category,
        brand=brand,
        price_cents=lognormal_cents(rng, median, sigma),
        stock_quantity=rng.randrange(20, 500),
        warehouse_id=rng.choice(WAREHOUSES),
        popularity=rng.paretovariate(1.2),
    )


class Catalog:
    """The shop: its registered users and products, with popularity-weighted picking."""

    def __init__(
        self, *, rng: random.Random, now_ms: int, n_users: int = 500, n_products: int = 200
    ) -> None:
        self.users = [new_user(rng, now_ms) for _ in range(n_users)]
        self.products = [new_product(rng, i) for i in range(n_products)]
        self.by_id = {p.product_id: p for p in self.products}
        self._boost: dict[str, float] = {}
        self._weights = self._compute_weights()

    def _compute_weights(self) -> list[float]:
        return [p.popularity * self._boost.get(p.product_id, 1.0) for p in self.products]

    def boost(self, product_ids: list[str], factor: float) -> None:
        """Make some products ``factor`` times more likely to be viewed (a flash sale)."""
        for pid in product_ids:
            self._boost[pid] = factor
        self._weights = self._compute_weights()

    def pick_user(self, rng: random.Random) -> User:
        return rng.choice(self.users)

    def pick_product(self, rng: random.Random, category: str | None = None) -> Product:
        if category is None:
            return rng.choices(self.products, weights=self._weights)[0]
        pool = [p for p in self.products if p.category == category] or self.products
        return rng.choices(pool, weights=[p.popularity for p in pool])[0]
