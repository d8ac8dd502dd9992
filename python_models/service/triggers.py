"""Trigger rules: a condition on a score or a feature, an action, a per-user rate limit, and an
audit table of what fired.

Rules live in YAML (UBA_SERVICE_RULES; default python_models/service/rules.yml):

    rules:
      - name: likely_support_ticket              # unique, [a-z0-9_]
        when: {model: next_action, field: next_action_1, op: "==", value: support_ticket_opened}
        action: {type: webhook, url: "http://127.0.0.1:9009/hooks/support"}
        rate_limit: {max_fires: 1, per_seconds: 3600}   # per user; default 1 per hour
      - name: long_session
        when: {feature: session_event_number, op: ">=", value: 25}
        action: {type: log}                      # a JSON line on the service log

`when` reads a field of a model's score row (`model`, `field`: the scores just computed for
posted events, else the user's stored row) or a feature of the user's latest event (`feature`);
`op` is one of == != > >= < <= in. Webhooks go to loopback addresses only (the service makes no
other outbound calls); they are sent after the response, and their outcome is written back to
the audit row.

The audit is a SQLite file of the service's own (UBA_SERVICE_DIR/triggers.sqlite3), not the
warehouse: the published copy is read-only and replaced by each publication, and DuckDB lets one
process write a file while no other can open it, whereas SQLite takes many small transactional
writes and lets analysts read the audit (WAL) while the service runs. Rate limits count the
audit's rows, so they hold across restarts. Only pseudonymous user ids are stored.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

LOG = logging.getLogger("uba.service.triggers")
OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "in": lambda a, b: a in b,
}
ACTIONS = ("webhook", "log")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
WEBHOOK_TIMEOUT_SECONDS = 2.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A loopback webhook must not bounce the payload elsewhere."""

    def redirect_request(self, *args, **kwargs):
        return None


# No proxies (loopback only) and no redirects.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    model: str | None  # condition on this model's score row ...
    field: str | None
    feature: str | None  # ... or on this feature of the latest event
    op: str
    value: Any
    action: str
    url: str | None
    max_fires: int
    per_seconds: int

    def reads(self, scores: dict[str, dict[str, Any]], features: dict[str, Any]) -> Any:
        if self.feature is not None:
            return features.get(self.feature)
        row = scores.get(self.model or "")
        return None if row is None else row.get(self.field or "")

    def holds(self, scores: dict[str, dict[str, Any]], features: dict[str, Any]) -> bool:
        value = self.reads(scores, features)
        if value is None:
            return False
        try:
            return bool(OPS[self.op](value, self.value))
        except TypeError:  # e.g. a text compared with a number: the condition does not hold
            return False

    def describe(self) -> str:
        subject = f"feature {self.feature}" if self.feature else f"{self.model}.{self.field}"
        return f"{subject} {self.op} {self.value!r}"


def _loopback(url: str, where: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RuleError(f"{where}: webhook url must be http(s)://host[:port]/path, got {url!r}")
    host = parsed.hostname
    try:
        is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise RuleError(f"{where}: webhooks go to loopback addresses only, got host {host!r}")
    return url


def parse_rules(document: Any, score_fields: dict[str, set[str]], features: set[str]) -> list[Rule]:
    """Rules from the parsed YAML, each checked against the known models' score fields and the
    features; any problem is a RuleError naming the rule."""
    if not isinstance(document, dict) or not isinstance(document.get("rules", []), list):
        raise RuleError("the rules file must hold a mapping with a list under 'rules'")
    rules, names = [], set()
    for index, raw in enumerate(document.get("rules") or []):
        where = f"rule {index + 1}"
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: expected a mapping")
        name = str(raw.get("name", ""))
        if not _NAME.match(name) or name in names:
            raise RuleError(f"{where}: name {name!r} must be unique lowercase letters, digits, _")
        where, names = f"rule {name!r}", names | {name}
        unknown = sorted(set(raw) - {"name", "when", "action", "rate_limit"})
        if unknown:
            raise RuleError(f"{where}: unknown keys {unknown}")
        when = raw.get("when") or {}
        if not isinstance(when, dict) or set(when) - {"model", "field", "feature", "op", "value"}:
            raise RuleError(f"{where}: 'when' takes model+field or feature, op and value")
        op = when.get("op")
        if op not in OPS:
            raise RuleError(f"{where}: op must be one of {list(OPS)}, got {op!r}")
        if "value" not in when:
            raise RuleError(f"{where}: 'when' needs a value to compare with")
        if op == "in" and not isinstance(when["value"], list):
            raise RuleError(f"{where}: op 'in' needs a list value")
        model, field, feature = when.get("model"), when.get("field"), when.get("feature")
        if feature is not None:
            if model is not None or field is not None:
                raise RuleError(f"{where}: give either feature or model+field, not both")
            if feature not in features:
                raise RuleError(f"{where}: unknown feature {feature!r}")
        elif model not in score_fields:
            raise RuleError(f"{where}: unknown model {model!r}; known: {sorted(score_fields)}")
        elif field not in score_fields[model]:
            raise RuleError(
                f"{where}: {model} has no field {field!r}; known: {sorted(score_fields[model])}"
            )
        action = raw.get("action") or {}
        kind = action.get("type") if isinstance(action, dict) else None
        if kind not in ACTIONS:
            raise RuleError(f"{where}: action type must be one of {list(ACTIONS)}")
        url = _loopback(str(action.get("url", "")), where) if kind == "webhook" else None
        limit = raw.get("rate_limit") or {}
        max_fires, per_seconds = limit.get("max_fires", 1), limit.get("per_seconds", 3600)
        if (
            not (isinstance(max_fires, int) and isinstance(per_seconds, int))
            or min(max_fires, per_seconds) < 1
        ):
            raise RuleError(f"{where}: rate_limit max_fires and per_seconds must be integers >= 1")
        rules.append(
            Rule(name, model, field, feature, op, when["value"], kind, url, max_fires, per_seconds)
        )
    return rules


def load_rules(path: Path, score_fields: dict[str, set[str]], features: set[str]) -> list[Rule]:
    if not path.exists():
        raise RuleError(f"trigger rules file {path} not found (UBA_SERVICE_RULES)")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RuleError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse_rules(document, score_fields, features)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class TriggerAudit:
    """The fired-triggers table (SQLite) and the rate limits read from it."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        # In WAL mode NORMAL syncs at checkpoints, not on every fired trigger: a crash of the
        # service loses nothing; a power cut may lose the last few audit rows. The default
        # (FULL) waits for the disk on every fired trigger, inside the request that fired it.
        self._db.execute("pragma synchronous=normal")
        self._db.execute(
            """create table if not exists fired_triggers (
                trigger_id integer primary key autoincrement,
                fired_at text not null,
                rule_name text not null,
                user_id text not null,
                action text not null,
                outcome text not null,
                detail text not null default '',
                observed_value text
            )"""
        )
        self._db.execute(
            "create index if not exists fired_triggers_limit "
            "on fired_triggers (rule_name, user_id, fired_at)"
        )

    def try_fire(self, rule: Rule, user_id: str, observed: Any) -> int | None:
        """Record a firing unless the user's rate limit for the rule is used up; the new row's
        id, or None when rate-limited."""
        now = _now()
        since = (now - timedelta(seconds=rule.per_seconds)).isoformat(sep=" ")
        with self._lock:
            fired = self._db.execute(
                "select count(*) from fired_triggers "
                "where rule_name = ? and user_id = ? and fired_at > ?",
                [rule.name, user_id, since],
            ).fetchone()[0]
            if fired >= rule.max_fires:
                return None
            outcome = "queued" if rule.action == "webhook" else "logged"
            cursor = self._db.execute(
                "insert into fired_triggers "
                "(fired_at, rule_name, user_id, action, outcome, observed_value) "
                "values (?, ?, ?, ?, ?, ?)",
                [
                    now.isoformat(sep=" "),
                    rule.name,
                    user_id,
                    rule.action,
                    outcome,
                    json.dumps(observed, default=str),
                ],
            )
            return int(cursor.lastrowid)

    def settle(self, trigger_id: int, outcome: str, detail: str = "") -> None:
        with self._lock:
            self._db.execute(
                "update fired_triggers set outcome = ?, detail = ? where trigger_id = ?",
                [outcome, detail[:500], trigger_id],
            )

    def rows(self, user_id: str | None = None) -> list[dict[str, Any]]:
        where, args = ("where user_id = ?", [user_id]) if user_id else ("", [])
        with self._lock:
            cursor = self._db.execute(
                f"select * from fired_triggers {where} order by trigger_id", args
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Firing:
    rule: Rule
    trigger_id: int
    payload: dict[str, Any]


class TriggerEngine:
    def __init__(self, rules: list[Rule], audit: TriggerAudit):
        self.rules = rules
        self.audit = audit

    def evaluate(
        self, user_id: str, scores: dict[str, dict[str, Any]], features: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[Firing]]:
        """(what to tell the caller, the webhooks to send after the response)."""
        report, webhooks = [], []
        for rule in self.rules:
            if not rule.holds(scores, features):
                continue
            observed = rule.reads(scores, features)
            trigger_id = self.audit.try_fire(rule, user_id, observed)
            if trigger_id is None:
                report.append({"rule": rule.name, "status": "rate_limited"})
                continue
            payload = {
                "rule": rule.name,
                "user_id": user_id,
                "condition": rule.describe(),
                "observed": observed,
                "trigger_id": trigger_id,
            }
            if rule.action == "log":
                LOG.warning("trigger %s", json.dumps(payload, default=str))
                report.append({"rule": rule.name, "status": "logged", "trigger_id": trigger_id})
            else:
                webhooks.append(Firing(rule, trigger_id, payload))
                report.append({"rule": rule.name, "status": "queued", "trigger_id": trigger_id})
        return report, webhooks

    def deliver(self, firing: Firing) -> None:
        """POST the payload to the rule's loopback URL; the outcome goes to the audit row."""
        body = json.dumps(firing.payload, default=str).encode()
        request = urllib.request.Request(
            firing.rule.url or "", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                self.audit.settle(firing.trigger_id, "delivered", f"HTTP {response.status}")
        except (urllib.error.URLError, OSError, ValueError) as err:
            self.audit.settle(firing.trigger_id, "failed", str(err))
            LOG.warning("trigger %s: webhook failed: %s", firing.rule.name, err)
