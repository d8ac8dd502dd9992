"""PNG plots for training runs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported on the first plot, not with the package
    (it costs a second or more to import, and scoring never plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _subplots(*args, **kwargs):
    return pyplot().subplots(*args, **kwargs)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def roc_plot(y_true, curves: dict[str, np.ndarray], path: Path) -> Path:
    from sklearn.metrics import roc_curve

    fig, ax = _subplots(figsize=(5, 5))
    for name, scores in curves.items():
        fpr, tpr, _ = roc_curve(y_true, scores)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def calibration_plot(y_true, curves: dict[str, np.ndarray], path: Path) -> Path:
    from sklearn.calibration import calibration_curve

    fig, ax = _subplots(figsize=(5, 5))
    for name, probabilities in curves.items():
        observed, predicted = calibration_curve(
            y_true, probabilities, n_bins=10, strategy="quantile"
        )
        ax.plot(predicted, observed, marker="o", label=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration (holdout)")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def importance_plot(features: list[str], importance: np.ndarray, path: Path, top: int = 20):
    order = np.argsort(importance)[::-1][:top][::-1]
    fig, ax = _subplots(figsize=(6, max(3, 0.3 * len(order) + 1)))
    ax.barh([features[i] for i in order], importance[order])
    ax.set(xlabel="total gain", title="Feature importance")
    return _save(fig, path)


def segment_profile_plot(profile, names: list[str], features: list[str], path: Path) -> Path:
    """Heatmap of each segment's standardized mean per feature (profile: segments x features)."""
    matrix = np.asarray(profile, dtype=float)
    fig, ax = _subplots(figsize=(max(6, 0.45 * len(features) + 2), 0.5 * len(names) + 2))
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title("Segment profiles (z-score of segment mean vs all users)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _save(fig, path)


def score_histogram(scores, path: Path, title: str) -> Path:
    fig, ax = _subplots(figsize=(5, 3.5))
    ax.hist(scores, bins=50)
    ax.set(xlabel="score", ylabel="count", title=title)
    return _save(fig, path)


def retention_heatmap(
    cohorts: list[str], periods: list[int], matrix: np.ndarray, sizes: list[int], path: Path
) -> Path:
    """Cohort x period retention (share of the cohort active in that period; NaN = not yet
    observed), newest cohort at the bottom, with each cohort's size on its label."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = _subplots(
        figsize=(max(6, 0.38 * len(periods) + 2.5), max(3, 0.3 * len(cohorts) + 1.5))
    )
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(periods)), [str(p) for p in periods], fontsize=7)
    labels = [f"{c} (n={n:,})" for c, n in zip(cohorts, sizes, strict=True)]
    ax.set_yticks(range(len(cohorts)), labels, fontsize=7)
    if len(cohorts) * len(periods) <= 400:
        for (row, col), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                colour = "white" if value < 0.5 else "black"
                ax.text(
                    col, row, f"{value:.0%}", ha="center", va="center", fontsize=6, color=colour
                )
    ax.set(xlabel="weeks since acquisition", title="Weekly retention by acquisition cohort")
    fig.colorbar(image, ax=ax, shrink=0.8, format=lambda v, _: f"{v:.0%}")
    return _save(fig, path)


def accuracy_by_variant_plot(evaluation, metrics: tuple[str, ...], path: Path) -> Path:
    """Grouped bars: each metric (columns of `evaluation`) per variant (rows)."""
    variants = evaluation["variant"].to_list()
    fig, ax = _subplots(figsize=(6, 3.5))
    width = 0.8 / len(metrics)
    for i, metric in enumerate(metrics):
        positions = np.arange(len(variants)) + i * width
        ax.bar(positions, evaluation[metric].to_list(), width=width, label=metric)
    ax.set_xticks(np.arange(len(variants)) + width * (len(metrics) - 1) / 2, variants)
    ax.set(ylim=(0, 1), title="Holdout accuracy by variant")
    ax.legend(fontsize=8)
    return _save(fig, path)


def forecast_plot(history, forecast, path: Path, title: str) -> Path:
    """History and forecast per metric, one panel each: `history` has (metric, hour_ts,
    value); `forecast` has (metric, hour_ts, score, lower, upper)."""
    metrics = sorted(set(forecast["metric"].to_list()))
    fig, axes = _subplots(len(metrics), 1, figsize=(9, 2.6 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        seen = history.filter(history["metric"] == metric)
        ahead = forecast.filter(forecast["metric"] == metric)
        ax.plot(
            seen["hour_ts"].to_list(),
            seen["value"].to_list(),
            color="grey",
            lw=0.8,
            label="history",
        )
        ax.plot(
            ahead["hour_ts"].to_list(),
            ahead["score"].to_list(),
            color="C0",
            lw=1.2,
            label="forecast",
        )
        ax.fill_between(
            ahead["hour_ts"].to_list(),
            ahead["lower"].to_list(),
            ahead["upper"].to_list(),
            color="C0",
            alpha=0.25,
            label="interval",
        )
        ax.set(title=f"{title}: {metric}", ylabel="per hour")
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)
