"""Pseudonymization that matches the dbt macro `uba_pseudonymize` bit for bit."""

from __future__ import annotations

import hashlib

NAMESPACES = ("user", "anon")


def pseudonymize(value: str | None, namespace: str, salt: str) -> str | None:
    """First 32 hex chars of sha256(salt|namespace|value); None stays None."""
    if namespace not in NAMESPACES:
        raise ValueError(f"namespace must be one of {NAMESPACES}, got {namespace!r}")
    if value is None:
        return None
    digest = hashlib.sha256(f"{salt}|{namespace}|{value}".encode()).hexdigest()
    return digest[:32]
