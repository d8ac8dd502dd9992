"""`uba rollback --model M`: make the previous champion champion again (and list versions)."""

from __future__ import annotations

import sys

import polars as pl

from python_models.models import model_names


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, choices=model_names())
    parser.add_argument(
        "--list", action="store_true", help="only list the registered versions, change nothing"
    )


def run(args) -> int:
    from python_models.common import registry
    from python_models.common.artifacts import ArtifactIntegrityError
    from python_models.lifecycle import rollback_model
    from python_models.warehouse import connect

    con = connect()
    try:
        if not args.list:
            version = rollback_model(con, args.model)
            print(f"{args.model}: champion is now {version}")
        versions = registry.list_versions(con, args.model)
        if versions.height:
            with pl.Config(tbl_rows=50, tbl_width_chars=160):
                print(versions.select("model_version", "trained_at", "status", "promoted_at"))
    except (registry.RegistryError, ArtifactIntegrityError) as err:
        print(f"uba rollback: {err}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0
