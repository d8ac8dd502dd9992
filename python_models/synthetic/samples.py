"""Rebuild the small committed sample files in seeds/ (same events as CSV, JSONL and Parquet).

python -m python_models.synthetic.samples
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl

from python_models.config import REPO_ROOT
from python_models.synthetic.formats import write_events
from python_models.synthetic.generator import generate

SEEDS_DIR = REPO_ROOT / "seeds"
SAMPLE_EVENTS = 2_000
SAMPLE_SEED = 2025
# Higher defect and takeover rates than the defaults, so ~2k events still show every kind.
SAMPLE_DEFECT_RATE = 0.02
SAMPLE_ATO_RATE = 0.15


def write_sample_seeds(dest: Path = SEEDS_DIR) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = generate(
            Path(tmp),
            n_events=SAMPLE_EVENTS,
            seed=SAMPLE_SEED,
            defect_rate=SAMPLE_DEFECT_RATE,
            ato_rate=SAMPLE_ATO_RATE,
        )
        rows = pl.read_parquet(result.events_dir / "*.parquet")
        defects = pl.read_parquet(result.truth_dir / "defects.parquet")
        manifest = result.manifest
    for fmt in ("csv", "jsonl", "parquet"):
        write_events(rows, dest / f"sample_events.{fmt}")
    defects.write_csv(dest / "sample_defects.csv")
    (dest / "sample_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    m = write_sample_seeds()
    print(f"seeds: {m['n_rows']} rows ({m['n_defect_rows']} defects) -> {SEEDS_DIR}")
