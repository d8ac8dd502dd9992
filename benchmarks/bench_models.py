"""Train and score timings of the four models, and predict vs pred_contrib (reasons) cost.

    UBA_DUCKDB_PATH=... python benchmarks/bench_models.py [--repeat-rows 10]

Uses the configured warehouse (it must be built). `--repeat-rows` stacks the latest snapshot N
times to time reasons on a bigger batch without generating more data.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat-rows", type=int, default=10)
    args = parser.parse_args()

    from python_models.common.features import load_snapshot, to_matrix
    from python_models.common.reasons import explain
    from python_models.lifecycle import load_champion, score_model, train_model
    from python_models.models import model_names
    from python_models.warehouse import connect

    con = connect()
    for name in model_names():
        started = time.perf_counter()
        outcome = train_model(con, name, run_id="bench")
        trained = time.perf_counter() - started
        started = time.perf_counter()
        scored = score_model(con, name, run_id="bench")
        print(
            f"{name:13s} train {trained:6.1f} s ({outcome.status})   "
            f"score {time.perf_counter() - started:6.2f} s for {scored.rows:,} rows"
        )

    _, bundle = load_champion(con, "churn")
    model = bundle["model"]
    matrix = to_matrix(load_snapshot(con, model.features), model.features)
    matrix = np.vstack([matrix] * args.repeat_rows)
    started = time.perf_counter()
    model.booster_.predict(matrix)
    predict_s = time.perf_counter() - started
    started = time.perf_counter()
    model.booster_.booster.predict(matrix, pred_contrib=True)
    contrib_s = time.perf_counter() - started
    started = time.perf_counter()
    explain(model.booster_.booster, matrix, model.features, model.feature_medians_)
    reasons_s = time.perf_counter() - started
    print(
        f"churn reasons on {len(matrix):,} rows: predict {predict_s * 1000:.1f} ms, "
        f"pred_contrib {contrib_s * 1000:.1f} ms ({contrib_s / max(predict_s, 1e-9):.0f}x), "
        f"top-3 reasons in words {reasons_s * 1000:.1f} ms"
    )
    con.close()


if __name__ == "__main__":
    main()
