"""Reasons for every scored user: rows/s of each part, on a trained warehouse.

    UBA_DUCKDB_PATH=... python benchmarks/bench_reasons.py [--rows 200000]
        [--model churn|next_action] [--contrib-rows 20000] [--threads 1] [--before OLD_REASONS.py]

Takes the champion's latest-snapshot inputs, stacked to --rows rows, and times: predict; the
contributions by LightGBM's own pred_contrib (on --contrib-rows rows: it is the slow one);
the same contributions once per path pattern (python_models.common.reasons, every row, and
checked equal to pred_contrib on the common rows); the top 3 per row; the words; and the whole
explain() as scoring runs it. With --before (an earlier reasons.py, e.g. `git show
2ba55b5^:python_models/common/reasons.py > /tmp/reasons_before.py`), its explain() runs on the
--contrib-rows rows too and its words are checked equal. Figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np


def _timed(fn):
    """(result, (wall seconds, CPU seconds of this process)): on a shared machine the CPU
    seconds are the steadier figure (one LightGBM thread, numpy single-threaded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall, time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="churn", help="a LightGBM model with reasons")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--contrib-rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads")
    parser.add_argument("--before", help="an earlier reasons.py to time on --contrib-rows rows")
    args = parser.parse_args()

    from python_models.common.features import load_snapshot, to_matrix
    from python_models.common.reasons import (
        explain,
        reasons_text,
        top_contributions,
        tree_contributions,
    )
    from python_models.lifecycle import load_champion
    from python_models.warehouse import connect

    con = connect(read_only=True)
    try:
        entry, bundle = load_champion(con, args.model)
        model = bundle["model"]
        if args.model == "next_action":
            return _next_action(con, entry, model, args)
        snapshot = to_matrix(load_snapshot(con, model.features), model.features)
    finally:
        con.close()
    repeats = -(-args.rows // len(snapshot))
    matrix = np.vstack([snapshot] * repeats)[: args.rows]
    booster = model.booster_.booster
    trees = booster.num_trees()
    print(
        f"{args.model} {entry.model_version}: {trees} trees, {len(model.features)} features; "
        f"{len(snapshot):,} users in the latest snapshot, stacked to {len(matrix):,} rows; "
        f"{args.threads} LightGBM thread(s)"
    )

    def rate(rows: int, seconds: tuple[float, float]) -> str:
        wall, cpu = (max(s, 1e-9) for s in seconds)
        return (
            f"{wall:7.2f} s {rows / wall:>9,.0f} rows/s   "
            f"CPU {cpu:7.2f} s {rows / cpu:>9,.0f} rows/CPU-s"
        )

    sub = matrix[: args.contrib_rows]
    _, predict_s = _timed(lambda: booster.predict(matrix, num_threads=args.threads))
    lightgbm, lightgbm_s = _timed(
        lambda: booster.predict(sub, pred_contrib=True, num_threads=args.threads)[:, :-1]
    )
    patterned, patterned_s = _timed(lambda: tree_contributions(booster, matrix))
    worst = float(np.abs(patterned[: len(sub)] - lightgbm).max())
    (indices, _), top_s = _timed(lambda: top_contributions(booster, matrix))
    words, words_s = _timed(
        lambda: reasons_text(indices, matrix, model.features, model.feature_medians_)
    )
    _, explain_s = _timed(lambda: explain(booster, matrix, model.features, model.feature_medians_))
    print(f"  predict                        {rate(len(matrix), predict_s)}")
    print(f"  pred_contrib (LightGBM)        {rate(len(sub), lightgbm_s)}")
    print(
        f"  contributions per pattern      {rate(len(matrix), patterned_s)}  (max diff {worst:.1e})"
    )
    print(f"  top 3 (contributions + sort)   {rate(len(matrix), top_s)}")
    print(f"  words for the top 3            {rate(len(matrix), words_s)}")
    print(f"  reasons, end to end (explain)  {rate(len(matrix), explain_s)}")
    if args.before:
        spec = importlib.util.spec_from_file_location("reasons_before", args.before)
        before = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
        old_words, before_s = _timed(
            lambda: before.explain(booster, sub, model.features, model.feature_medians_)
        )
        same = old_words == words[: len(sub)]
        print(
            f"  before: explain ({args.before})  {rate(len(sub), before_s)}  (same words: {same})"
        )
    print(f"  e.g. {words[0]!r}")
    return 0


def _next_action(con, entry, model, args) -> int:
    """The multiclass next-action model: reasons are TreeSHAP of each row's first action, from
    that class's trees; timed per path pattern (model.reasons, as scoring runs it) against
    LightGBM's pred_contrib of the same one-class boosters (the route before), words equal."""
    from python_models.common.reasons import reasons_text
    from python_models.next_action.sequences import load_latest

    latest = model.matrix(load_latest(con, model.features))
    repeats = -(-args.rows // len(latest))
    matrix = np.vstack([latest] * repeats)[: args.rows]
    predicted = np.argmax(model._proba(matrix), axis=1)
    print(
        f"next_action {entry.model_version}: {model.booster_.booster.num_trees()} trees, "
        f"{len(model.classes_)} classes, {len(model.features)} features; {len(latest):,} users' "
        f"newest rows stacked to {len(matrix):,} rows; {args.threads} LightGBM thread(s)"
    )
    for label in np.unique(predicted):  # one-class boosters built before the clocks start
        model.class_booster(int(label))

    def before(rows: np.ndarray, labels: np.ndarray) -> list[str]:
        n_features = len(model.features)
        indices = np.full((len(rows), 3), -1, dtype=np.int64)
        for label in np.unique(labels):
            part = np.flatnonzero(labels == label)
            contrib = model.class_booster(int(label)).predict(
                rows[part], pred_contrib=True, num_threads=args.threads
            )[:, :n_features]
            order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
            positive = np.take_along_axis(contrib, order, axis=1) > 0
            indices[part] = np.where(positive, order, -1)
        return reasons_text(indices, rows, model.features, model.feature_medians_, model._phrase)

    sub, sub_labels = matrix[: args.contrib_rows], predicted[: args.contrib_rows]
    old_words, before_s = _timed(lambda: before(sub, sub_labels))
    words, after_s = _timed(lambda: model.reasons(matrix, predicted))
    for name, rows, (wall, cpu) in (
        ("reasons, pred_contrib (before)", len(sub), before_s),
        ("reasons, per path pattern", len(matrix), after_s),
    ):
        print(f"  {name:31s} {wall:7.2f} s {rows / wall:>9,.0f} rows/s   CPU {cpu:7.2f} s")
    print(f"  same words on the common rows: {old_words == words[: len(sub)]}")
    print(f"  e.g. {words[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
