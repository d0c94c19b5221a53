"""Settings: every ``DIGEST_*`` environment variable, validated once at start-up.

``settings`` holds the model and its rules; ``reference`` writes `.env.example` and the
README's table from it.
"""

from digest.config.settings import (
    Approval,
    ConfigError,
    EmptyEdition,
    LogFormat,
    Settings,
    SmtpSecurity,
    TransportKind,
    load_settings,
    settings_warnings,
)

__all__ = [
    "Approval",
    "ConfigError",
    "EmptyEdition",
    "LogFormat",
    "Settings",
    "SmtpSecurity",
    "TransportKind",
    "load_settings",
    "settings_warnings",
]
