"""One subscriber at a time, for the CLI and the web pages: add, confirm, pause, remove, delete.

Addresses are validated with email-validator and lower-cased, so one person is one row.
Deleted addresses survive only as a salted hash on the suppression list; the salt is derived
from DIGEST_SECRET_KEY with HMAC, so the hashes are useless without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.logs import event
from digest.models import Frequency, Message, Subscriber, SubscriberStatus
from digest.store import AlreadyExists
from digest.themes.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.delivery.transports import Transport
    from digest.mail.render import Renderer
    from digest.store import Store

__all__ = [
    "add",
    "can_pause",
    "can_resume",
    "check_keywords",
    "check_max_papers",
    "confirmation_for",
    "delete",
    "email_hash",
    "erase",
    "known_topics",
    "normalize_email",
    "parse_frequency",
    "pause",
    "remove",
    "request_subscription",
    "resolve_topics",
    "resume",
    "send_confirmation",
    "split_list",
]

log = logging.getLogger(__name__)

# Topics and keywords in one CSV cell: "agents; robotics" or "agents|robotics".
LIST_SEPARATORS = (";", "|")
# Caps on what a subscriber (or an import file) can store: a keyword is a word or a phrase,
# and each one is matched against every paper of every edition.
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 100
MAX_PAPERS_LIMIT = 1000  # papers per email a row may ask for; DIGEST_MAX_PAPERS caps it again


def normalize_email(raw: str) -> str:
    """A valid address in lower case; DigestError when it is not an address.

    Lower-casing the local part too is what users expect ("Jane@X" and "jane@x" are one person).
    """
    text = (raw or "").strip()
    if not text:
        raise DigestError("no email address given")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise DigestError(f"not a valid email address: {exc}") from None
    return result.normalized.lower()


def email_hash(secret_key: str, email: str) -> str:
    """The salted hash under which an address sits on the suppression list.

    salt = HMAC(secret, "digest.suppression"); hash = HMAC-SHA256(salt, address).
    """
    salt = hmac.new(secret_key.encode(), b"digest.suppression", hashlib.sha256).digest()
    return hmac.new(salt, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def split_list(text: str | None) -> list[str]:
    """``"agents; vision|robotics"`` -> ``["agents", "vision", "robotics"]``."""
    if not text:
        return []
    for sep in LIST_SEPARATORS[1:]:
        text = text.replace(sep, LIST_SEPARATORS[0])
    return [part.strip() for part in text.split(LIST_SEPARATORS[0]) if part.strip()]


def check_keywords(keywords: Iterable[str]) -> tuple[str, ...]:
    """Keywords stripped, blanks and repeats dropped; DigestError beyond the caps.

    At most MAX_KEYWORDS of at most MAX_KEYWORD_CHARS characters each: refused, not cut, so
    nobody is left wondering why their keyword never matches.
    """
    kept = tuple(dict.fromkeys(k.strip() for k in keywords if k.strip()))
    longest = max((len(k) for k in kept), default=0)
    if longest > MAX_KEYWORD_CHARS:
        raise DigestError(
            f"a keyword can be at most {MAX_KEYWORD_CHARS} characters (got {longest:,})"
        )
    if len(kept) > MAX_KEYWORDS:
        raise DigestError(f"at most {MAX_KEYWORDS} keywords (got {len(kept):,})")
    return kept


def check_max_papers(value: int | None) -> int | None:
    """Papers per email as a subscriber asks (None: the default); DigestError past the cap."""
    if value is not None and not 0 < value <= MAX_PAPERS_LIMIT:
        raise DigestError(f"max_papers must be at most {MAX_PAPERS_LIMIT:,} (got {value:,})")
    return value


def known_topics(settings: Settings) -> list[str]:
    """The topic names subscribers can choose, from the taxonomy file."""
    return list(load_taxonomy(settings.taxonomy_file).topics)


def resolve_topics(requested: Iterable[str], known: Sequence[str]) -> tuple[str, ...]:
    """Map requested topics to their taxonomy spelling (case-insensitive); DigestError if unknown."""
    by_key = {name.casefold(): name for name in known}
    chosen: list[str] = []
    unknown: list[str] = []
    for name in requested:
        match = by_key.get(name.strip().casefold())
        if match is None:
            unknown.append(name)
        elif match not in chosen:
            chosen.append(match)
    if unknown:
        named = ", ".join(repr(name[:60]) for name in unknown[:3])  # never echo a huge value
        raise DigestError(f"unknown topic {named} (known: {', '.join(known) or 'none'})")
    return tuple(chosen)


def parse_frequency(text: str | None) -> Frequency:
    """``daily`` or ``weekly`` (blank: daily); DigestError otherwise."""
    value = (text or "").strip().lower() or Frequency.DAILY.value
    try:
        return Frequency(value)
    except ValueError:
        raise DigestError(f"frequency must be daily or weekly, not {text!r}") from None


# --- one address -------------------------------------------------------------------------------


def add(
    store: Store,
    secret_key: str,
    email: str,
    *,
    topics: Sequence[str] = (),
    keywords: Sequence[str] = (),
    frequency: Frequency = Frequency.DAILY,
    confirmed: bool = True,
    **profile: object,
) -> Subscriber:
    """Add one subscriber as an admin: active, or unconfirmed when double opt-in is wanted.

    ``profile`` takes further Subscriber fields (max_papers, likes, blend, follows, hour...),
    already checked (digest.subscribers.reader.profile_fields). Refuses suppressed (deleted)
    addresses and addresses already on the list.
    """
    address = normalize_email(email)
    if store.is_suppressed(email_hash(secret_key, address)):
        raise DigestError(f"{address} was deleted and is on the suppression list")
    existing = store.find_subscriber(address)
    if existing is not None:
        raise DigestError(f"{address} is already on the list ({existing.status})")
    status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.UNCONFIRMED
    subscriber = Subscriber(
        email=address,
        status=status,
        topics=tuple(topics),
        keywords=check_keywords(keywords),
        frequency=frequency,
        **profile,  # type: ignore[arg-type]
    )
    try:
        added = store.add_subscriber(subscriber)
    except AlreadyExists:  # added by someone else a moment ago
        raise DigestError(f"{address} is already on the list") from None
    event(log, "subscriber.added", subscriber=added.id, status=str(status))
    return added


def request_subscription(
    store: Store,
    secret_key: str,
    email: str,
    *,
    topics: Sequence[str] = (),
    frequency: Frequency = Frequency.DAILY,
) -> Subscriber | None:
    """A visitor asks to subscribe: the subscriber to send a confirmation to, or None.

    New addresses are added unconfirmed; unconfirmed and unsubscribed ones get a fresh
    confirmation; active, paused, bounced and suppressed ones get nothing (and their settings
    are not touched, since the visitor has not proved they own the address). The web page
    answers the same in every case.
    """
    address = normalize_email(email)
    if store.is_suppressed(email_hash(secret_key, address)):
        return None
    existing = store.find_subscriber(address)
    if existing is None:
        try:
            return store.add_subscriber(
                Subscriber(
                    email=address,
                    status=SubscriberStatus.UNCONFIRMED,
                    topics=tuple(topics),
                    frequency=frequency,
                )
            )
        except AlreadyExists:  # a double submit raced us: the first one sends
            return None
    if existing.status in (SubscriberStatus.UNCONFIRMED, SubscriberStatus.UNSUBSCRIBED):
        return store.update_preferences(existing.id, topics=topics, frequency=frequency)
    return None


def confirmation_for(store: Store, subscriber: Subscriber, renderer: Renderer) -> Message:
    """The confirmation email, its link carrying a fresh nonce (older links stop working)."""
    nonce = store.next_confirm_nonce(subscriber.id)  # type: ignore[arg-type]
    return renderer.confirmation(subscriber, nonce)


async def send_confirmation(
    store: Store, subscriber: Subscriber, *, renderer: Renderer, transport: Transport
) -> None:
    """Email a confirmation link carrying a fresh nonce (older links stop working)."""
    await transport.send(confirmation_for(store, subscriber, renderer))
    event(log, "subscriber.confirmation_sent", subscriber=subscriber.id)


def remove(store: Store, email: str) -> Subscriber:
    """Unsubscribe an address (kept on the list as unsubscribed); DigestError if unknown."""
    address = normalize_email(email)
    subscriber = store.find_subscriber(address)
    if subscriber is None:
        raise DigestError(f"{address} is not on the list")
    store.unsubscribe(subscriber.id)
    event(log, "subscriber.removed", subscriber=subscriber.id)
    return store.get_subscriber(subscriber.id)


def delete(store: Store, secret_key: str, email: str) -> bool:
    """Wipe an address's data and suppress it; True if it was on the list.

    An address that was not on the list is suppressed all the same, so it is never added.
    """
    address = normalize_email(email)
    digest_ = email_hash(secret_key, address)
    subscriber = store.find_subscriber(address)
    if subscriber is None:
        store.suppress(digest_, "deleted")
        return False
    erase(store, secret_key, subscriber)
    event(log, "subscriber.deleted", subscriber=subscriber.id)
    return True


def erase(store: Store, secret_key: str, subscriber: Subscriber) -> None:
    """Wipe ``subscriber``'s data, keeping only the salted hash on the suppression list."""
    store.delete_subscriber(subscriber.id, email_hash(secret_key, subscriber.email))  # type: ignore[arg-type]


def can_pause(subscriber: Subscriber) -> bool:
    """Only an active subscriber can pause."""
    return subscriber.status is SubscriberStatus.ACTIVE


def can_resume(subscriber: Subscriber) -> bool:
    """A paused or unsubscribed subscriber who once confirmed the address can come back."""
    return (
        subscriber.status in (SubscriberStatus.PAUSED, SubscriberStatus.UNSUBSCRIBED)
        and subscriber.confirmed_at is not None
    )


def pause(store: Store, subscriber_id: int) -> bool:
    """Pause an active subscriber (no emails until they resume); True if it changed."""
    return store.change_status(
        subscriber_id, SubscriberStatus.PAUSED, expect=[SubscriberStatus.ACTIVE]
    )


def resume(store: Store, subscriber: Subscriber) -> bool:
    """Make a paused or unsubscribed, once-confirmed subscriber active again; True if it changed."""
    return subscriber.confirmed_at is not None and store.change_status(
        subscriber.id,  # type: ignore[arg-type]
        SubscriberStatus.ACTIVE,
        expect=[SubscriberStatus.PAUSED, SubscriberStatus.UNSUBSCRIBED],
    )
