"""Score-table docs: declared once (python_models.bi_docs + the model specs), the generated dbt
sources YAML in step with them, every score column described."""

from __future__ import annotations

import yaml

from python_models import bi_docs
from python_models.models import MODELS


def test_sources_yaml_is_generated_from_the_specs():
    assert bi_docs.SOURCES_YAML.read_text() == bi_docs.sources_yaml(), (
        "run python -m python_models.bi_docs --write"
    )
    assert bi_docs.main([]) == 0


def test_every_score_column_is_described_once():
    assert bi_docs.undocumented_score_columns() == []
    sources = yaml.safe_load(bi_docs.SOURCES_YAML.read_text())["sources"]
    tables = {t["name"]: t for s in sources if s["name"] == "ml_scores" for t in s["tables"]}
    for spec in MODELS:
        listed = [c["name"] for c in tables[spec.table_name]["columns"]]
        assert listed == list(spec.score_columns), spec.name
        assert all(c["description"].strip() for c in tables[spec.table_name]["columns"])


def test_a_missing_description_is_reported():
    from dataclasses import replace

    churn = next(spec for spec in MODELS if spec.name == "churn")
    bare = replace(churn, column_docs={})
    assert bi_docs.undocumented_score_columns((bare,)) == [
        "ml_scores.churn_scores.score",
        "ml_scores.churn_scores.predicted_label",
    ]
