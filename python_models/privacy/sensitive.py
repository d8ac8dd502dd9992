"""Which event properties hold personal data: the contract's PII keys (email, ip) and any key
the setting UBA_SENSITIVE_PROPERTIES declares. Erasure collects their values (to scan and redact);
retention purges them from the raw layer after UBA_RETENTION_PII_DAYS."""

from __future__ import annotations

# Always personal: never selected past the raw layer (docs/CONTRACTS.md, raw event files).
PII_PROPERTY_KEYS: tuple[str, ...] = ("email", "ip")


def sensitive_property_keys() -> tuple[str, ...]:
    """The contract's PII keys, then the declared ones (settings.sensitive_properties)."""
    from python_models.config import get_settings

    declared = get_settings().sensitive_properties
    return tuple(dict.fromkeys((*PII_PROPERTY_KEYS, *declared)))
