"""Privacy operations (docs/privacy.md): pseudonyms, erasure of a person, retention windows,
consent.

    pseudonymize(value, namespace, salt)   the salted hash staging writes (dbt uba_pseudonymize)
    erase(ids)                  python_models.privacy.erasure   (`uba erase`, Dagster erase_people)
    apply_retention(con)        python_models.privacy.retention (`uba retention`, Dagster job)
    identifier_columns(con)     python_models.privacy.discovery: which tables hold someone's rows

Only the pseudonym helpers are imported here, so `from python_models.privacy import
pseudonymize` stays cheap.
"""

from python_models.privacy.pseudonyms import NAMESPACES, pseudonymize

__all__ = ["NAMESPACES", "pseudonymize"]
