"""Behavioural parameters of the synthetic population: personas, vocabularies, distributions.

Everything the generator plants is declared here, so a test or a reader can see what "truth"
the data should reveal (event mixes, intensities, spend, churn odds, hours of activity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from python_models.config import DBT_PROJECT_DIR

TAXONOMY_PATH = DBT_PROJECT_DIR / "seeds" / "event_taxonomy.csv"

# Order matters: event codes in the generator are indexes into this tuple.
EVENT_NAMES: tuple[str, ...] = (
    "page_view",
    "click",
    "search",
    "signup",
    "login",
    "logout",
    "password_reset",
    "settings_changed",
    "feature_use",
    "invite_sent",
    "support_ticket_opened",
    "add_to_cart",
    "checkout_started",
    "purchase",
    "plan_upgraded",
    "plan_downgraded",
)
EV = {name: code for code, name in enumerate(EVENT_NAMES)}

# Pages: a fixed page per event where the event implies one, otherwise a random browse page.
BROWSE_PAGES: tuple[str, ...] = (
    "/",
    "/home",
    "/pricing",
    "/blog",
    "/docs",
    "/products",
    "/products/item",
    "/deals",
    "/search",
    "/account",
    "/help",
    "/about",
)
FIXED_PAGE: dict[str, str] = {
    "signup": "/signup",
    "login": "/login",
    "logout": "/logout",
    "password_reset": "/login/reset",
    "settings_changed": "/settings",
    "feature_use": "/app",
    "invite_sent": "/team",
    "support_ticket_opened": "/support",
    "add_to_cart": "/products/item",
    "checkout_started": "/checkout",
    "purchase": "/checkout/complete",
    "plan_upgraded": "/billing",
    "plan_downgraded": "/billing",
    "search": "/search",
}
FEATURES: tuple[str, ...] = (
    "dashboards",
    "reports",
    "export",
    "api",
    "automations",
    "integrations",
)
DEVICE_TYPES: tuple[str, ...] = ("desktop", "mobile", "tablet")
PLANS: tuple[str, ...] = ("free", "pro", "team")
HOME_COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "BR", "IN", "CA", "ES", "NL", "JP")
HOME_COUNTRY_WEIGHTS = np.array([0.34, 0.1, 0.1, 0.08, 0.08, 0.1, 0.06, 0.05, 0.05, 0.04])
# Disjoint from the home countries, so an account takeover is always "from a new country".
ATTACKER_COUNTRIES: tuple[str, ...] = ("RO", "VN", "NG", "UA", "ID", "TR")

# Timestamp offsets used for a small share of rows (same instant, written in local time).
OFFSET_MINUTES = np.array([0, 120, -300, 330, 60], dtype=np.int64)
OFFSET_SUFFIX: tuple[str, ...] = ("Z", "+02:00", "-05:00", "+05:30", "+01:00")


@dataclass(frozen=True)
class Persona:
    name: str
    weight: float  # share of identified users
    sessions_per_day: float  # mean session rate while fully engaged
    events_per_session: float  # mean number of ordinary events in a session
    gap_seconds: float  # mean gap between events in a session
    purchase_per_session: float  # chance a session ends in cart -> checkout -> purchase
    order_value_usd: float  # median of the per-user expected order value
    churn_probability: float  # among users whose history is long enough to observe churn
    mix: dict[str, float]  # relative weights of ordinary in-session events
    peak_hours_utc: tuple[float, ...]  # centres of the diurnal activity bumps
    device_weights: tuple[float, float, float]  # desktop, mobile, tablet for the main device
    plan_weights: tuple[float, float, float]  # free, pro, team


PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="power_user",
        weight=0.15,
        sessions_per_day=0.7,
        events_per_session=7.0,
        gap_seconds=45,
        purchase_per_session=0.02,
        order_value_usd=80,
        churn_probability=0.15,
        mix={
            "feature_use": 40,
            "page_view": 18,
            "click": 18,
            "invite_sent": 8,
            "search": 6,
            "settings_changed": 3,
            "logout": 3,
            "plan_upgraded": 1,
            "support_ticket_opened": 1,
        },
        peak_hours_utc=(10, 15),
        device_weights=(0.8, 0.15, 0.05),
        plan_weights=(0.2, 0.45, 0.35),
    ),
    Persona(
        name="casual_browser",
        weight=0.30,
        sessions_per_day=0.15,
        events_per_session=3.0,
        gap_seconds=70,
        purchase_per_session=0.01,
        order_value_usd=30,
        churn_probability=0.45,
        mix={"page_view": 60, "click": 28, "search": 8, "logout": 3, "settings_changed": 1},
        peak_hours_utc=(20,),
        device_weights=(0.3, 0.6, 0.1),
        plan_weights=(0.9, 0.1, 0.0),
    ),
    Persona(
        name="shopper",
        weight=0.18,
        sessions_per_day=0.3,
        events_per_session=5.0,
        gap_seconds=50,
        purchase_per_session=0.30,
        order_value_usd=120,
        churn_probability=0.25,
        mix={
            "page_view": 35,
            "add_to_cart": 25,
            "click": 15,
            "search": 12,
            "checkout_started": 8,
            "logout": 3,
            "plan_downgraded": 2,
        },
        peak_hours_utc=(12, 20),
        device_weights=(0.4, 0.5, 0.1),
        plan_weights=(0.6, 0.35, 0.05),
    ),
    Persona(
        name="deal_hunter",
        weight=0.19,
        sessions_per_day=0.4,
        events_per_session=5.0,
        gap_seconds=25,
        purchase_per_session=0.05,
        order_value_usd=15,
        churn_probability=0.30,
        mix={
            "search": 38,
            "page_view": 25,
            "add_to_cart": 18,
            "click": 15,
            "checkout_started": 3,
            "logout": 1,
        },
        peak_hours_utc=(12, 21),
        device_weights=(0.3, 0.65, 0.05),
        plan_weights=(0.95, 0.05, 0.0),
    ),
    Persona(
        name="struggler",
        weight=0.18,
        sessions_per_day=0.35,
        events_per_session=2.5,
        gap_seconds=15,
        purchase_per_session=0.01,
        order_value_usd=40,
        churn_probability=0.40,
        mix={
            "page_view": 25,
            "support_ticket_opened": 22,
            "password_reset": 18,
            "login": 10,
            "settings_changed": 10,
            "click": 10,
            "logout": 3,
            "plan_downgraded": 2,
        },
        peak_hours_utc=(9, 14),
        device_weights=(0.6, 0.3, 0.1),
        plan_weights=(0.7, 0.25, 0.05),
    ),
)
PERSONA_NAMES: tuple[str, ...] = tuple(p.name for p in PERSONAS)

# Anonymous traffic: visitors who never identify, and identified users before their signup.
ANONYMOUS_MIX = {"page_view": 62, "click": 28, "search": 10}
ANONYMOUS_EVENTS_PER_SESSION = 2.5
ANONYMOUS_GAP_SECONDS = 40
VISITOR_SHARE = 0.08  # of all generated people
VISITOR_SESSIONS_PER_DAY = 0.25
VISITOR_WINDOW_DAYS = 14
VISITOR_PEAK_HOURS = (14, 20)

# Account-takeover burst: what the attacker does after logging in.
ATO_MIX = {
    "settings_changed": 25,
    "page_view": 25,
    "click": 20,
    "feature_use": 10,
    "search": 10,
    "invite_sent": 10,
}
ATO_GAP_SECONDS = 6.0
ATO_PURCHASE_PROBABILITY = 0.4

# Identity and lifecycle.
PREEXISTING_SHARE = 0.10  # identified users who signed up before the period
DEVICE_COUNT_WEIGHTS = np.array([0.5, 0.35, 0.15])  # 1, 2, 3 devices
SHARED_DEVICE_SHARE = 0.03  # of multi-device users whose extra device belongs to someone else
LOGIN_PROBABILITY = 0.12  # an ordinary session starts with a login
CHURN_SCALE = 1.3  # lifts churn odds so ~30% of all users churn (late sign-ups cannot)
CHURN_MIN_HISTORY_DAYS = 35
CHURN_MIN_DAYS_BEFORE_END = 14
DECAY_DAYS = (14, 28)  # engagement declines over this many days before churn
DECAY_FLOOR = 0.1  # session-rate multiplier just before the churn date
RATE_NOISE_SIGMA = 0.35
SPEND_NOISE_SIGMA = 0.4
ORDER_VALUE_SIGMA = 0.35
MAX_GAP_SECONDS = 20 * 60  # stays well under the 30-minute session timeout


def mix_cdf(mix: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(event codes, cumulative probabilities) for inverse-CDF sampling."""
    codes = np.array([EV[name] for name in mix], dtype=np.int8)
    weights = np.array(list(mix.values()), dtype=float)
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return codes, cdf


def hour_cdf(peaks: tuple[float, ...]) -> np.ndarray:
    """Cumulative distribution over the 24 UTC hours: a floor plus a bump per peak."""
    hours = np.arange(24)
    weights = np.full(24, 0.15)
    for peak in peaks:
        distance = np.minimum(np.abs(hours - peak), 24 - np.abs(hours - peak))
        weights += np.exp(-0.5 * (distance / 2.0) ** 2)
    # Keep the small hours quiet so an account takeover at 01:00-05:00 stands out.
    weights[1:5] *= 0.3
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def check_taxonomy() -> None:
    """Fail loudly if the tracking plan and the generator disagree on event names."""
    from python_models.ingest.tracking_plan import read_tracking_plan

    known = set(read_tracking_plan(TAXONOMY_PATH).event_names)
    missing = set(EVENT_NAMES) - known
    if missing:
        raise ValueError(f"generator emits events absent from {TAXONOMY_PATH}: {sorted(missing)}")
