"""The scoring service (FastAPI): a user's stored scores from the published warehouse, and the
next action scored from events posted to it, with trigger rules on the result.

    GET  /health                    publication time, champions
    GET  /users/{user_id}           stored scores, segment and reasons (pseudonymous id)
    POST /users/lookup              the same, by raw id in the body: {"raw_user_id": "..."}
    POST /score                     {"user_id" | "raw_user_id", "events": [{event_name,
                                    event_ts, event_id?}, ...]} -> the sequence features of the
                                    latest event, the next action, stored scores, triggers

Raw ids only ever travel in request bodies (never in a URL, so no access log holds one); they
are hashed at once with the warehouse's salted pseudonym function and never logged or stored.
Bad input gets a 4xx with a one-line reason; 503 says what the service is waiting for.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from fastapi import BackgroundTasks, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from python_models.common.artifacts import ArtifactIntegrityError
from python_models.common.booster import hold_lightgbm_at_one_thread, release_lightgbm_threads
from python_models.common.registry import RegistryError
from python_models.config import DBT_PROJECT_DIR, Settings, get_settings
from python_models.models import MODELS
from python_models.privacy import pseudonymize
from python_models.service.features import (
    EVENT_COLUMNS,
    SequenceFeatures,
    SequenceSettings,
)
from python_models.service.published import NotPublished, PublishedWarehouse
from python_models.service.triggers import TriggerAudit, TriggerEngine, load_rules

LOG = logging.getLogger("uba.service")
PSEUDONYM = r"^[0-9a-f]{32}$"
MAX_EVENTS_PER_REQUEST = 1000
# Posted events may be stamped slightly ahead of the server's clock, not more.
MAX_CLOCK_SKEW = timedelta(minutes=5)
NEXT_ACTION = "next_action"
SEGMENT_MODEL = "segmentation"
TAXONOMY_PATH = DBT_PROJECT_DIR / "seeds" / "event_taxonomy.csv"


class ServiceUnavailable(RuntimeError):
    """A 503: the service waits for a publication or a champion."""


class NoConsent(PermissionError):
    """The person's consent does not allow this use (docs/privacy.md, "Consent")."""


class BadInput(ValueError):
    """A 422: the request is well-formed JSON but cannot be scored; the message says why."""


class PostedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_name: str = Field(min_length=1, max_length=100)
    event_ts: datetime
    event_id: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("event_ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Naive timestamps are UTC; aware ones are converted to UTC (the warehouse's time)."""
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


class UserRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, pattern=PSEUDONYM)
    raw_user_id: str | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _one_id(self):
        if (self.user_id is None) == (self.raw_user_id is None):
            raise ValueError("give exactly one of user_id (pseudonym) or raw_user_id")
        return self


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw_user_id: str = Field(min_length=1, max_length=256)


class ScoreRequest(UserRef):
    events: list[PostedEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def read_taxonomy() -> frozenset[str]:
    with TAXONOMY_PATH.open() as handle:
        return frozenset(row["event_name"] for row in csv.DictReader(handle))


@dataclass
class Service:
    """Everything a request needs, built once at start-up (`build_service`)."""

    settings: Settings
    published: PublishedWarehouse
    features: SequenceFeatures
    triggers: TriggerEngine
    taxonomy: frozenset[str]

    def pseudonym(self, ref: UserRef | LookupRequest) -> str:
        if getattr(ref, "user_id", None):
            return ref.user_id  # type: ignore[return-value]
        return pseudonymize(ref.raw_user_id, "user", self.settings.pseudonym_salt)  # type: ignore[return-value]

    def user_view(self, user_id: str) -> dict[str, Any] | None:
        scores = self.published.user_scores(user_id)
        if not scores and not self.published.knows_user(user_id):
            return None
        segment = scores.get(SEGMENT_MODEL)
        return {
            "user_id": user_id,
            "segment": None
            if segment is None
            else {
                k: segment.get(k) for k in ("segment_id", "segment_name", "reasons", "as_of_date")
            },
            "scores": scores,
        }

    def _next_action(self, latest: dict[str, Any]) -> dict[str, Any]:
        try:
            version, bundle = self.published.champion(NEXT_ACTION)
        except RegistryError as err:
            raise ServiceUnavailable(str(err)) from None
        row = bundle["model"].predict_row(latest)
        return {"model_name": NEXT_ACTION, "model_version": version, **row}

    def score(self, request: ScoreRequest) -> tuple[dict[str, Any], list]:
        unknown = sorted({e.event_name for e in request.events} - self.taxonomy)
        if unknown:
            raise BadInput(
                f"unknown event names {unknown}: not in the tracking plan "
                "(dbt_project/seeds/event_taxonomy.csv)"
            )
        now = datetime.now(UTC).replace(tzinfo=None)
        if max(e.event_ts for e in request.events) > now + MAX_CLOCK_SKEW:
            raise BadInput("an event_ts lies in the future (beyond 5 minutes of clock skew)")
        user_id = self.pseudonym(request)
        consent = self.published.consent(user_id)
        if not consent.get("analytics", True):
            raise NoConsent("this person has not given analytics consent: not scored")
        posted = pl.DataFrame(
            {
                "user_id": [user_id] * len(request.events),
                "event_id": [
                    e.event_id or _posted_event_id(user_id, e, i)
                    for i, e in enumerate(request.events)
                ],
                "event_name": [e.event_name for e in request.events],
                "event_ts": [e.event_ts for e in request.events],
            },
            schema=EVENT_COLUMNS,
        )
        if posted["event_id"].is_duplicated().any():
            raise BadInput("event_id values repeat within the request")
        problem = self.published.sequence_problem()
        if problem is not None:
            raise ServiceUnavailable(f"posted events cannot be scored: {problem}")
        # The person's timeline: the published history, where a posted event_id replaces the
        # stored event, merged with the posted events in the mart's order. Posted events older
        # than the history (late or out of order) take their place in it: each row is computed
        # over the events before it, as the mart would once they are loaded.
        history = self.published.user_events(user_id)
        posted_ids = posted["event_id"].implode()
        known = history.filter(~pl.col("event_id").is_in(posted_ids))
        timeline = pl.concat([known.cast(EVENT_COLUMNS), posted]).sort("event_ts", "event_id")
        at = timeline["event_id"].is_in(posted_ids).arg_true().to_list()
        latest = timeline.height - 1
        rows = self.features.rows(timeline, at if at[-1] == latest else [*at, latest])
        posted_rows = rows[: len(at)]
        features = rows[-1]  # the latest event's
        scores = self.published.user_scores(user_id)
        scores[NEXT_ACTION] = self._next_action(features)
        if consent.get("marketing", True):
            fired, webhooks = self.triggers.evaluate(user_id, scores, features)
        else:  # triggers act on the person: marketing consent (docs/privacy.md)
            rules = [r for r in self.triggers.rules if r.holds(scores, features)]
            fired = [{"rule": r.name, "status": "no_marketing_consent"} for r in rules]
            webhooks = []
        body = {
            "user_id": user_id,
            "events": {"history": known.height, "posted": posted.height},
            "next_action": scores[NEXT_ACTION],
            "features": features,
            "posted_features": posted_rows,
            "scores": scores,
            "triggers": fired,
        }
        return body, webhooks


def _posted_event_id(user_id: str, event: PostedEvent, index: int) -> str:
    """A stable id for a posted event without one: the same post gives the same ids."""
    text = f"{user_id}|{event.event_ts.isoformat()}|{event.event_name}|{index}"
    return "posted-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _score_fields() -> dict[str, set[str]]:
    return {spec.name: set(spec.score_columns) for spec in MODELS if "user_id" in spec.key_columns}


def build_service(settings: Settings | None = None) -> Service:
    """Read the feature settings (dbt vars), read and check the rules, open the audit, load
    the publication."""
    settings = settings or get_settings()
    features = SequenceFeatures(SequenceSettings.from_project())
    rules = load_rules(settings.service_rules_path, _score_fields(), set(features.columns))
    audit = TriggerAudit(settings.service_dir / "triggers.sqlite3")
    published = PublishedWarehouse(
        settings.published_dir / "warehouse.duckdb",
        MODELS,
        settings.duckdb_memory_limit,
        check_sequences=features.disagreement,
    )
    try:
        published.stats  # noqa: B018 - load the publication now, not on the first request
    except NotPublished:
        pass  # requests get a 503 until one appears
    return Service(
        settings=settings,
        published=published,
        features=features,
        triggers=TriggerEngine(rules, audit),
        taxonomy=read_taxonomy(),
    )


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=status)


@asynccontextmanager
async def _one_lightgbm_thread(app: FastAPI):
    """While the service serves, LightGBM runs on one thread: requests are answered in worker
    threads, each scoring one row, and LightGBM's thread count is one setting of the process
    (python_models.common.booster), so a model trained on more threads would mix counts across
    concurrent requests."""
    hold_lightgbm_at_one_thread()
    try:
        yield
    finally:
        release_lightgbm_threads()


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="uba scoring service",
        description=__doc__.split("\n\n")[0],
        version="1",
        lifespan=_one_lightgbm_thread,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One line per problem, without echoing the input (it may hold a raw id).
        problems = [
            f"{'.'.join(str(p) for p in error['loc'] if p != 'body')}: {error['msg']}"
            for error in exc.errors()
        ]
        return _error(422, "; ".join(problems))

    @app.exception_handler(NotPublished)
    async def _not_published(request: Request, exc: NotPublished) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(ArtifactIntegrityError)
    async def _artifact(request: Request, exc: ArtifactIntegrityError) -> JSONResponse:
        return _error(503, str(exc))

    @app.get("/health")
    def health() -> JSONResponse:
        published_at = service.published.published_at
        if published_at is None:
            return _error(503, f"no published warehouse at {service.published.path}")
        return JSONResponse(
            {
                "status": "ok",
                "published_at": datetime.fromtimestamp(published_at, UTC).isoformat(),
                "champions": service.published.champions(),
                "loaded": service.published.stats,
                "rules": [rule.name for rule in service.triggers.rules],
            }
        )

    def _view(user_id: str) -> JSONResponse:
        view = service.user_view(user_id)
        if view is None:
            return _error(404, f"no user {user_id} in the published warehouse")
        return JSONResponse(_json_safe(view))

    @app.get("/users/{user_id}")
    def user(user_id: str = Path(pattern=PSEUDONYM)) -> JSONResponse:
        return _view(user_id)

    @app.post("/users/lookup")
    def lookup(request: LookupRequest) -> JSONResponse:
        return _view(service.pseudonym(request))

    @app.post("/score")
    def score(request: ScoreRequest, background: BackgroundTasks) -> JSONResponse:
        started = time.perf_counter()
        try:
            body, webhooks = service.score(request)
        except BadInput as err:
            return _error(422, str(err))
        except NoConsent as err:
            return _error(403, str(err))
        for firing in webhooks:
            background.add_task(service.triggers.deliver, firing)
        LOG.info(
            "scored %s from %d posted events in %.1f ms",
            body["user_id"],
            body["events"]["posted"],
            (time.perf_counter() - started) * 1000,
        )
        return JSONResponse(_json_safe(body), background=background)

    return app
