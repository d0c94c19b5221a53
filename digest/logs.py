"""Logging: one line per event, as key=value or JSON, with addresses masked and secrets dropped.

Modules log through the standard library::

    log = logging.getLogger(__name__)
    log.info("run.finished", extra={"edition": key, "sent": 12})
    # or, shorter and safe against clashes with LogRecord's own attribute names:
    event(log, "run.finished", edition=key, sent=12)

`setup_logging(settings)` (called once by the CLI) installs the handler on the root logger, so
third-party libraries' records get the same format and the same redaction.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "JsonFormatter",
    "KeyValueFormatter",
    "RedactingFilter",
    "event",
    "mask_email",
    "redact",
    "setup_logging",
]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Extras libraries add for their own formatters (uvicorn's ANSI-coloured copy of the message).
_IGNORED_EXTRAS = frozenset({"color_message"})

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# key=value / key: value pairs inside free text whose key names a secret.
_SECRET_PAIR = re.compile(
    r"(?i)\b((?:smtp_)?password|passwd|secret(?:_key)?|api_?key|token|authorization|cookie)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)
# Passwords in URLs: scheme://user:password@host.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s]+(@)", re.I)
# Token links in emails: /confirm/<token>, /unsubscribe/<token>, /preferences/<token>.
_TOKEN_PATH = re.compile(r"(/(?:confirm|unsubscribe|preferences)/)[^/\s?#\"']+")
# Anything shaped like a signed token or generated secret: a long base64url run (dots allowed,
# as in itsdangerous tokens) mixing upper case, lower case and digits, or a long hex string.
_TOKENISH = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-.]{24,}(?![A-Za-z0-9_\-])")
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
# Names of `extra` fields whose values are never logged.
_SECRET_KEY_NAME = re.compile(
    r"(?i)(password|passwd|secret|token|api_?key|authorization|cookie|credential)"
)
REDACTED = "[redacted]"


def mask_email(address: str) -> str:
    """``jane@example.org`` -> ``j***@example.org``: enough to tell addresses apart in a log."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", address)


def _tokenish(match: re.Match[str]) -> str:
    text = match.group(0)
    mixed = (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )
    return REDACTED if mixed else text


def redact(text: str) -> str:
    """``text`` with email addresses masked and anything secret-looking replaced."""
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _TOKEN_PATH.sub(rf"\1{REDACTED}", text)
    text = mask_email(text)
    text = _HEX.sub(REDACTED, text)
    return _TOKENISH.sub(_tokenish, text)


def _clean(key: str, value: Any) -> Any:
    if _SECRET_KEY_NAME.search(key):
        return REDACTED
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple | set):
        return [_clean("", v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Masks addresses and drops secrets in a record's message, arguments and extra fields.

    Installed on the handler, so it covers every library's records, not only digest's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's bad %-format: keep the raw text
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key in _extra_keys(record):
            setattr(record, key, _clean(key, getattr(record, key)))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.digest_error = redact(f"{type(exc).__name__}: {exc}")
            # The traceback could quote a secret from a local variable's repr; keep one line.
            record.exc_info = None
            record.exc_text = None
        return True


def _extra_keys(record: logging.LogRecord) -> list[str]:
    return [
        k
        for k in vars(record)
        if k not in _RECORD_ATTRS and k not in _IGNORED_EXTRAS and not k.startswith("_")
    ]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    for key in _extra_keys(record):
        name = "error" if key == "digest_error" else key
        fields[name] = getattr(record, key)
    return fields


def _kv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not re.search(r"[\s\"=\\]", text):
        return text
    return json.dumps(text, ensure_ascii=False)  # quoted, newlines escaped: still one line


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=digest.schedule event=run.start edition=daily-2026-11-26``."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


def event(
    logger: logging.Logger, name: str, /, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log the event ``name`` with ``fields`` as its key=value pairs.

    Field names that clash with LogRecord attributes (``name``, ``args``, ...) get a ``_``
    suffix instead of raising KeyError as ``extra=`` would.
    """
    safe = {(k + "_" if k in _RECORD_ATTRS else k): v for k, v in fields.items()}
    logger.log(level, name, extra=safe)


_HANDLER_MARK = "_digest_handler"


def setup_logging(
    settings: object | None = None,
    *,
    level: str | None = None,
    fmt: str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as one redacted line; idempotent.

    ``level`` and ``fmt`` default to ``settings.log_level`` and ``settings.log_format``
    (``kv`` or ``json``). Calling it again replaces the handler it installed before.
    """
    level = level or getattr(settings, "log_level", None) or "INFO"
    fmt = str(fmt or getattr(settings, "log_format", None) or "kv")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(str(level).upper())
    # Alembic, APScheduler and uvicorn are chatty at INFO; their warnings still come through.
    chatty = ("alembic", "apscheduler.scheduler", "apscheduler.executors.default", "uvicorn.access")
    for name in chatty:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
