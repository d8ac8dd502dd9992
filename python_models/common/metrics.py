"""Evaluation metrics shared by the models (plain numpy in, floats out)."""

from __future__ import annotations

import numpy as np


def _top_fraction_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the top `fraction` by score; ties broken by position (stable)."""
    n_top = max(1, int(round(len(scores) * fraction)))
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:n_top]] = True
    return mask


def classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, top_fraction: float = 0.10, is_probability=True
) -> dict[str, float]:
    """ROC AUC, PR AUC, precision and lift in the top 10%, Brier (probabilities only)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y_true = np.asarray(y_true, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if len(np.unique(y_true)) < 2:
        raise ValueError("the evaluation set holds a single class; ROC AUC is undefined")
    top = _top_fraction_mask(scores, top_fraction)
    base_rate = float(y_true.mean())
    precision_top = float(y_true[top].mean())
    return {
        "roc_auc": float(roc_auc_score(y_true, scores)),
        "pr_auc": float(average_precision_score(y_true, scores)),
        "brier": float(brier_score_loss(y_true, scores)) if is_probability else float("nan"),
        "precision_top10": precision_top,
        "lift_top10": precision_top / base_rate if base_rate > 0 else float("nan"),
        "base_rate": base_rate,
        "n": float(len(y_true)),
    }
