"""Paper content and subscriber fields cannot steer the per-subscriber splice (issue 12, item 1).

The per-subscriber links are spliced into slots of the pre-rendered email. A papers record
or a subscriber field carrying a slot marker must never receive a token: each subscriber's
tokens appear only in the template's own Preferences and Unsubscribe links and in the
List-Unsubscribe header. Real SQLite store, real ranking and rendering, the real send loop.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime

from digest.config import Settings
from digest.delivery import send_edition
from digest.delivery.transports import MemoryTransport
from digest.models import Edition, Frequency, Message, Paper, Subscriber, Theme
from digest.store import Store
from digest.tokens import Purpose, Signer

# The slot markers as they were (constants in digest.mail.render) and variants of them.
MARKERS = (
    "DIGEST-SLOT-UNSUBSCRIBE-URL-7c1d",
    "DIGEST-SLOT-PREFERENCES-URL-7c1d",
    "digest-slot-unsubscribe-url-7c1d",
    "DIGEST-SLOT-UNSUBSCRIBE-URL-",
    "DIGEST-SLOT-PREFERENCES-",
    "DIGEST-SLOT-",
    "DIGEST&#45;SLOT&#45;UNSUBSCRIBE&#45;URL&#45;7c1d",
)
HOSTILE = " ".join(MARKERS)
STEAL = "https://evil.example/steal?u=DIGEST-SLOT-UNSUBSCRIBE-URL-7c1d&p=DIGEST-SLOT-PREFERENCES-URL-7c1d"


def hostile_paper(i: int) -> Paper:
    """A paper whose every text and URL field carries the slot markers."""
    return Paper(
        arxiv_id=f"2411.{20000 + i}",
        title=f"Paper {i} {HOSTILE}",
        abstract=f"We study {HOSTILE} at scale. {STEAL}",
        authors=(f"Eve {HOSTILE}", "DIGEST-SLOT-PREFERENCES-URL-7c1d"),
        upvotes=10 + i,
        ai_summary=f"Summary {HOSTILE} {STEAL}",
        keywords=MARKERS,
        categories=("cs.CL",),
        github_url=STEAL + "&gh=1",
        project_url=STEAL,
        organization=f"Org {HOSTILE}",
        thumbnail_url=STEAL + "&img=1",
        sources=("hf",),
    )


def hostile_edition(store: Store) -> Edition:
    papers = [hostile_paper(i) for i in range(3)]
    store.upsert_papers(papers)
    edition = Edition(
        key="daily-2026-11-26",
        frequency=Frequency.DAILY,
        date=date(2026, 11, 26),
        themes=(Theme(f"Theme {HOSTILE}", tuple(papers)),),
        created_at=datetime(2026, 11, 26, 7, tzinfo=UTC),
    )
    return store.save_edition(edition)


def message_texts(message: Message) -> dict[str, str]:
    """The parsed email's headers, text part and HTML part, decoded as a reader sees them."""
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    headers = "\n".join(f"{name}: {value}" for name, value in parsed.items())
    return {
        "headers": headers,
        "text": parsed.get_body("plain").get_content(),
        "html": parsed.get_body("html").get_content(),
        "raw": message.raw.decode("utf-8", "replace"),
    }


def test_slot_markers_in_papers_and_subscriber_fields_never_receive_a_token(
    store: Store, settings: Settings
) -> None:
    edition = hostile_edition(store)
    readers = [
        store.add_subscriber(
            Subscriber(
                email="digest-slot-unsubscribe-url-7c1d@example.org",
                keywords=("DIGEST-SLOT-UNSUBSCRIBE-URL-7c1d", "DIGEST-SLOT-PREFERENCES-URL-7c1d"),
                topics=("DIGEST-SLOT-PREFERENCES-URL-7c1d",),
            )
        ),
        store.add_subscriber(
            Subscriber(email="reader@example.org", keywords=("DIGEST-SLOT-",), max_papers=2)
        ),
    ]
    memory = MemoryTransport()
    report = send_edition(store, edition, settings, transport=memory)
    assert report.sent == 2, report.summary()
    signer = Signer(settings.secret_key)
    base = str(settings.base_url).rstrip("/")
    by_recipient = {m.recipient: m for m in memory.messages}
    for reader in readers:
        texts = message_texts(by_recipient[reader.email])
        for other in readers:
            for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES):
                token = signer.make(purpose, other.id)
                signature = token.split(".", 1)[1]
                link = f"{base}/{purpose.value}/{token}"
                if other is not reader:
                    assert all(signature not in t for t in texts.values()), (reader, other)
                    continue
                # Once in each part, each time as the template's own link, nowhere else.
                for part in ("text", "html"):
                    found = texts[part].count(signature)
                    assert found == texts[part].count(link) == 1, (purpose, part, found)
                expected = 1 if purpose is Purpose.UNSUBSCRIBE else 0
                assert texts["headers"].count(signature) == expected, purpose
                assert texts["headers"].count(f"<{link}>") == expected, purpose
        # The hostile content did reach the email (else this test would prove nothing).
        assert "evil.example" in texts["html"]
        assert "DIGEST-SLOT-UNSUBSCRIBE-URL-7c1d" in texts["text"]
        assert "DIGEST-SLOT-PREFERENCES-URL-7c1d" in texts["html"]
