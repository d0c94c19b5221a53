"""Logs: one line per event, key=value or JSON, never a secret or a full address."""

from __future__ import annotations

import io
import json
import logging

import pytest
from conftest import TEST_SECRET

from digest.config import load_settings
from digest.logs import event, mask_email, setup_logging
from digest.tokens import Purpose, Signer


@pytest.fixture
def capture():
    """Install digest's handler on a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    buffer = io.StringIO()

    def install(**kwargs: object) -> io.StringIO:
        setup_logging(stream=buffer, **kwargs)
        return buffer

    yield install
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[1]:
        root.addHandler(handler)
    root.setLevel(saved[0])


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_key_value_lines_carry_the_event_and_its_fields(capture) -> None:
    out = capture(fmt="kv")
    log = logging.getLogger("digest.test")
    event(log, "run.finished", edition="daily-2026-11-26", sent=12, detail="two words")
    log.info("plain", extra={"paused": False, "note": 'say "hi"\nthen leave'})
    first, second = lines(out)
    assert " level=info logger=digest.test event=run.finished " in first
    assert first.endswith('edition=daily-2026-11-26 sent=12 detail="two words"')
    assert first.startswith("ts=20")
    # A newline inside a value is escaped: still one line per event.
    assert 'paused=false note="say \\"hi\\"\\nthen leave"' in second


def test_json_lines_parse_and_keep_types(capture) -> None:
    out = capture(fmt="json")
    event(logging.getLogger("digest.test"), "delivery.sent", subscriber=42, name="clash")
    (line,) = lines(out)
    record = json.loads(line)
    assert record["event"] == "delivery.sent"
    assert record["subscriber"] == 42
    assert record["name_"] == "clash"  # a LogRecord attribute name does not crash the helper
    assert record["level"] == "info" and record["logger"] == "digest.test"


def test_settings_choose_format_and_level(capture) -> None:
    settings = load_settings(log_format="json", log_level="WARNING")
    out = capture(settings=settings)
    log = logging.getLogger("digest.test")
    log.info("hidden")
    log.warning("shown")
    assert [json.loads(x)["event"] for x in lines(out)] == ["shown"]


def test_calling_setup_twice_still_gives_one_line_per_event(capture) -> None:
    capture(fmt="kv")
    out = capture(fmt="kv")
    logging.getLogger("digest.test").info("once")
    assert len([x for x in lines(out) if "event=once" in x]) == 1


def test_addresses_are_masked_everywhere(capture) -> None:
    out = capture(fmt="json")
    log = logging.getLogger("digest.test")
    log.info("sending to %s", "jane.doe@example.org")
    event(log, "subscriber.added", email="Jane.Doe@Example.org", to=["bob@example.com"])
    text = out.getvalue()
    assert "jane.doe@" not in text.lower() and "bob@" not in text
    first, second = (json.loads(x) for x in lines(out))
    assert first["event"] == "sending to j***@example.org"
    assert second["email"] == "J***@Example.org" and second["to"] == ["b***@example.com"]
    assert mask_email("x@y.io") == "x***@y.io"


def test_tokens_secrets_and_passwords_never_reach_the_log(capture) -> None:
    out = capture(fmt="kv")
    token = Signer(TEST_SECRET).make(Purpose.UNSUBSCRIBE, 7)
    log = logging.getLogger("digest.test")
    log.info("link https://digest.example.org/unsubscribe/%s", token)
    log.info("bare token %s in text", token)
    log.info("connecting with password=hunter2 secret_key: %s", TEST_SECRET)
    log.info("database postgresql+psycopg://digest:s3cr3t-pw@db:5432/digest")
    event(log, "smtp.login", smtp_password="hunter2", secret_key=TEST_SECRET, user="mailer")
    event(log, "hex", value="0123456789abcdef0123456789abcdef01234567")
    text = out.getvalue()
    for secret in (token, TEST_SECRET, "hunter2", "s3cr3t-pw", "0123456789abcdef0123456789abcdef"):
        assert secret not in text
    assert "/unsubscribe/[redacted]" in text
    assert "postgresql+psycopg://digest:***@db:5432/digest" in text
    assert "user=mailer" in text
    # What is not secret stays readable.
    event(log, "run.start", edition="daily-2026-11-26", logger_name="digest.schedule.run")
    assert "edition=daily-2026-11-26" in lines(out)[-1]


def test_an_exception_is_one_line_and_redacted(capture) -> None:
    out = capture(fmt="kv")
    try:
        raise RuntimeError("login failed for admin@example.org with password=hunter2")
    except RuntimeError:
        logging.getLogger("digest.test").exception("smtp.failed")
    (line,) = lines(out)
    assert "event=smtp.failed" in line
    assert "a***@example.org" in line and "hunter2" not in line
    assert "Traceback" not in line


def test_other_libraries_records_are_redacted_too(capture) -> None:
    out = capture(fmt="kv")
    logging.getLogger("uvicorn.error").warning(
        "client jane@example.org sent %r", "x", extra={"color_message": "\x1b[36mx\x1b[0m"}
    )
    assert "j***@example.org" in out.getvalue() and "jane@" not in out.getvalue()
    assert "\x1b" not in out.getvalue() and "color_message" not in out.getvalue()
