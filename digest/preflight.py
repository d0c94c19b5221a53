"""What `digest check` verifies before going live and in monitoring: one result per check.

Every check looks and changes nothing: the database is opened read-only and never migrated,
the SMTP server is asked for EHLO, TLS, AUTH and a MAIL FROM that is then reset, and no email
leaves unless a test address is given. Secrets are never part of a result.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date

from digest.config import Settings, TransportKind
from digest.errors import DigestError
from digest.mail.dkim import DkimSigner
from digest.mail.render import Renderer
from digest.mail.templates import compile_all
from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.store import Store
from digest.themes.rank import full_selection
from digest.tokens import (
    DEMO_SECRET_KEY,
    LINK_KEY_META,
    MIN_SECRET_LENGTH,
    generate_secret,
    key_fingerprint,
)

__all__ = [
    "FAIL",
    "OK",
    "SKIP",
    "CheckResult",
    "check_base_url",
    "check_database",
    "check_dkim",
    "check_secret",
    "check_smtp",
    "check_templates",
    "run_checks",
    "send_test_email",
]

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, ok / fail / skip, one line saying what was found."""

    name: str
    status: str
    detail: str
    data: dict[str, str] = field(default_factory=dict)  # e.g. the DKIM record to publish


def run_checks(settings: Settings, *, send_to: str | None = None) -> list[CheckResult]:
    """Every check, in the order an admin fixes things; with ``send_to``, one test email too."""
    store = Store(settings.database_url)
    try:
        database = check_database(store)
        results = [
            database,
            check_secret(settings, store if database.status == OK else None),
            check_templates(settings),
            check_dkim(settings),
            check_smtp(settings),
            check_base_url(settings),
        ]
    finally:
        store.close()
    if send_to:
        smtp_failed = any(r.name == "smtp" and r.status == FAIL for r in results)
        results.append(send_test_email(settings, send_to, smtp_failed=smtp_failed))
    return results


def check_database(store: Store) -> CheckResult:
    """Reachable, migrated to the newest revision, and digest's own (never migrated here)."""
    url = store.display_url
    try:
        state = store.schema_state()
    except DigestError as exc:
        return CheckResult("database", FAIL, str(exc))
    if state.missing:
        return CheckResult("database", FAIL, f"{url} does not exist; `digest init` creates it")
    if state.strangers:
        shown = ", ".join(state.tables[:3]) + (", ..." if len(state.tables) > 3 else "")
        return CheckResult(
            "database", FAIL,
            f"{url} is not a digest database (other tables: {shown}; no digest schema "
            "revision); digest leaves it alone: point DIGEST_DATABASE_URL elsewhere",
        )  # fmt: skip
    if state.revision is None:
        return CheckResult("database", FAIL, f"{url} is empty; `digest init` creates the schema")
    if not state.current:
        return CheckResult(
            "database", FAIL,
            f"{url} is at revision {state.revision}, this digest needs {state.head}: "
            "`digest init` upgrades it (or, if the database is newer, upgrade digest)",
        )  # fmt: skip
    return CheckResult("database", OK, f"{url} revision {state.revision}")


def check_secret(settings: Settings, store: Store | None) -> CheckResult:
    """Set (or kept by `digest demo`), long enough, and the key the links already sent need."""
    key, where = settings.secret_key, "DIGEST_SECRET_KEY"
    if not key and store is not None:
        key, where = store.get_meta(DEMO_SECRET_KEY) or "", "the key `digest demo` kept"
    if not key:
        return CheckResult("secret", FAIL, "DIGEST_SECRET_KEY is not set: links cannot be signed")
    if len(key) < MIN_SECRET_LENGTH:
        return CheckResult(
            "secret", FAIL, f"{where} has {len(key)} characters; it needs {MIN_SECRET_LENGTH}+"
        )
    signed_with = store.get_meta(LINK_KEY_META) if store is not None else None
    if signed_with is not None and signed_with != key_fingerprint(key):
        return CheckResult(
            "secret", FAIL,
            f"{where} is not the key that signed the links of the emails sent last: their "
            "unsubscribe and preferences links fail; configure that key again (the web app "
            "and the sender must share one key)",
        )  # fmt: skip
    known = "the links sent so far were signed with it" if signed_with else "no email sent yet"
    return CheckResult("secret", OK, f"{where}, {len(key)} characters; {known}")


def _sample_edition() -> Edition:
    papers = tuple(
        Paper(arxiv_id=f"2611.0000{i}", title=f"A sample paper {i}", abstract="A sample.",
              upvotes=10 - i, sources=("hf",))
        for i in (1, 2)
    )  # fmt: skip
    return Edition(
        "daily-2026-11-26", Frequency.DAILY, date(2026, 11, 26), (Theme("Sample", papers),)
    )


def check_templates(settings: Settings) -> CheckResult:
    """Every template compiles, and a sample digest, confirmation and welcome email render."""
    where = f"with overrides from {settings.templates_dir}" if settings.templates_dir else "shipped"
    if not settings.secret_key:  # the sample's links need some key; this one is thrown away
        settings = settings.model_copy(update={"secret_key": generate_secret()})
    try:
        count = compile_all(settings.templates_dir)
        renderer = Renderer(settings)
        reader = Subscriber(email="reader@example.org", id=1)
        edition = _sample_edition()
        renderer.prepare_digest(edition, full_selection(edition)).for_subscriber(reader)
        renderer.confirmation(reader, 1)
        renderer.welcome(reader)
    except DigestError as exc:
        return CheckResult("templates", FAIL, str(exc))
    return CheckResult(
        "templates", OK, f"{count} templates compile ({where}); sample emails render"
    )


def check_dkim(settings: Settings) -> CheckResult:
    """The key readable and valid, and the DNS record to publish for it."""
    if settings.dkim_key_file is None:
        return CheckResult("dkim", SKIP, "DIGEST_DKIM_KEY_FILE not set: emails are not signed")
    try:
        record = DkimSigner.from_settings(settings).record()
    except DigestError as exc:
        return CheckResult("dkim", FAIL, str(exc))
    published = f'publish: {record.name} TXT "{record.value}"'
    data = {"dns_name": record.name, "dns_txt": record.value}
    if record.bits < 1024:
        return CheckResult(
            "dkim", FAIL, f"{record.bits}-bit key: receivers ignore keys under 1024 bits", data
        )
    return CheckResult("dkim", OK, f"{record.bits}-bit RSA key; {published}", data)


def check_smtp(settings: Settings) -> CheckResult:
    """Connect, EHLO, STARTTLS or TLS with the certificate verified, AUTH, MAIL FROM; no DATA."""
    if settings.transport is not TransportKind.SMTP:
        where = f"to {settings.outbox}" if settings.transport is TransportKind.FILE else "nowhere"
        return CheckResult(
            "smtp", SKIP, f"DIGEST_TRANSPORT={settings.transport}: emails go {where}"
        )
    from digest.delivery.transports import SmtpTransport

    try:
        transport = SmtpTransport.from_settings(settings)
        return CheckResult("smtp", OK, asyncio.run(transport.check()))
    except DigestError as exc:
        return CheckResult("smtp", FAIL, str(exc))


def check_base_url(settings: Settings, timeout: float = 10.0) -> CheckResult:
    """``GET {DIGEST_BASE_URL}/healthz`` answers 200 (the links in emails lead somewhere)."""
    url = str(settings.base_url).rstrip("/") + "/healthz"
    # A plain GET with the default TLS checks: no retries, so a dead web app fails at once.
    request = urllib.request.Request(url, headers={"User-Agent": "digest check"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckResult("base_url", FAIL, f"{url}: cannot connect: {reason}")
    if status != 200:
        return CheckResult("base_url", FAIL, f"{url} answered {status}, not 200")
    return CheckResult("base_url", OK, f"{url} answered 200")


def send_test_email(settings: Settings, recipient: str, *, smtp_failed: bool) -> CheckResult:
    """One test email to ``recipient`` through the configured transport, DKIM-signed if set."""
    if smtp_failed:
        return CheckResult("send", SKIP, "not sent: the SMTP check failed")
    from digest.delivery import send_message
    from digest.logs import mask_email

    try:
        message = Renderer(settings).notice(
            recipient,
            f"{settings.name}: test email from `digest check`",
            ["This is a test: if you read it, digest can send to this address.",
             "Look at its headers to see whether SPF, DKIM and DMARC passed."],
        )  # fmt: skip
        how = send_message(settings, message, folder="check")
    except DigestError as exc:
        return CheckResult("send", FAIL, f"to {mask_email(recipient)}: {exc}")
    return CheckResult("send", OK, f"a test email to {mask_email(recipient)}: {how}")
