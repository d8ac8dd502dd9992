"""Small frames with planted truth for the impact statistics (experiments, lift, fairness).

The event generator plants an experiment end to end (experiment_events.py); these frames plant
the same kinds of truth directly in the shape of the marts the statistics read, so tests can
run the analysis over many seeds in seconds:

- `planted_experiment`: marts.fct_experiment_exposures + marts.fct_experiment_user_metrics
  rows for one experiment with a known lift on each metric (0 = A/A), optional people exposed
  to two variants and an optional skewed split (sample-ratio mismatch);
- `scored_population`: one scored user per row (score, matured churn outcome, country, device,
  acquisition_channel, holdout group from the real assignment) with an optional planted score
  bias for one group (a fairness disparity) and an optional effect of contacting high-risk
  treatment users (lift by decile).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from python_models.impact.holdout import holdout_group
from python_models.synthetic import personas as P
from python_models.synthetic.experiment_events import CHANNEL_WEIGHTS, CHANNELS

METRICS = (
    ("purchase_conversion_7d", "conversion"),
    ("retention_day_7", "retention"),
    ("revenue_usd_14d", "revenue"),
)


@dataclass(frozen=True)
class PlantedExperiment:
    exposures: pl.DataFrame
    user_metrics: pl.DataFrame
    truth: dict = field(default_factory=dict)  # metric_name -> planted difference


def planted_experiment(
    n_users: int,
    seed: int,
    conversion_lift: float = 0.0,
    retention_lift: float = 0.0,
    revenue_lift: float = 0.0,
    conversion_rate: float = 0.12,
    retention_rate: float = 0.35,
    mean_revenue: float = 20.0,
    split: tuple[float, float] = (0.5, 0.5),
    n_multi_variant: int = 0,
    key: str = "planted_test",
) -> PlantedExperiment:
    """One experiment (variants `control`, `treatment`) with known differences treatment -
    control: conversion and retention rates (absolute) and revenue (USD per user).

    Each user has a latent engagement that drives both the pre-period and the post-period
    values, so CUPED has something to remove."""
    rng = np.random.default_rng([seed, 16])
    shares = np.asarray(split, float) / sum(split)
    treated = rng.random(n_users) < shares[1]
    engagement = rng.beta(2.0, 2.0, n_users) * 2  # mean 1, in (0, 2)
    p_conv = np.clip(conversion_rate * engagement, 0, 1)
    p_ret = np.clip(retention_rate * engagement, 0, 1)
    if np.any(p_conv + conversion_lift > 1) or np.any(p_ret + retention_lift > 1):
        raise ValueError("planted rate + lift exceeds 1; use smaller rates or lifts")
    base_revenue = mean_revenue * engagement
    values = {
        "conversion": (
            rng.random(n_users) < p_conv + conversion_lift * treated,
            rng.random(n_users) < p_conv,
        ),
        "retention": (
            rng.random(n_users) < p_ret + retention_lift * treated,
            rng.binomial(7, p_ret),
        ),
        "revenue": (
            base_revenue * rng.lognormal(-0.125, 0.5, n_users) + revenue_lift * treated,
            base_revenue * rng.lognormal(-0.125, 0.5, n_users),
        ),
    }
    user_id = [f"p{seed}-{i:06d}" for i in range(n_users)]
    variant = np.where(treated, "treatment", "control")
    metric_frames = [
        pl.DataFrame(
            {
                "experiment_key": key,
                "user_id": user_id,
                "metric_name": name,
                "metric_kind": kind,
                "variant": variant,
                "metric_value": values[kind][0].astype(float),
                "pre_period_value": values[kind][1].astype(float),
                "is_mature": True,
            }
        )
        for name, kind in METRICS
    ]
    exposures = pl.DataFrame(
        {
            "experiment_key": key,
            "user_id": user_id,
            "variant": variant,
            "is_multi_variant": False,
        }
    )
    if n_multi_variant:
        multi = pl.DataFrame(
            {
                "experiment_key": key,
                "user_id": [f"p{seed}-multi-{i}" for i in range(n_multi_variant)],
                "variant": "control",
                "is_multi_variant": True,
            }
        )
        exposures = pl.concat([exposures, multi])
    return PlantedExperiment(
        exposures=exposures,
        user_metrics=pl.concat(metric_frames),
        truth={
            "purchase_conversion_7d": conversion_lift,
            "retention_day_7": retention_lift,
            "revenue_usd_14d": revenue_lift,
        },
    )


@dataclass(frozen=True)
class ScoredPopulation:
    frame: pl.DataFrame
    # decile -> planted treatment - holdout difference in churn (only when contact_effect > 0)
    lift_truth: dict[int, float] = field(default_factory=dict)


def scored_population(
    n_users: int,
    seed: int,
    biased_attribute: str | None = None,
    biased_group: str | None = None,
    bias_logit: float = 0.0,
    contact_effect: float = 0.0,
    contacted_deciles: int = 3,
    holdout_share: float = 0.2,
    holdout_key: str = "planted-holdout-key",
) -> ScoredPopulation:
    """Scored users with a matured churn outcome (column `outcome`, boolean).

    The true churn probability ignores every attribute; the score is that probability seen
    through a little noise, plus `bias_logit` (on the logit scale) for users whose
    `biased_attribute` equals `biased_group`: the planted fairness disparity (the model
    over-predicts churn for them, so their false positive rate and selection rate rise).

    With `contact_effect`, treatment users in the top `contacted_deciles` score deciles are
    contacted and their churn probability drops by that much (absolute); holdout users never
    are. `lift_truth` holds the expected treatment - holdout difference per decile."""
    rng = np.random.default_rng([seed, 17])
    logit = rng.normal(-1.0, 1.3, n_users)
    p_true = 1 / (1 + np.exp(-logit))
    country = np.array(P.HOME_COUNTRIES)[
        rng.choice(
            len(P.HOME_COUNTRIES), n_users, p=P.HOME_COUNTRY_WEIGHTS / P.HOME_COUNTRY_WEIGHTS.sum()
        )
    ]
    device = np.array(P.DEVICE_TYPES)[rng.choice(3, n_users, p=[0.5, 0.4, 0.1])]
    channel = np.array(CHANNELS)[
        rng.choice(len(CHANNELS), n_users, p=CHANNEL_WEIGHTS / CHANNEL_WEIGHTS.sum())
    ]
    attributes = {"country": country, "device": device, "acquisition_channel": channel}
    if biased_attribute is not None and biased_attribute not in attributes:
        raise ValueError(f"biased_attribute must be one of {sorted(attributes)}")
    biased = (
        attributes[biased_attribute] == biased_group
        if biased_attribute
        else np.zeros(n_users, bool)
    )
    score_logit = logit + rng.normal(0, 0.3, n_users) + bias_logit * biased
    score = 1 / (1 + np.exp(-score_logit))
    user_id = [f"s{seed}-{i:07d}" for i in range(n_users)]
    group = np.array([holdout_group(u, "user", holdout_key, holdout_share) for u in user_id])

    # Deciles of the score over everyone (10 = highest), as the lift table cuts them.
    order = np.lexsort((np.array(user_id), score))
    decile = np.empty(n_users, int)
    decile[order] = np.arange(n_users) * 10 // n_users + 1
    contactable = decile > 10 - contacted_deciles
    p_if_contacted = np.clip(p_true - contact_effect, 0, 1)
    contacted = contactable & (group == "treatment") & (contact_effect > 0)
    p_outcome = np.where(contacted, p_if_contacted, p_true)
    outcome = rng.random(n_users) < p_outcome
    lift_truth = {}
    if contact_effect > 0:
        for d in range(1, 11):
            cell = decile == d
            lift_truth[d] = (
                float(np.mean(p_if_contacted[cell] - p_true[cell]))
                if d > 10 - contacted_deciles
                else 0.0
            )
    frame = pl.DataFrame(
        {
            "model_name": "churn",
            "model_version": f"planted-{seed}",
            "user_id": user_id,
            "score": score,
            "holdout_group": group,
            "outcome": outcome,
            **attributes,
        }
    )
    return ScoredPopulation(frame, lift_truth)
