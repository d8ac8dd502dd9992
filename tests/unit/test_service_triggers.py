"""Trigger rules of the scoring service: checked when read, evaluated on scores and features,
rate-limited per user through the SQLite audit (python_models/service/triggers.py)."""

from __future__ import annotations

import pytest
import yaml

from python_models.config import REPO_ROOT
from python_models.service.triggers import (
    RuleError,
    TriggerAudit,
    TriggerEngine,
    load_rules,
    parse_rules,
)

FIELDS = {"churn": {"score", "predicted_label"}, "next_action": {"next_action_1", "score"}}
FEATURES = {"session_event_number", "event_name"}


def _rules(text: str):
    return parse_rules(yaml.safe_load(text), FIELDS, FEATURES)


def test_the_shipped_rules_file_is_valid():
    from python_models.models import MODELS

    fields = {s.name: set(s.score_columns) for s in MODELS if "user_id" in s.key_columns}
    rules = load_rules(REPO_ROOT / "python_models/service/rules.yml", fields, FEATURES)
    assert rules and all(rule.action in ("log", "webhook") for rule in rules)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules: [{name: a, when: {model: nope, field: score, op: '>', value: 1}, "
            "action: {type: log}}]",
            "unknown model 'nope'",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: nope, op: '>', value: 1}, "
            "action: {type: log}}]",
            "churn has no field 'nope'",
        ),
        (
            "rules: [{name: a, when: {feature: nope, op: '>', value: 1}, action: {type: log}}]",
            "unknown feature 'nope'",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '~', value: 1}, "
            "action: {type: log}}]",
            "op must be one of",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '>', value: 1}, "
            "action: {type: webhook, url: 'http://example.com/hook'}}]",
            "loopback addresses only",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '>', value: 1}, "
            "action: {type: email}}]",
            "action type",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '>', value: 1}, "
            "action: {type: log}}, {name: a, when: {model: churn, field: score, op: '>', "
            "value: 1}, action: {type: log}}]",
            "must be unique",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '>', value: 1}, "
            "action: {type: log}, rate_limit: {max_fires: 0}}]",
            "rate_limit",
        ),
        (
            "rules: [{name: a, when: {model: churn, field: score, op: '>'}, action: {type: log}}]",
            "needs a value",
        ),
    ],
)
def test_bad_rules_are_refused_with_the_rule_named(text, message):
    with pytest.raises(RuleError, match=message):
        _rules(text)


def test_conditions_on_scores_and_features():
    rules = _rules(
        """
        rules:
          - {name: risky, when: {model: churn, field: score, op: ">=", value: 0.7},
             action: {type: log}}
          - {name: cart, when: {model: next_action, field: next_action_1, op: in,
             value: [checkout_started, purchase]}, action: {type: log}}
          - {name: long, when: {feature: session_event_number, op: ">", value: 20},
             action: {type: webhook, url: "http://127.0.0.1:9/hook"}}
        """
    )
    risky, cart, long = rules
    scores = {"churn": {"score": 0.9}, "next_action": {"next_action_1": "purchase"}}
    assert risky.holds(scores, {}) and cart.holds(scores, {})
    assert not risky.holds({"churn": {"score": 0.2}}, {})
    assert not risky.holds({}, {})  # no churn score for the user: the condition does not hold
    assert not risky.holds({"churn": {"score": "high"}}, {})  # type mismatch: does not hold
    assert long.holds({}, {"session_event_number": 21}) and long.url == "http://127.0.0.1:9/hook"


def test_rate_limit_per_user_and_rule_is_kept_in_the_audit(tmp_path):
    rules = _rules(
        """
        rules:
          - {name: risky, when: {model: churn, field: score, op: ">=", value: 0.7},
             action: {type: log}, rate_limit: {max_fires: 2, per_seconds: 3600}}
        """
    )
    audit = TriggerAudit(tmp_path / "triggers.sqlite3")
    engine = TriggerEngine(rules, audit)
    scores = {"churn": {"score": 0.9}}
    statuses = [engine.evaluate("u1", scores, {})[0][0]["status"] for _ in range(3)]
    assert statuses == ["logged", "logged", "rate_limited"]
    assert engine.evaluate("u2", scores, {})[0][0]["status"] == "logged"  # per user
    audit.close()
    # A restarted service reads the same audit: the limit still holds.
    again = TriggerEngine(rules, TriggerAudit(tmp_path / "triggers.sqlite3"))
    assert again.evaluate("u1", scores, {})[0][0]["status"] == "rate_limited"
    rows = again.audit.rows("u1")
    assert [r["outcome"] for r in rows] == ["logged", "logged"]
    assert rows[0]["rule_name"] == "risky" and rows[0]["observed_value"] == "0.9"


def test_a_failed_webhook_is_audited_as_failed(tmp_path):
    rules = _rules(
        """
        rules:
          - {name: hook, when: {model: churn, field: score, op: ">=", value: 0.5},
             action: {type: webhook, url: "http://127.0.0.1:1/hook"}}
        """
    )
    engine = TriggerEngine(rules, TriggerAudit(tmp_path / "t.sqlite3"))
    report, webhooks = engine.evaluate("u1", {"churn": {"score": 0.6}}, {})
    assert report[0]["status"] == "queued" and len(webhooks) == 1
    engine.deliver(webhooks[0])  # port 1: nothing listens
    (row,) = engine.audit.rows("u1")
    assert row["outcome"] == "failed" and row["detail"]
