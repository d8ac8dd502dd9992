"""Salted hashes of identifiers: the pseudonyms staging writes and the tokens the erasure log
keeps. Both match the dbt macro `uba_pseudonymize` bit for bit (same formula, own namespace)."""

from __future__ import annotations

import hashlib

# Namespaces staging uses for person keys; "erasure" tokens in the erasure log and
# "fingerprint" for the salt's own fingerprint never collide with them.
NAMESPACES = ("user", "anon")
TOKEN_NAMESPACES = ("erasure", "fingerprint")


def _hash(value: str, namespace: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}|{namespace}|{value}".encode()).hexdigest()[:32]


def pseudonymize(value: str | None, namespace: str, salt: str) -> str | None:
    """First 32 hex chars of sha256(salt|namespace|value); None stays None."""
    if namespace not in NAMESPACES:
        raise ValueError(f"namespace must be one of {NAMESPACES}, got {namespace!r}")
    if value is None:
        return None
    return _hash(value, namespace, salt)


def request_token(identifier: str, salt: str) -> str:
    """What the erasure log keeps instead of an erased identifier: someone holding the salt and
    the identifier can show it was erased; the log alone names nobody."""
    return _hash(identifier, "erasure", salt)


def salt_fingerprint(salt: str) -> str:
    """The salt's fingerprint, as staging's stg_app__pseudonym_salts computes it."""
    return _hash("salt-fingerprint", "fingerprint", salt)
