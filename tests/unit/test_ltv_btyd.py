"""Transaction LTV: BG/NBD + Gamma-Gamma against published CDNOW figures and planted truth; the
time split never leaks; ids stay text."""

from __future__ import annotations

import copy
import pickle
import zipfile
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from python_models.ltv import btyd
from python_models.ltv.forecast import (
    BASELINES,
    CANDIDATE,
    btyd_state,
    evaluate_transactions,
    fit_btyd,
    fit_served,
    forecast_transactions,
)
from python_models.ltv.params import LtvParams
from python_models.ltv.transactions import (
    customer_summary,
    purchase_days,
    read_transactions,
    validate_transactions,
)

# Fader, Hardie & Lee (2005), CDNOW sample of 2,357 customers, 39 calibration weeks (Table 1 of
# the BG/NBD paper); Fader & Hardie, "The Gamma-Gamma model of monetary value" (2013), same data.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
PUBLISHED_LOG_LIKELIHOOD = -9582.4
FAST = {"bootstrap_fits": 4, "draws": 200}  # tests need the logic, not the last digit

# Planted BG/NBD + Gamma-Gamma process (days, dollars).
TRUE_BGNBD = btyd.BgNbdParams(r=0.6, alpha=25.0, a=0.8, b=2.5)
TRUE_GAMMA_GAMMA = btyd.GammaGammaParams(p=6.0, q=4.0, gamma=20.0)
START = datetime(2024, 1, 1)
CUT_DAY, HORIZON = 365, 180


def simulate_btyd(n: int, seed: int, ids: list[str] | None = None):
    """Customers born in the first 90 days; purchases at Poisson rate lambda; after each repeat
    purchase a customer drops out with probability p; each purchase's value ~ Gamma(p_gg, nu).
    Returns (transactions, latent state per customer)."""
    rng = np.random.default_rng(seed)
    birth = rng.uniform(0, 90, n)
    lam = rng.gamma(TRUE_BGNBD.r, 1 / TRUE_BGNBD.alpha, n)
    drop = rng.beta(TRUE_BGNBD.a, TRUE_BGNBD.b, n)
    nu = rng.gamma(TRUE_GAMMA_GAMMA.q, 1 / TRUE_GAMMA_GAMMA.gamma, n)
    end = CUT_DAY + HORIZON
    who, when = [np.arange(n)], [birth]
    t, active = birth.copy(), np.ones(n, dtype=bool)
    alive_at_cut = np.ones(n, dtype=bool)
    while active.any():
        t = t + rng.exponential(1 / lam)
        active &= t < end
        who.append(np.flatnonzero(active))
        when.append(t[active])
        dropped = active & (rng.random(n) < drop)
        alive_at_cut &= ~(dropped & (t < CUT_DAY))
        active &= ~dropped
    who, when = np.concatenate(who), np.concatenate(when)
    value = rng.gamma(TRUE_GAMMA_GAMMA.p, 1 / nu[who])
    names = np.array(ids if ids is not None else [f"c{i:05d}" for i in range(n)])
    frame = pl.DataFrame(
        {
            "user_id": names[who],
            "purchased_at": [START + timedelta(days=float(d)) for d in when],
            "revenue_usd": np.round(value, 2),
        }
    )
    latent = pl.DataFrame(
        {"user_id": names, "lam": lam, "drop": drop, "nu": nu, "alive_at_cut": alive_at_cut}
    )
    return frame, latent


@pytest.fixture(scope="module")
def planted():
    return simulate_btyd(3000, seed=11)


@pytest.fixture(scope="module")
def planted_evaluation(planted):
    transactions, _ = planted
    return evaluate_transactions(
        transactions, START.date() + timedelta(days=CUT_DAY), HORIZON, params=FAST
    )


def test_cdnow_published_parameters(cdnow_wheel):
    """The published 39-week CDNOW summary (x, t_x, T in weeks) gives the published estimates."""
    with zipfile.ZipFile(cdnow_wheel) as archive:
        text = archive.read("lifetimes/datasets/cdnow_customers_summary_with_transactions.csv")
    summary = pl.read_csv(text)
    assert summary.height == 2357
    x, t_x, T, mbar = (summary[c].to_numpy() for c in ("x", "t_x", "T", "zbar"))
    fitted = btyd.fit_bgnbd(x, t_x, T)
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(fitted, name) == pytest.approx(published, abs=0.0015), name
    log_likelihood = btyd.bgnbd_log_likelihood(fitted, x, t_x, T).sum()
    assert log_likelihood == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.1)
    spend = btyd.fit_gamma_gamma(x, mbar)
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert getattr(spend, name) == pytest.approx(published, abs=0.015), name


def test_bootstrap_refits_on_customers_grouped_once_equal_refits_that_group_them(cdnow_wheel):
    """fit_btyd groups identical customers once per summary (btyd.group_customers,
    group_spenders); a refit on those groups with bootstrap weights gives exactly the
    parameters of a refit that groups the customers itself."""
    with zipfile.ZipFile(cdnow_wheel) as archive:
        text = archive.read("lifetimes/datasets/cdnow_customers_summary_with_transactions.csv")
    summary = pl.read_csv(text)
    x, t_x, T, mbar = (summary[c].to_numpy() for c in ("x", "t_x", "T", "zbar"))
    customers, spenders = btyd.group_customers(x, t_x, T), btyd.group_spenders(x, mbar)
    assert len(customers.rows) < len(x) / 2  # the grouping is worth doing on real data
    weights = np.random.default_rng(5).multinomial(len(x), np.full(len(x), 1.0 / len(x)))
    start = btyd.fit_bgnbd(x, t_x, T)
    assert btyd.fit_bgnbd(x, t_x, T, weights, start=start, grouped=customers) == btyd.fit_bgnbd(
        x, t_x, T, weights, start=start
    )
    assert btyd.fit_gamma_gamma(x, mbar, weights, grouped=spenders) == btyd.fit_gamma_gamma(
        x, mbar, weights
    )
    with pytest.raises(ValueError, match="weights for"):  # groups of other customers
        btyd.fit_bgnbd(x[:10], t_x[:10], T[:10], weights[:10], grouped=customers)


def test_cdnow_parameters_from_raw_transactions(cdnow_sample):
    """The same estimates from the raw purchase log through our own summaries (days, so alpha
    is 7x the weekly one; our T counts the cut day, so allow a percent)."""
    from python_models.ltv.transactions import customer_summary, purchase_days

    days = purchase_days(validate_transactions(cdnow_sample))
    summary = customer_summary(days, date(1997, 10, 1))
    assert summary.height == 2357
    x, t_x, T = (summary[c].to_numpy() for c in ("frequency", "recency", "age"))
    fitted = btyd.fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(PUBLISHED_BGNBD["r"], rel=0.01)
    assert fitted.alpha / 7 == pytest.approx(PUBLISHED_BGNBD["alpha"], rel=0.01)
    assert fitted.a == pytest.approx(PUBLISHED_BGNBD["a"], rel=0.01)
    assert fitted.b == pytest.approx(PUBLISHED_BGNBD["b"], rel=0.01)


def test_planted_parameters_are_recovered(planted):
    from python_models.ltv.transactions import customer_summary, purchase_days

    transactions, _ = planted
    days = purchase_days(validate_transactions(transactions))
    summary = customer_summary(days, START.date() + timedelta(days=CUT_DAY))
    x, t_x, T, mbar = (
        summary[c].to_numpy() for c in ("frequency", "recency", "age", "repeat_value")
    )
    fitted = btyd.fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(TRUE_BGNBD.r, rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE_BGNBD.alpha, rel=0.20)
    assert fitted.a == pytest.approx(TRUE_BGNBD.a, rel=0.30)
    assert fitted.b == pytest.approx(TRUE_BGNBD.b, rel=0.35)
    spend = btyd.fit_gamma_gamma(x, mbar)
    # p and q trade off against gamma; the population mean spend per purchase is well defined.
    true_mean = TRUE_GAMMA_GAMMA.p * TRUE_GAMMA_GAMMA.gamma / (TRUE_GAMMA_GAMMA.q - 1)
    assert spend.p * spend.gamma / (spend.q - 1) == pytest.approx(true_mean, rel=0.10)
    assert spend.p == pytest.approx(TRUE_GAMMA_GAMMA.p, rel=0.25)


def _true_parameter_median(summary: pl.DataFrame, rng) -> np.ndarray:
    """The BG/NBD posterior median of purchases under the planted (not fitted) parameters."""
    x, t_x, T, mbar = (
        summary[c].to_numpy() for c in ("frequency", "recency", "age", "repeat_value")
    )
    draws = btyd.sample_horizon(
        [TRUE_BGNBD], [TRUE_GAMMA_GAMMA], x, t_x, T, mbar, HORIZON, 1000, rng
    )
    quiet = btyd.probability_no_purchase(TRUE_BGNBD, x, t_x, T, HORIZON)
    return np.where(quiet >= 0.5, 0.0, np.median(draws.purchases, axis=1))


def test_planted_forecast_is_near_the_truth(planted, planted_evaluation):
    """The served forecast's holdout MAE against the planted truth: better than the simple
    baselines, within 3% of the same forecast made with the planted parameters, and no better
    than an oracle that knows each customer's latent rate, dropout and state (a floor)."""
    from python_models.ltv.transactions import customer_summary, purchase_days

    transactions, latent = planted
    result = planted_evaluation
    served = result.predictions.filter(pl.col("model") == result.served_model)
    summary = customer_summary(
        purchase_days(validate_transactions(transactions)), result.calibration_end
    )
    rng = np.random.default_rng(5)
    joined = served.join(latent, on="user_id").join(
        summary.with_columns(pl.Series("true_median", _true_parameter_median(summary, rng))),
        on="user_id",
    )
    lam, drop = joined["lam"].to_numpy()[:, None], joined["drop"].to_numpy()[:, None]
    alive = joined["alive_at_cut"].to_numpy()[:, None]
    shape = (joined.height, 1000)
    chances, until_drop = rng.poisson(lam * HORIZON, shape), rng.geometric(drop, shape)
    oracle = np.median(np.where(alive, np.minimum(chances, until_drop), 0), axis=1)
    actual = joined["actual_purchases"].to_numpy()
    oracle_mae = np.abs(actual - oracle).mean()
    true_parameter_mae = np.abs(actual - joined["true_median"].to_numpy()).mean()
    mae = {(r["model"], r["target"]): r["mae"] for r in result.evaluation.iter_rows(named=True)}
    print(
        f"\n{result.evaluation}\nlatent oracle {oracle_mae:.4f}, planted parameters "
        f"{true_parameter_mae:.4f}"
    )
    for target in ("purchases", "revenue_usd"):
        assert mae[(result.served_model, target)] < mae[("zero", target)]
        assert mae[(result.served_model, target)] < mae[("own_rate", target)]
    served_mae = mae[(result.served_model, "purchases")]
    assert oracle_mae < served_mae <= 1.03 * true_parameter_mae
    assert result.evaluation.filter(pl.col("served"))["interval_coverage"].min() >= 0.75


def test_served_model_follows_the_rule(planted_evaluation):
    """The candidate is served only if it beats every baseline on both targets by the margin."""
    table = planted_evaluation.evaluation
    assert set(table["model"]) == {*BASELINES, CANDIDATE}
    mae = {(r["model"], r["target"]): r["mae"] for r in table.iter_rows(named=True)}
    keep = 1.0 - planted_evaluation.params["champion_margin"]
    candidate_wins = all(
        mae[(CANDIDATE, t)] < keep * mae[(m, t)]
        for t in ("purchases", "revenue_usd")
        for m in BASELINES
    )
    assert (planted_evaluation.served_model == CANDIDATE) == candidate_wins
    assert table.filter(pl.col("served"))["model"].unique().to_list() == [
        planted_evaluation.served_model
    ]


@pytest.mark.parametrize("served", ["bgnbd_gg_median", CANDIDATE])
def test_a_stored_fit_forecasts_what_a_refit_does_at_its_as_of(planted, served):
    """At the as-of it was fitted at, the stored fit (pickled, as the bundle keeps it) gives
    exactly the forecast a refit on the same purchases gives, draws included."""
    transactions, _ = planted
    cut = START + timedelta(days=CUT_DAY)
    before = transactions.filter(pl.col("purchased_at") < cut)
    fitted = pickle.loads(pickle.dumps(fit_served(before, HORIZON, served, cut.date(), FAST)))
    assert (fitted.candidate is not None) == (served == CANDIDATE)
    stored = forecast_transactions(before, HORIZON, served, cut.date(), FAST, fitted)
    refit = forecast_transactions(before, HORIZON, served, cut.date(), FAST)
    assert stored.height == before["user_id"].n_unique()
    assert stored.equals(refit)


def test_the_candidate_forecasts_the_same_however_many_threads_predict(planted):
    """The candidate's six boosters predict `draw_threads` at a time: one thread or two give
    the same forecast, and each booster corrects its own baseline column."""
    transactions, _ = planted
    cut = START + timedelta(days=CUT_DAY)
    before = transactions.filter(pl.col("purchased_at") < cut)
    fitted = fit_served(before, HORIZON, CANDIDATE, cut.date(), FAST)
    assert sum(b is not None for b in fitted.candidate.boosters.values()) >= 2
    one, two = (
        forecast_transactions(
            before, HORIZON, CANDIDATE, cut.date(), {**FAST, "draw_threads": threads}, fitted
        )
        for threads in (1, 2)
    )
    assert one.equals(two)
    baseline = forecast_transactions(before, HORIZON, "bgnbd_gg_median", cut.date(), FAST)
    assert not one["predicted_revenue_usd"].equals(baseline["predicted_revenue_usd"])


def _newcomers(n: int, first: datetime, last: datetime) -> pl.DataFrame:
    """Customers first seen after `first`, buying $400 every 2 days until `last`: a
    population no planted parameter describes."""
    born = [first + timedelta(days=i % 30) for i in range(n)]
    rows = [
        (f"new{i:04d}", day + timedelta(days=2 * k), 400.0)
        for i, day in enumerate(born)
        for k in range(int((last - day).days // 2))
    ]
    return pl.DataFrame(rows, schema=["user_id", "purchased_at", "revenue_usd"], orient="row")


@pytest.mark.parametrize("served", ["bgnbd_gg_median", CANDIDATE])
def test_a_later_as_of_scores_with_the_stored_fit_and_fits_nothing(planted, served, monkeypatch):
    """Scoring 90 days after training, on a log grown by heavy newcomers: every customer
    (newcomers included) is forecast with the parameters fitted at training, which stay as
    they were, and no fitter runs; a refit would have seen a far higher purchase rate."""
    import lightgbm

    transactions, _ = planted
    cut = START + timedelta(days=CUT_DAY)
    later = cut + timedelta(days=90)
    fitted = fit_served(
        transactions.filter(pl.col("purchased_at") < cut), HORIZON, served, cut.date(), FAST
    )
    kept = copy.deepcopy(fitted)
    grown = pl.concat(
        [transactions.filter(pl.col("purchased_at") < later), _newcomers(1000, cut, later)]
    )
    summary = customer_summary(purchase_days(validate_transactions(grown)), later.date())
    x, t_x, T = (summary[c].to_numpy() for c in ("frequency", "recency", "age"))
    refit = btyd.fit_bgnbd(x, t_x, T)
    stored = fitted.btyd.bgnbd
    assert refit.r / refit.alpha > 2 * stored.r / stored.alpha  # the mean purchase rate

    def refuse(*args, **kwargs):
        raise AssertionError("scoring fitted a model")

    for module, name in ((btyd, "fit_bgnbd"), (btyd, "fit_gamma_gamma"), (lightgbm, "train")):
        monkeypatch.setattr(module, name, refuse)
    forecast = forecast_transactions(grown, HORIZON, served, later.date(), FAST, fitted)
    assert fitted.btyd == kept.btyd and fitted.as_of == cut.date()
    assert forecast["as_of_date"].unique().to_list() == [later.date()]
    assert forecast["user_id"].to_list() == summary["user_id"].to_list()
    assert forecast.filter(pl.col("user_id").str.starts_with("new")).height == 1000
    p_alive = forecast["p_alive"].to_numpy()
    assert np.allclose(p_alive, btyd.probability_alive(stored, x, t_x, T))
    assert not np.allclose(p_alive, btyd.probability_alive(refit, x, t_x, T), atol=0.01)
    expected = btyd.expected_purchases(stored, x, t_x, T, HORIZON)
    assert np.allclose(forecast["expected_purchases"].to_numpy(), expected)


def test_time_split_never_leaks():
    """Two logs identical before the cut and different after it give identical forecasts. The
    planted customer's holdout (a burst of large purchases) and every other customer's holdout
    would teach a customer-split model about the period it predicts."""
    transactions, _ = simulate_btyd(600, seed=3)
    cut = START + timedelta(days=CUT_DAY)
    planted_id = transactions.filter(pl.col("purchased_at") < cut)["user_id"][0]
    burst = pl.DataFrame(
        {
            "user_id": [planted_id] * 30,
            "purchased_at": [cut + timedelta(days=4 * i) for i in range(30)],
            "revenue_usd": [5000.0] * 30,
        }
    )
    changed = pl.concat(
        [
            transactions.filter(pl.col("purchased_at") < cut),
            transactions.filter(pl.col("purchased_at") >= cut)
            .sample(fraction=0.5, seed=1)
            .with_columns(pl.col("revenue_usd") * 3),
            burst,
        ]
    )
    horizon = HORIZON - 30  # well inside the simulated period: its last purchase can come early
    before = evaluate_transactions(transactions, cut.date(), horizon, params=FAST)
    after = evaluate_transactions(changed, cut.date(), horizon, params=FAST)
    assert before.training_cut is not None  # the learned model was trained and compared
    forecast_columns = [c for c in before.predictions.columns if not c.startswith("actual_")]
    assert before.predictions.select(forecast_columns).equals(
        after.predictions.select(forecast_columns)
    )
    actual = after.predictions.filter(
        (pl.col("user_id") == planted_id) & (pl.col("model") == "zero")
    )
    assert actual["actual_revenue_usd"][0] >= 150_000  # the burst is in the holdout actuals


def test_ids_stay_text(tmp_path):
    """ "00001" keeps its zeros and "007" and "7" stay two customers, from CSV to forecast."""
    transactions, _ = simulate_btyd(300, seed=4)
    names = sorted(transactions["user_id"].unique())
    renamed = {names[0]: "00001", names[1]: "007", names[2]: "7"}
    transactions = transactions.with_columns(pl.col("user_id").replace(renamed))
    path = tmp_path / "orders.csv"
    transactions.rename({"user_id": "customer_id", "revenue_usd": "revenue"}).write_csv(path)
    read = validate_transactions(read_transactions(path))
    assert read["user_id"].dtype == pl.String
    assert {"00001", "007", "7"} <= set(read["user_id"])
    assert read["user_id"].n_unique() == transactions["user_id"].n_unique()
    forecast = forecast_transactions(read, 90, "bgnbd_gg_median", params=FAST)
    assert {"00001", "007", "7"} <= set(forecast["user_id"])
    assert forecast["as_of_date"][0] == read["purchased_at"].max().date() + timedelta(days=1)
    assert forecast.height == read["user_id"].n_unique()
    interval = forecast.select(
        (pl.col("predicted_revenue_usd_low") <= pl.col("predicted_revenue_usd"))
        & (pl.col("predicted_revenue_usd") <= pl.col("predicted_revenue_usd_high"))
        & pl.col("p_alive").is_between(pl.col("p_alive_low"), pl.col("p_alive_high"))
    )
    assert interval.to_series().all()


def test_bad_transactions_get_clear_errors():
    with pytest.raises(ValueError, match="text or integer, got Float64"):
        validate_transactions(
            pl.DataFrame({"user_id": [7.0], "purchased_at": ["2025-01-01"], "revenue_usd": [1.0]})
        )
    with pytest.raises(ValueError, match="not timestamps"):
        validate_transactions(
            pl.DataFrame({"user_id": ["a"], "purchased_at": ["01/02/2025"], "revenue_usd": ["1"]})
        )
    with pytest.raises(ValueError, match="not numbers"):
        validate_transactions(
            pl.DataFrame({"user_id": ["a"], "purchased_at": ["20250101"], "revenue_usd": ["$1"]})
        )
    transactions, _ = simulate_btyd(100, seed=2)
    with pytest.raises(ValueError, match="not matured"):
        evaluate_transactions(transactions, "2024-12-01", 365, params=FAST)
    with pytest.raises(ValueError, match="unknown ltv parameters"):
        evaluate_transactions(transactions, None, 30, params={"num_trees": 5})


def test_champion_needs_the_margin_on_both_targets():
    from python_models.ltv.forecast import choose_served

    def table(candidate_purchases: float) -> pl.DataFrame:
        mae = {"zero": (1.0, 30.0), "own_rate": (1.2, 40.0), "bgnbd_gg_mean": (0.9, 29.0)}
        mae |= {"bgnbd_gg_median": (0.80, 28.0), CANDIDATE: (candidate_purchases, 27.0)}
        return pl.DataFrame(
            [
                {"model": m, "target": t, "mae": v}
                for m, pair in mae.items()
                for t, v in zip(("purchases", "revenue_usd"), pair, strict=True)
            ]
        )

    assert choose_served(table(0.79), margin=0.0)[0] == CANDIDATE
    served, why = choose_served(table(0.796), margin=0.01)  # 0.5% better on purchases: noise
    assert served == "bgnbd_gg_median"
    assert "purchases MAE 0.7960 vs bgnbd_gg_median 0.8000" in why
    assert choose_served(table(0.85), margin=0.0)[0] == "bgnbd_gg_median"


def test_an_as_of_before_the_stored_fit_is_fitted_on_what_was_known_then(planted):
    """A backfill (an as-of before the stored fit's) must not score with parameters that saw
    later purchases: it forecasts what a refit on the purchases before it forecasts."""
    transactions, _ = planted
    cut = START + timedelta(days=CUT_DAY)
    later = cut + timedelta(days=60)
    fitted = fit_served(
        transactions.filter(pl.col("purchased_at") < later),
        HORIZON,
        "bgnbd_gg_median",
        later.date(),
        FAST,
    )
    backfill = forecast_transactions(
        transactions, HORIZON, "bgnbd_gg_median", cut.date(), FAST, fitted
    )
    refit = forecast_transactions(transactions, HORIZON, "bgnbd_gg_median", cut.date(), FAST)
    assert backfill.equals(refit)


# (x, t_x, T, mbar): a newcomer, a regular, a heavy buyer, one quiet for most of a year.
PROFILES = np.array(
    [[0, 0, 100, 0], [3, 80, 120, 40.0], [10, 300, 310, 70.0], [2, 10, 300, 25.0]]
).T


def test_posterior_draws_match_the_closed_forms():
    """The draws (each variate drawn only where it counts: rate and dropout for draws alive at
    T, spend for draws that buy) against BG/NBD + GG's closed forms, per customer: mean
    purchases = E[purchases], share of no purchase = P(no purchase), mean revenue =
    E[purchases] x E[value]; with two parameter sets, each serving every other draw, the
    mean of the two sets' closed forms. Tolerance: 4 standard errors of the draws' own mean."""
    other_bg = btyd.BgNbdParams(r=1.2, alpha=40.0, a=0.5, b=4.0)
    other_gg = btyd.GammaGammaParams(p=3.0, q=5.0, gamma=60.0)
    for bg_sets, gg_sets in (
        ([TRUE_BGNBD], [TRUE_GAMMA_GAMMA]),
        ([TRUE_BGNBD, other_bg], [TRUE_GAMMA_GAMMA, other_gg]),
    ):
        n = 40_000
        draws = btyd.sample_horizon(
            bg_sets, gg_sets, *PROFILES, HORIZON, n, np.random.default_rng(5)
        )
        expected = np.mean([btyd.expected_purchases(p, *PROFILES[:3], HORIZON) for p in bg_sets], 0)
        revenue = np.mean(
            [
                btyd.expected_purchases(bg, *PROFILES[:3], HORIZON)
                * btyd.expected_purchase_value(gg, PROFILES[0], PROFILES[3])
                for bg, gg in zip(bg_sets, gg_sets, strict=True)
            ],
            0,
        )
        quiet = np.mean(
            [btyd.probability_no_purchase(p, *PROFILES[:3], HORIZON) for p in bg_sets], 0
        )
        for drawn, truth in (
            (draws.purchases, expected),
            (draws.revenue, revenue),
            ((draws.purchases == 0).astype(float), quiet),
        ):
            error = np.abs(drawn.mean(axis=1) - truth)
            assert (error < 4 * drawn.std(axis=1) / np.sqrt(n) + 1e-9).all(), (error, truth)
        assert (draws.purchases[draws.revenue == 0] == 0).all()  # spend only with purchases
        assert (draws.revenue[draws.purchases > 0] > 0).all()


def test_customers_with_equal_inputs_get_equal_intervals_and_pinned_ones_zero(planted):
    """btyd_state draws each distinct (x, t_x, T, mbar) once: customers with equal inputs get
    equal quantiles (newcomers on the same day, most of all), different inputs their own; a
    customer whose P(no purchase) reaches the top quantile is 0 on all three, as before; the
    same stored fit gives the same rows."""
    transactions, _ = planted
    settings = LtvParams.from_overrides(FAST)
    days = purchase_days(validate_transactions(transactions))
    cut = START.date() + timedelta(days=CUT_DAY)
    summary = customer_summary(days, cut)
    fit = fit_btyd(summary, settings, seed=3)
    state = btyd_state(summary, fit, HORIZON, settings)
    assert state.equals(btyd_state(summary, fit, HORIZON, settings))
    inputs = ["frequency", "recency", "age", "repeat_value"]
    quantiles = [c for c in state.columns if c.startswith("bg_")]
    groups = state.group_by(inputs).agg(
        pl.len().alias("n"), *[pl.col(c).n_unique().alias(c) for c in quantiles]
    )
    shared = groups.filter(pl.col("n") > 1)
    assert shared.height > 10 and shared["n"].sum() > 100  # newcomers share a day
    assert (shared.select(quantiles).max_horizontal() == 1).all()
    # Distinct inputs are drawn apart: repeat buyers' medians of revenue differ.
    repeat = state.filter(pl.col("frequency") > 0, pl.col("p_no_purchase") < 0.5)
    assert repeat["bg_revenue_usd"].n_unique() > 0.9 * repeat.height
    top = settings.quantiles[-1]
    pinned = state.filter(pl.col("p_no_purchase") >= top)
    assert pinned.height > 0
    assert (pinned.select(quantiles).max_horizontal() == 0).all()


def test_the_draws_are_the_same_however_many_threads_simulate_the_chunks(planted):
    """btyd_state simulates its distinct customers in chunks, each from a generator seeded from
    the fit's stream: one thread or several, in whatever order they finish, give the same rows;
    another fit seed gives other draws (the chunks' streams come from the fit)."""
    transactions, _ = planted
    days = purchase_days(validate_transactions(transactions))
    summary = customer_summary(days, START.date() + timedelta(days=CUT_DAY))
    fit = fit_btyd(summary, LtvParams.from_overrides(FAST), seed=3)
    states = [
        btyd_state(
            summary,
            fit,
            HORIZON,
            LtvParams.from_overrides({**FAST, "simulation_chunk": 97, "draw_threads": threads}),
        )
        for threads in (1, 2, 5)
    ]
    simulated = states[0].filter(pl.col("p_no_purchase") < 0.5).height
    assert simulated > 5 * 97  # several chunks drawn
    assert states[0].equals(states[1]) and states[0].equals(states[2])
    other_fit = fit_btyd(summary, LtvParams.from_overrides(FAST), seed=4)
    other = btyd_state(
        summary, other_fit, HORIZON, LtvParams.from_overrides({**FAST, "simulation_chunk": 97})
    )
    assert not other["bg_revenue_usd"].equals(states[0]["bg_revenue_usd"])
