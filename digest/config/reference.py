"""The settings' reference, generated from the Settings model: `.env.example` and the README table.

Regenerate both with ``python -m digest.config > .env.example`` and
``python -m digest.config --table`` (pasted between the README's settings-table markers).
"""

from __future__ import annotations

from digest.config.settings import SECRETS, Settings

__all__ = ["env_example", "settings_table"]


def _default_text(name: str) -> str:
    info = Settings.model_fields[name]
    value = info.get_default(call_default_factory=True)
    if name in SECRETS or value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def _variables() -> list[tuple[str, str, str]]:
    """(variable, default as text, description) for every setting, in declaration order."""
    return [
        (info.alias or f"DIGEST_{name.upper()}", _default_text(name), info.description or "")
        for name, info in Settings.model_fields.items()
    ]


def env_example() -> str:
    """The text of `.env.example`: every setting with a comment and its default, commented out.

    Commented out so that a copy sets nothing by itself: a copied ``DIGEST_TRANSPORT=file``
    would otherwise look like the admin's choice next to the SMTP settings they fill in.
    """
    lines = [
        "# digest settings. Copy to .env (or /etc/digest/digest.env) and edit; the environment",
        "# wins over this file. Each line shows the default; remove its # to set a value.",
        "",
    ]
    for variable, default, description in _variables():
        lines += [f"# {description}", f"#{variable}={default}", ""]
    return "\n".join(lines)


def settings_table() -> str:
    """The README's table of settings, in Markdown."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for variable, default, description in _variables():
        shown = f"`{default}`" if default else "(blank)"
        escaped = description.replace("|", "\\|")
        rows.append(f"| `{variable}` | {shown} | {escaped} |")
    return "\n".join(rows) + "\n"
