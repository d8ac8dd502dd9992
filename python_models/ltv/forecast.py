"""Customer lifetime value from transactions, split by time only.

Evaluation (`evaluate_transactions`): purchases before the calibration end are all any model sees;
the holdout is the next `horizon_days`. Every customer who bought before the cut is forecast:
purchases (purchase days), revenue and P(alive), each with an interval. Models:

- `zero`: nobody buys again.
- `own_rate`: the customer's own repeat-purchase rate since the first purchase, times the horizon;
  revenue = that x the customer's mean purchase value.
- `bgnbd_gg_mean`: BG/NBD + Gamma-Gamma conditional expectations (the textbook forecast).
- `bgnbd_gg_median`: the same fitted models' posterior-predictive median. Per-customer MAE is
  minimised by the conditional median, not the mean, so this is the fair BG/NBD baseline for MAE.
- `lightgbm_l1` (the candidate): LightGBM with the L1 loss (its optimum is the conditional
  median) boosted from the BG/NBD median, on RFM and BG/NBD features. It learns on an earlier pair
  of cuts that ends where the evaluation cut begins, with early stopping on a seeded 20% of that
  pair's customers; its 80% interval comes from two quantile models boosted from the BG/NBD
  quantiles the same way. If the history before the cut is shorter than twice the horizon, the
  earlier pair's window is half the history and horizon-dependent inputs are computed for it.

The candidate is served only if it beats every baseline on holdout MAE of both purchases and
revenue by `champion_margin` (1%); otherwise the best baseline (lowest mean MAE relative to
`zero` over the two targets) is served, and the evaluation table says which and why.

Forward (`forecast_transactions`): the served model forecasts the next `horizon_days` after the
latest purchase day for every customer, no matured target needed. Both functions take a polars
frame of (user_id or customer_id, purchased_at, revenue_usd or revenue) and return frames, so a
score table, a Dagster asset or the CLI is a thin call.

Intervals: for BG/NBD, draws from each customer's exact posterior (alive or not, purchase rate,
dropout probability, spend scale) under parameter sets refitted on bootstrap resamples of the
customers, so they include parameter uncertainty; P(alive)'s interval is its spread over those
refits. `zero` has [0, 0]; `own_rate` uses Poisson quantiles of its rate.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from python_models.common.booster import StoredBooster
from python_models.common.features import to_matrix
from python_models.ltv import btyd
from python_models.ltv.params import LtvParams
from python_models.ltv.transactions import (
    as_date,
    customer_summary,
    purchase_days,
    validate_transactions,
    window_actuals,
)

BASELINES = ("zero", "own_rate", "bgnbd_gg_mean", "bgnbd_gg_median")
CANDIDATE = "lightgbm_l1"
TARGETS = ("purchases", "revenue_usd")
FORECAST_COLUMNS = [f"{t}{s}" for t in TARGETS for s in ("", "_low", "_high")]
# What the forward forecast says of each customer's past (for reasons in words): purchase days
# before the cut, days from the last one to the cut, mean spend per purchase day.
HISTORY_COLUMNS = ("purchase_days", "days_since_last_purchase", "mean_purchase_usd")
ML_FEATURES = [
    "frequency",
    "recency",
    "age",
    "days_since_last",
    "repeat_value",
    "total_revenue",
    "mean_value",
    "last_value",
    "first_value",
    "purchases_30d",
    "purchases_90d",
    "purchases_180d",
    "revenue_90d",
    "p_alive",
    "p_no_purchase",
    "expected_purchases",
    "expected_value",
    "expected_revenue_usd",
    "bg_purchases",
    "bg_purchases_high",
    "bg_revenue_usd",
    "bg_revenue_usd_high",
]


@dataclass
class TransactionLtvResult:
    calibration_end: date  # first holdout day; calibration is every purchase before it
    horizon_days: int
    evaluation: pl.DataFrame  # one row per model and target
    served_model: str
    decision: str  # why that model is served, in words
    predictions: pl.DataFrame  # one row per customer and model, with the holdout actuals
    params: dict[str, Any]
    customers: int
    new_customers_in_holdout: int  # first purchase inside the holdout: no history to forecast
    training_cut: date | None  # the earlier pair's cut the candidate learned at

    def describe(self) -> str:
        """Where the split falls, in one line (printed above the evaluation table)."""
        holdout_end = self.calibration_end + timedelta(days=self.horizon_days - 1)
        learned = f"; {CANDIDATE} learned at {self.training_cut}" if self.training_cut else ""
        return (
            f"{self.customers:,} customers with purchases before {self.calibration_end}; "
            f"holdout {self.calibration_end}..{holdout_end} ({self.horizon_days} days; "
            f"{self.new_customers_in_holdout:,} customers first bought inside it){learned}"
        )


# --- BG/NBD + Gamma-Gamma state at a cut -------------------------------------------------------


@dataclass(frozen=True)
class BtydFit:
    """BG/NBD + Gamma-Gamma parameters fitted at one cut: the point fit, the bootstrap refits
    (parameter uncertainty) and the draw generator's state after the bootstrap, so forecasts
    from a stored fit draw what a refit's would."""

    bgnbd: btyd.BgNbdParams
    gamma_gamma: btyd.GammaGammaParams
    bgnbd_sets: list[btyd.BgNbdParams]  # bootstrap refits
    gamma_gamma_sets: list[btyd.GammaGammaParams]
    draw_state: dict[str, Any]  # numpy bit generator state the posterior draws start from


def _summary_arrays(summary: pl.DataFrame) -> list[np.ndarray]:
    return [summary[c].to_numpy() for c in ("frequency", "recency", "age", "repeat_value")]


def _customers_at(days: pl.DataFrame, cut: date, settings: LtvParams) -> pl.DataFrame:
    """The RFM summary at `cut`, refused when too few customers bought before it to fit."""
    summary = customer_summary(days, cut)
    if summary.height < settings.min_customers:
        raise ValueError(
            f"only {summary.height} customers bought before {cut}; need {settings.min_customers}"
        )
    return summary


def fit_btyd(summary: pl.DataFrame, settings: LtvParams, seed: int) -> BtydFit:
    """Maximum likelihood on `summary` plus `bootstrap_fits` refits on resampled customers."""
    x, t_x, T, mbar = _summary_arrays(summary)
    rng = np.random.default_rng(seed)
    customers, spenders = btyd.group_customers(x, t_x, T), btyd.group_spenders(x, mbar)
    bgnbd = btyd.fit_bgnbd(x, t_x, T, grouped=customers)
    gamma_gamma = btyd.fit_gamma_gamma(x, mbar, grouped=spenders)
    bg_sets, gg_sets = [], []
    for _ in range(settings.bootstrap_fits):
        weights = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x)))
        bg_sets.append(btyd.fit_bgnbd(x, t_x, T, weights, start=bgnbd, grouped=customers))
        gg_sets.append(btyd.fit_gamma_gamma(x, mbar, weights, start=gamma_gamma, grouped=spenders))
    return BtydFit(bgnbd, gamma_gamma, bg_sets, gg_sets, rng.bit_generator.state)


def btyd_state(
    summary: pl.DataFrame, fit: BtydFit, horizon: int, settings: LtvParams
) -> pl.DataFrame:
    """Per customer of `summary`, under `fit`: the RFM summary, BG/NBD + GG expectations,
    P(alive) with its interval, and posterior-predictive quantiles of purchases and revenue
    over the horizon. No fitting: the fit may come from an earlier cut."""
    rng = np.random.default_rng()
    rng.bit_generator.state = fit.draw_state
    x, t_x, T, mbar = _summary_arrays(summary)
    expected = btyd.expected_purchases(fit.bgnbd, x, t_x, T, horizon)
    value = btyd.expected_purchase_value(fit.gamma_gamma, x, mbar)
    alive_sets = np.stack([btyd.probability_alive(p, x, t_x, T) for p in fit.bgnbd_sets])
    # P(no purchase) is exact: it pins quantiles at 0 that a finite simulation would blur.
    quiet = np.mean(
        [btyd.probability_no_purchase(p, x, t_x, T, horizon) for p in fit.bgnbd_sets], axis=0
    )
    q = np.array(settings.quantiles)
    purchases_q = np.zeros((len(x), 3))
    revenue_q = np.zeros((len(x), 3))
    # A customer whose P(no purchase) reaches the top quantile has every quantile pinned at 0
    # below: only the others are simulated. Customers with the same (x, t_x, T, mbar) have
    # the same posterior (those with no repeat purchase differ only by T): each distinct input
    # is drawn once and its quantiles shared, so equal inputs get equal intervals.
    simulated = np.flatnonzero(quiet < q.max())
    inputs, inverse = np.unique(
        np.column_stack([x, t_x, T, mbar])[simulated], axis=0, return_inverse=True
    )
    distinct_purchases, distinct_revenue = np.empty((2, len(inputs), 3))
    starts = range(0, len(inputs), settings.simulation_chunk)
    # A generator per chunk, seeded from the fit's stream: the draws are the same however
    # many threads simulate the chunks. numpy's samplers release the GIL: a 10M day's
    # forecast took 2.5 s with one thread, 1.8 s with two.
    seeds = rng.integers(np.iinfo(np.int64).max, size=len(starts))

    def simulate(start: int, seed: int) -> None:
        part = slice(start, start + settings.simulation_chunk)
        draws = btyd.sample_horizon(
            fit.bgnbd_sets,
            fit.gamma_gamma_sets,
            *inputs[part].T,
            horizon,
            settings.draws,
            np.random.default_rng(seed),
        )
        distinct_purchases[part] = np.quantile(draws.purchases, q, axis=1, method="inverted_cdf").T
        distinct_revenue[part] = np.quantile(draws.revenue, q, axis=1).T

    with ThreadPoolExecutor(max_workers=settings.draw_threads) as pool:
        list(pool.map(simulate, starts, seeds))
    purchases_q[simulated] = distinct_purchases[inverse.reshape(-1)]
    revenue_q[simulated] = distinct_revenue[inverse.reshape(-1)]
    at_zero = quiet[:, None] >= q[None, :]
    purchases_q[at_zero] = 0.0
    revenue_q[at_zero] = 0.0
    tail = (1.0 - settings.interval) / 2
    alive = btyd.probability_alive(fit.bgnbd, x, t_x, T)
    return summary.with_columns(
        (pl.col("age") - pl.col("recency")).alias("days_since_last"),
        pl.Series("p_alive", alive),
        # A percentile interval need not hold the full-data estimate; widen it to do so.
        pl.Series("p_alive_low", np.minimum(np.quantile(alive_sets, tail, axis=0), alive)),
        pl.Series("p_alive_high", np.maximum(np.quantile(alive_sets, 1 - tail, axis=0), alive)),
        pl.Series("p_no_purchase", quiet),
        pl.Series("expected_purchases", expected),
        pl.Series("expected_value", value),
        pl.Series("expected_revenue_usd", expected * value),
        *[
            pl.Series(f"bg_{name}{suffix}", values[:, i])
            for name, values in (("purchases", purchases_q), ("revenue_usd", revenue_q))
            for i, suffix in enumerate(("_low", "", "_high"))
        ],
    )


def _btyd_state(
    days: pl.DataFrame, cut: date, horizon: int, settings: LtvParams, seed: int
) -> pl.DataFrame:
    """btyd_state at `cut` under a fit at `cut` (the evaluation's and the candidate's)."""
    summary = _customers_at(days, cut, settings)
    return btyd_state(summary, fit_btyd(summary, settings, seed), horizon, settings)


# --- forecasts per model ------------------------------------------------------------------------


def _forecast_frame(state: pl.DataFrame, columns: dict[str, Any]) -> pl.DataFrame:
    return state.select("user_id").with_columns(
        *[pl.Series(name, np.asarray(values, dtype=float)) for name, values in columns.items()]
    )


def _baseline(name: str, state: pl.DataFrame, horizon: int, settings: LtvParams):
    n = state.height
    if name == "zero":
        return _forecast_frame(state, {c: np.zeros(n) for c in FORECAST_COLUMNS})
    if name == "own_rate":
        from scipy.stats import poisson  # seconds to import: only where it is used

        # At least a day of age: a customer first seen on the last calibration day has none.
        rate = state["frequency"].to_numpy() / np.maximum(state["age"].to_numpy(), 1.0) * horizon
        value = state["mean_value"].to_numpy()
        low, _, high = settings.quantiles
        return _forecast_frame(
            state,
            {
                "purchases": rate,
                "purchases_low": poisson.ppf(low, rate),
                "purchases_high": poisson.ppf(high, rate),
                "revenue_usd": rate * value,
                "revenue_usd_low": poisson.ppf(low, rate) * value,
                "revenue_usd_high": poisson.ppf(high, rate) * value,
            },
        )
    bg = {c: state[f"bg_{c}"] for c in FORECAST_COLUMNS}
    if name == "bgnbd_gg_median":
        return _forecast_frame(state, bg)
    if name == "bgnbd_gg_mean":
        return _forecast_frame(
            state,
            {
                **bg,
                "purchases": state["expected_purchases"],
                "revenue_usd": state["expected_revenue_usd"],
            },
        )
    raise ValueError(f"unknown model {name!r}; known: {[*BASELINES, CANDIDATE]}")


@dataclass
class _Candidate:
    # (target, "_low" | "" | "_high") -> the correction model, or None where the BG/NBD quantile
    # alone did better on the validation customers than any number of boosting rounds
    boosters: dict[tuple[str, str], StoredBooster | None]
    iterations: dict[str, int]
    training_cut: date
    window_days: int


_QUANTILE_SUFFIXES = ("_low", "", "_high")


def _fit_candidate(
    days: pl.DataFrame, cut: date, horizon: int, settings: LtvParams
) -> tuple[_Candidate | None, str]:
    """LightGBM on the earlier pair: state at `cut - window`, targets in [cut - window, cut)."""
    import lightgbm as lgb

    first = days["day"].min()
    window = min(horizon, (cut - first).days // 2)
    if window < 7:
        return None, f"{(cut - first).days} days of history before the cut: too short to learn"
    training_cut = cut - timedelta(days=window)
    state = _btyd_state(days, training_cut, window, settings, settings.seed + 1)
    if state.height < settings.min_training_customers:
        return None, (
            f"only {state.height} customers before the training cut {training_cut}; "
            f"the learned model needs {settings.min_training_customers}"
        )
    actual = window_actuals(days, state["user_id"], training_cut, window)
    features = to_matrix(state, ML_FEATURES)
    is_valid = np.random.default_rng(settings.seed + 2).random(state.height) < (
        settings.validation_fraction
    )
    boosters, iterations = {}, {}
    for target in TARGETS:
        y = actual[f"actual_{target}"].to_numpy()
        for suffix, alpha in zip(_QUANTILE_SUFFIXES, settings.quantiles, strict=True):
            start = state[f"bg_{target}{suffix}"].to_numpy()
            objective = "l1" if suffix == "" else "quantile"

            def part(mask, start=start, y=y):
                import lightgbm as lgb

                return lgb.Dataset(features[mask], y[mask], init_score=start[mask])

            train, valid = part(~is_valid), part(is_valid)
            booster = lgb.train(
                settings.lightgbm(objective, None if suffix == "" else alpha),
                train,
                num_boost_round=settings.num_boost_round,
                valid_sets=[valid],
                callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
            )
            corrected = start[is_valid] + booster.predict(
                features[is_valid],
                num_iteration=booster.best_iteration,
                num_threads=settings.num_threads,  # LightGBM's default: every core
            )
            helps = _pinball(y[is_valid], corrected, alpha) < _pinball(
                y[is_valid], start[is_valid], alpha
            )
            boosters[(target, suffix)] = (
                StoredBooster(booster, booster.best_iteration) if helps else None
            )
            iterations[f"{target}{suffix}"] = booster.best_iteration if helps else 0
    return _Candidate(boosters, iterations, training_cut, window), (
        f"learned at {training_cut} on the next {window} days"
    )


def _pinball(y: np.ndarray, predicted: np.ndarray, alpha: float) -> float:
    """Mean quantile loss (alpha = 0.5: half the MAE)."""
    gap = y - predicted
    return float(np.mean(np.maximum(alpha * gap, (alpha - 1) * gap)))


def _candidate_forecast(candidate: _Candidate, state: pl.DataFrame, threads: int) -> pl.DataFrame:
    features = to_matrix(state, ML_FEATURES)
    keys = [(target, suffix) for target in TARGETS for suffix in _QUANTILE_SUFFIXES]

    def corrected(key: tuple[str, str]) -> np.ndarray:
        target, suffix = key
        start = state[f"bg_{target}{suffix}"].to_numpy()
        booster = candidate.boosters[key]
        return start if booster is None else start + booster.predict(features)

    # The six boosters (one LightGBM thread each, as trained) `threads` at a time: LightGBM
    # releases the GIL while it predicts (10M day: 0.61 s on one thread).
    with ThreadPoolExecutor(max_workers=threads) as pool:
        predicted = dict(zip(keys, pool.map(corrected, keys), strict=True))
    columns = {}
    for target in TARGETS:
        values = [predicted[(target, suffix)] for suffix in _QUANTILE_SUFFIXES]
        low, mid, high = np.sort(np.maximum(np.column_stack(values), 0.0), axis=1).T
        columns.update({target: mid, f"{target}_low": low, f"{target}_high": high})
    return _forecast_frame(state, columns)


# --- evaluation and serving ---------------------------------------------------------------------


def _evaluation_rows(model: str, forecast: pl.DataFrame, actual: pl.DataFrame) -> list[dict]:
    joined = forecast.join(actual, on="user_id")
    rows = []
    for target in TARGETS:
        y = joined[f"actual_{target}"].to_numpy()
        p = joined[target].to_numpy()
        low, high = joined[f"{target}_low"].to_numpy(), joined[f"{target}_high"].to_numpy()
        rows.append(
            {
                "model": model,
                "role": "candidate" if model == CANDIDATE else "baseline",
                "target": target,
                "mae": float(np.mean(np.abs(y - p))),
                "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
                "mean_predicted": float(p.mean()),
                "mean_actual": float(y.mean()),
                "interval_coverage": float(np.mean((y >= low) & (y <= high))),
                "customers": len(y),
            }
        )
    return rows


def choose_served(evaluation: pl.DataFrame, margin: float = 0.0) -> tuple[str, str]:
    """The candidate if it beats every baseline on MAE of both targets (by `margin`, relative),
    else the best baseline."""
    mae = {(r["model"], r["target"]): r["mae"] for r in evaluation.iter_rows(named=True)}
    models = list(dict.fromkeys(evaluation["model"]))
    baselines = [m for m in models if m != CANDIDATE]
    relative = {
        m: float(np.mean([mae[(m, t)] / max(mae[("zero", t)], 1e-12) for t in TARGETS]))
        for m in baselines
    }
    best = min(baselines, key=lambda m: (relative[m], baselines.index(m)))
    if CANDIDATE not in models:
        return best, f"no candidate was trained; best baseline {best} is served"
    losses = [
        f"{t} MAE {mae[(CANDIDATE, t)]:.4f} vs {m} {mae[(m, t)]:.4f}"
        for t in TARGETS
        for m in baselines
        if mae[(CANDIDATE, t)] >= (1.0 - margin) * mae[(m, t)]
    ]
    if not losses:
        edge = min(1 - mae[(CANDIDATE, t)] / min(mae[(m, t)] for m in baselines) for t in TARGETS)
        return CANDIDATE, f"{CANDIDATE} beats every baseline on both targets (by >= {edge:.2%})"
    return best, (
        f"{CANDIDATE} does not beat every baseline by {margin:.0%} ({'; '.join(losses)}); "
        f"the best baseline {best} is served"
    )


def _prepare(transactions: pl.DataFrame) -> pl.DataFrame:
    days = purchase_days(validate_transactions(transactions))
    if days.is_empty():
        raise ValueError("no purchases (every row is a refund or the frame is empty)")
    return days


def evaluate_transactions(
    transactions: pl.DataFrame,
    calibration_end: date | str | None,
    horizon_days: int,
    params: dict[str, Any] | None = None,
) -> TransactionLtvResult:
    """Evaluate every model on the holdout [calibration_end, calibration_end + horizon_days).

    `calibration_end` is the first holdout day (purchases strictly before it are calibration);
    None = the latest cut whose holdout has matured (last purchase day + 1 - horizon)."""
    settings = LtvParams.from_overrides(params)
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    days = _prepare(transactions)
    first, last = days["day"].min(), days["day"].max()
    cut = (
        last + timedelta(days=1 - horizon_days)
        if calibration_end is None
        else as_date(calibration_end)
    )
    if first >= cut:
        raise ValueError(f"no transactions before calibration_end {cut}")
    if last < cut + timedelta(days=horizon_days - 1):
        raise ValueError(
            f"transactions end {last}, before calibration_end + horizon "
            f"({cut + timedelta(days=horizon_days)}): the target has not matured; "
            "move --calibration-end earlier or shorten --horizon-days (or forecast forward)"
        )
    state = _btyd_state(days, cut, horizon_days, settings, settings.seed)
    actual = window_actuals(days, state["user_id"], cut, horizon_days)
    forecasts = {m: _baseline(m, state, horizon_days, settings) for m in BASELINES}
    candidate, _ = _fit_candidate(days, cut, horizon_days, settings)
    if candidate is not None:
        forecasts[CANDIDATE] = _candidate_forecast(candidate, state, settings.draw_threads)
    rows = [row for m, f in forecasts.items() for row in _evaluation_rows(m, f, actual)]
    evaluation = pl.DataFrame(rows)
    served, decision = choose_served(evaluation, settings.champion_margin)
    zero_mae = {r["target"]: r["mae"] for r in rows if r["model"] == "zero"}
    evaluation = evaluation.with_columns(
        (pl.col("mae") / pl.col("target").replace_strict(zero_mae)).alias("mae_vs_zero"),
        (pl.col("model") == served).alias("served"),
    )
    predictions = pl.concat(
        [f.with_columns(pl.lit(m).alias("model")) for m, f in forecasts.items()]
    ).join(actual, on="user_id")
    holdout_end = cut + timedelta(days=horizon_days)
    new = days.filter(pl.col("day") < holdout_end).group_by("user_id").agg(pl.col("day").min())
    return TransactionLtvResult(
        calibration_end=cut,
        horizon_days=horizon_days,
        evaluation=evaluation,
        served_model=served,
        decision=decision,
        predictions=predictions.select("user_id", "model", *FORECAST_COLUMNS, *actual.columns[1:]),
        params=settings.as_dict(),
        customers=state.height,
        new_customers_in_holdout=int((new["day"] >= cut).sum()),
        training_cut=None if candidate is None else candidate.training_cut,
    )


@dataclass(frozen=True)
class ServedFit:
    """What the served forecaster learned at `as_of` (training's end), applied unchanged to
    the customers' RFM state at any later as-of: the BG/NBD + GG fit with its bootstrap sets,
    and the candidate's boosters when the candidate is served."""

    served_model: str
    as_of: date
    btyd: BtydFit
    candidate: _Candidate | None
    customers: int


def _forward(
    transactions: pl.DataFrame, horizon_days: int, as_of: date | str | None, params
) -> tuple[LtvParams, pl.DataFrame, date]:
    """Settings, purchase days and the forecast's first day (default: after the last one)."""
    settings = LtvParams.from_overrides(params)
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    days = _prepare(transactions)
    as_of = days["day"].max() + timedelta(days=1) if as_of is None else as_date(as_of)
    return settings, days, as_of


def fit_served(
    transactions: pl.DataFrame,
    horizon_days: int,
    served_model: str,
    as_of: date | str | None = None,
    params: dict[str, Any] | None = None,
) -> ServedFit:
    """Fit `served_model` on every purchase before `as_of` (default: the day after the last
    purchase), once, for forecasts from `as_of` on."""
    settings, days, as_of = _forward(transactions, horizon_days, as_of, params)
    return _fit_served(days, horizon_days, served_model, as_of, settings)


def _fit_served(
    days: pl.DataFrame, horizon_days: int, served_model: str, as_of: date, settings: LtvParams
) -> ServedFit:
    summary = _customers_at(days, as_of, settings)
    candidate = None
    if served_model == CANDIDATE:
        candidate, why = _fit_candidate(days, as_of, horizon_days, settings)
        if candidate is None:
            raise ValueError(f"{CANDIDATE} cannot be trained for this forecast: {why}")
    elif served_model not in BASELINES:
        raise ValueError(f"unknown model {served_model!r}; known: {[*BASELINES, CANDIDATE]}")
    fit = fit_btyd(summary, settings, settings.seed)
    return ServedFit(served_model, as_of, fit, candidate, summary.height)


def forecast_transactions(
    transactions: pl.DataFrame,
    horizon_days: int,
    served_model: str,
    as_of: date | str | None = None,
    params: dict[str, Any] | None = None,
    fitted: ServedFit | None = None,
) -> pl.DataFrame:
    """Forecast the next `horizon_days` from `as_of` (default: the day after the last purchase)
    for every customer who bought before it, with the model `evaluate_transactions` chose:
    under `fitted` (fit_served's, at training) when given and `as_of` is not before its own,
    else fitted here on the purchases before `as_of`.

    One row per customer: the served point forecast (purchases, revenue_usd) with its interval,
    P(alive) with its interval, the BG/NBD + GG expectations (expected_*), which are the
    columns to add up for totals (medians do not sum to a total), and HISTORY_COLUMNS."""
    settings, days, as_of = _forward(transactions, horizon_days, as_of, params)
    # A stored fit saw the purchases up to its own as-of: an earlier as-of (a backfill, a
    # realized-performance check) is fitted on what was known then, never on later data.
    if fitted is None or as_of < fitted.as_of:
        fitted = _fit_served(days, horizon_days, served_model, as_of, settings)
    elif fitted.served_model != served_model:
        raise ValueError(f"the stored fit is {fitted.served_model}'s, not {served_model}'s")
    summary = customer_summary(days, as_of)
    if summary.is_empty():
        raise ValueError(f"nobody bought before {as_of}: no customer to forecast")
    state = btyd_state(summary, fitted.btyd, horizon_days, settings)
    if fitted.candidate is not None:
        forecast = _candidate_forecast(fitted.candidate, state, settings.draw_threads)
    else:
        forecast = _baseline(served_model, state, horizon_days, settings)
    renamed = {c: f"predicted_{c}" for c in FORECAST_COLUMNS}
    return (
        forecast.rename(renamed)
        .join(
            state.select(
                "user_id",
                "p_alive",
                "p_alive_low",
                "p_alive_high",
                "expected_purchases",
                "expected_revenue_usd",
                (pl.col("frequency") + 1).alias("purchase_days"),
                (pl.col("days_since_last") + 1).alias("days_since_last_purchase"),
                pl.col("mean_value").alias("mean_purchase_usd"),
            ),
            on="user_id",
        )
        .select(
            "user_id",
            pl.lit(as_of).alias("as_of_date"),
            pl.lit(horizon_days).alias("horizon_days"),
            pl.lit(served_model).alias("model"),
            *renamed.values(),
            "p_alive",
            "p_alive_low",
            "p_alive_high",
            "expected_purchases",
            "expected_revenue_usd",
            *HISTORY_COLUMNS,
        )
    )
