"""PNG pictures of the impact tables (matplotlib, Agg backend), for Dagster metadata."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

FLAG_COLOUR = "#c0392b"
BASE_COLOUR = "#2c7fb8"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path


def _interval_rows(ax, labels, estimates, lows, highs, title: str, xlabel: str) -> None:
    y = np.arange(len(labels))[::-1]
    est = np.asarray(estimates, float)
    err = np.vstack([est - np.asarray(lows, float), np.asarray(highs, float) - est])
    ax.errorbar(est, y, xerr=np.nan_to_num(err), fmt="o", color=BASE_COLOUR, capsize=3)
    ax.axvline(0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(title=title, xlabel=xlabel)


def experiment_plot(results: pl.DataFrame, path: Path) -> Path:
    """Difference vs control with its interval, one row per experiment / metric / variant."""
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.45 * results.height + 1.2)))
    labels = [
        f"{r['experiment_key']} · {r['metric_name']} · {r['variant']}"
        for r in results.iter_rows(named=True)
    ]
    # Metrics have different units: show each difference relative to its control mean.
    scale = results["mean_control"].to_numpy().astype(float)
    scale = np.where(np.abs(scale) > 0, np.abs(scale), 1.0)
    _interval_rows(
        ax,
        labels,
        results["difference"].to_numpy() / scale,
        results["ci_low"].to_numpy() / scale,
        results["ci_high"].to_numpy() / scale,
        "Experiment results (difference / control mean)",
        "relative difference vs control",
    )
    return _save(fig, path)


def lift_plot(table: pl.DataFrame, path: Path) -> Path:
    """Treatment minus holdout outcome per score decile, one panel per model version."""
    versions = table.select("model_name", "model_version").unique(maintain_order=True).rows()
    fig, axes = plt.subplots(1, max(1, len(versions)), figsize=(6 * max(1, len(versions)), 4))
    axes = np.atleast_1d(axes)
    for ax, (name, version) in zip(axes, versions, strict=False):
        rows = table.filter(
            (pl.col("model_name") == name)
            & (pl.col("model_version") == version)
            & (pl.col("decile") > 0)
        ).sort("decile")
        d = rows["decile"].to_numpy()
        est = rows["difference"].to_numpy().astype(float)
        low = rows["ci_low"].to_numpy().astype(float)
        high = rows["ci_high"].to_numpy().astype(float)
        ax.errorbar(
            d,
            est,
            yerr=np.nan_to_num(np.vstack([est - low, high - est])),
            fmt="o",
            color=BASE_COLOUR,
            capsize=3,
        )
        ax.axhline(0, color="grey", linestyle="--", linewidth=0.8)
        ax.set(
            title=f"{name} {version}",
            xlabel="score decile (10 = highest)",
            ylabel="outcome: treatment - holdout",
            xticks=list(range(1, int(d.max(initial=1)) + 1)),
        )
    return _save(fig, path)


def fairness_plot(
    frame: pl.DataFrame,
    report: pl.DataFrame,
    attribute: str,
    path: Path,
    score_column: str = "score",
) -> Path:
    """Three panels for one attribute: score distribution, calibration, FPR / FNR by group."""
    rows = report.filter(pl.col("attribute") == attribute).sort("group_value")
    overall = report.filter(pl.col("attribute") == "overall").row(0, named=True)
    groups = rows["group_value"].to_list()
    colours = [FLAG_COLOUR if f else BASE_COLOUR for f in rows["is_flagged"].to_list()]
    values = frame[attribute].cast(pl.String).fill_null("(unknown)")
    scores = [frame.filter(values == g)[score_column].to_numpy() for g in groups]
    fig, axes = plt.subplots(1, 3, figsize=(15, max(3.5, 0.35 * len(groups) + 1.5)))
    box = axes[0].boxplot(
        scores, vert=False, tick_labels=groups, showfliers=False, patch_artist=True
    )
    for patch, colour in zip(box["boxes"], colours, strict=True):
        patch.set_facecolor(colour)
        patch.set_alpha(0.5)
    axes[0].set(title=f"Score by {attribute}", xlabel="score")
    y = np.arange(len(groups))
    axes[1].barh(y - 0.2, rows["mean_score"].to_numpy(), 0.4, label="mean score", color="#999999")
    axes[1].barh(
        y + 0.2, rows["outcome_rate"].to_numpy(), 0.4, label="observed rate", color=colours
    )
    axes[1].set_yticks(y, groups)
    axes[1].set(title="Calibration: predicted vs observed")
    axes[1].legend(fontsize=8)
    axes[2].barh(y - 0.2, rows["false_positive_rate"].to_numpy(), 0.4, label="FPR", color=colours)
    axes[2].barh(
        y + 0.2, rows["false_negative_rate"].to_numpy(), 0.4, label="FNR", color=colours, alpha=0.5
    )
    for value, style in (
        (overall["false_positive_rate"], "-"),
        (overall["false_negative_rate"], ":"),
    ):
        if value is not None:
            axes[2].axvline(value, color="black", linestyle=style, linewidth=0.8)
    axes[2].set_yticks(y, groups)
    axes[2].set(title="Error rates (lines: whole population; red: flagged)")
    axes[2].legend(fontsize=8)
    return _save(fig, path)
