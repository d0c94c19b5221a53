"""The web app through Starlette's TestClient, on a real SQLite file, real renderer and
MemoryTransport: subscribe (CSRF, honeypot, rate limit, no enumeration), confirm, preferences,
one-click unsubscribe, archive, feed, health, and what reaches the logs."""

from __future__ import annotations

import logging
import re
import time
from datetime import date

import pytest
from defusedxml import ElementTree
from itsdangerous import URLSafeTimedSerializer
from starlette.testclient import TestClient

from digest import subscribers as subs
from digest.config import ConfigError, Settings
from digest.delivery.transports import MemoryTransport
from digest.mail.render import Renderer
from digest.models import (
    Edition,
    EditionStatus,
    Frequency,
    Message,
    Paper,
    Subscriber,
    SubscriberStatus,
    Theme,
)
from digest.store import Store
from digest.tokens import Purpose, Signer
from digest.web import create_app, text_on
from digest.web.guard import CSRF_COOKIE, ClientLimiter
from tests.conftest import TEST_SECRET

ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def client(settings: Settings, store: Store, transport: MemoryTransport) -> TestClient:
    roomy = settings.model_copy(update={"subscribe_rate": 100})  # the rate limit has its own test
    app = create_app(roomy, store, transport=transport, renderer=Renderer(settings))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def signer() -> Signer:
    return Signer(TEST_SECRET)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form has no CSRF field"
    return match.group(1)


def subscribe(client: TestClient, email: str, **fields: object):
    page = client.get("/")
    data = {"csrf": csrf_of(page.text), "email": email, "frequency": "daily", **fields}
    return client.post("/subscribe", data=data)


def confirm_with_button(client: TestClient, link: str):
    """Open a confirmation link and press its button, as the person does."""
    page = client.get(link)
    if page.status_code != 200:
        return page
    return client.post(link, data={"csrf": csrf_of(page.text)})


def link_in(message: Message, kind: str) -> str:
    match = re.search(rf"https://digest\.example\.org(/{kind}/[A-Za-z0-9_.\-]+)", message.text)
    assert match, f"no /{kind}/ link in the email"
    return match.group(1)


def add_active(store: Store, email: str = "ada@example.org", **kw: object) -> Subscriber:
    return store.add_subscriber(Subscriber(email=email, status=SubscriberStatus.ACTIVE, **kw))


def make_old_token(signer: Signer, purpose: Purpose, sid: int, nonce: int, seconds_ago: int):
    real = time.time
    try:
        time.time = lambda: real() - seconds_ago  # itsdangerous stamps tokens with time.time()
        return signer.make(purpose, sid, nonce)
    finally:
        time.time = real


# --- the subscribe page ----------------------------------------------------------------------


def test_home_is_a_plain_form_with_taxonomy_topics_and_a_csrf_cookie(
    client: TestClient, settings: Settings
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    topics = subs.known_topics(settings)
    assert topics, "the shipped taxonomy has topics"
    for topic in topics[:3]:
        assert f'value="{topic}"' in page.text.replace("&amp;", "&") or topic in page.text
    assert 'name="email"' in page.text and 'value="weekly"' in page.text
    assert 'name="website"' in page.text  # the honeypot
    assert "<script" not in page.text
    assert CSRF_COOKIE in page.headers["set-cookie"]
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/subscribe", follow_redirects=False).headers["location"] == "/"
    css = client.get("/style.css")
    assert css.status_code == 200 and settings.accent_color in css.text


def test_button_text_stays_readable_on_any_accent_colour() -> None:
    assert text_on("#ff6f00") == "#1f2328"  # dark text on the default orange
    assert text_on("#1a3a6b") == "#ffffff"  # white text on navy


def test_subscribe_sends_one_confirmation_and_nothing_else(
    client: TestClient, store: Store, transport: MemoryTransport, settings: Settings
) -> None:
    topic = subs.known_topics(settings)[0]
    answer = subscribe(client, "Ada@Example.org", topic=[topic], frequency="weekly")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    subscriber = store.find_subscriber("ada@example.org")
    assert subscriber.status is SubscriberStatus.UNCONFIRMED
    assert subscriber.topics == (topic,) and subscriber.frequency is Frequency.WEEKLY
    assert [m.recipient for m in transport.messages] == ["ada@example.org"]
    assert "/confirm/" in transport.messages[0].text
    # Unconfirmed subscribers are never selected for editions.
    assert list(store.iter_active_subscribers()) == []


def test_same_answer_for_new_existing_unsubscribed_and_deleted_addresses(
    client: TestClient, store: Store, transport: MemoryTransport
) -> None:
    add_active(store, "active@example.org")
    gone = add_active(store, "gone@example.org")
    store.unsubscribe(gone.id)
    subs.delete(store, TEST_SECRET, add_active(store, "deleted@example.org").email)
    subscribe(client, "pending@example.org")
    transport.messages.clear()

    answers = [
        subscribe(client, email)
        for email in (
            "new@example.org",
            "active@example.org",
            "gone@example.org",
            "pending@example.org",
            "deleted@example.org",
        )
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1, "the answer reveals whether an address is known"
    assert len({a.headers.get("set-cookie", "") for a in answers}) == 1
    # Who got mail: the new, the unsubscribed (re-opt-in) and the pending address; never the
    # active one (no spam to subscribers) nor the deleted one (suppressed).
    assert sorted(m.recipient for m in transport.messages) == [
        "gone@example.org",
        "new@example.org",
        "pending@example.org",
    ]
    assert store.find_subscriber("deleted@example.org") is None
    assert store.find_subscriber("active@example.org").status is SubscriberStatus.ACTIVE


def test_honeypot_gets_the_normal_answer_and_does_nothing(
    client: TestClient, store: Store, transport: MemoryTransport
) -> None:
    normal = subscribe(client, "human@example.org")
    trapped = subscribe(client, "bot@example.org", website="http://spam.example")
    assert trapped.status_code == 200 and trapped.text == normal.text
    assert store.find_subscriber("bot@example.org") is None
    assert [m.recipient for m in transport.messages] == ["human@example.org"]


@pytest.mark.parametrize("case", ["no cookie", "no field", "forged", "other cookie", "expired"])
def test_subscribe_without_a_valid_csrf_pair_is_refused(
    case: str, client: TestClient, store: Store, transport: MemoryTransport
) -> None:
    field = csrf_of(client.get("/").text)
    data = {"email": "csrf@example.org", "csrf": field}
    if case == "no cookie":
        client.cookies.clear()
    elif case == "no field":
        del data["csrf"]
    elif case == "forged":
        cookie = client.cookies[CSRF_COOKIE]
        data["csrf"] = URLSafeTimedSerializer("x" * 40, salt="digest.csrf").dumps(cookie)
    elif case == "other cookie":
        client.cookies.clear()
        client.cookies.set(CSRF_COOKIE, "another-browser-value-0123456789")
    elif case == "expired":
        serializer = URLSafeTimedSerializer(TEST_SECRET, salt="digest.csrf")
        real = time.time
        time.time = lambda: real() - 2 * 86400
        try:
            data["csrf"] = serializer.dumps(client.cookies[CSRF_COOKIE])
        finally:
            time.time = real
    answer = client.post("/subscribe", data=data)
    assert answer.status_code == 403 and "expired" in answer.text
    assert store.find_subscriber("csrf@example.org") is None
    assert transport.messages == []


def test_rate_limit_per_client(settings: Settings, store: Store) -> None:
    app = create_app(
        settings.model_copy(update={"subscribe_rate": 2}),
        store,
        transport=MemoryTransport(),
        renderer=Renderer(settings),
    )
    with TestClient(app) as client:
        assert subscribe(client, "one@example.org").status_code == 200
        assert subscribe(client, "two@example.org").status_code == 200
        third = subscribe(client, "three@example.org")
    assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
    assert store.find_subscriber("three@example.org") is None


def test_rate_limiter_window_and_clients_are_separate() -> None:
    limiter = ClientLimiter(2, window=600)
    assert limiter.hit("a", now=0) == 0 and limiter.hit("a", now=1) == 0
    assert limiter.hit("a", now=2) == pytest.approx(598)
    assert limiter.hit("b", now=2) == 0  # another client is not affected
    assert limiter.hit("a", now=601) == 0  # the oldest hit has left the window


def test_bad_address_redisplays_the_form_escaped(client: TestClient, store: Store) -> None:
    answer = subscribe(client, '"><script>alert(1)</script>')
    assert answer.status_code == 400
    assert "Not a valid email address" in answer.text
    assert "<script>alert" not in answer.text and "&lt;script&gt;" in answer.text
    assert store.list_subscribers() == []


# --- confirm ---------------------------------------------------------------------------------


def test_confirm_link_works_once_then_welcomes(
    client: TestClient, store: Store, transport: MemoryTransport
) -> None:
    subscribe(client, "ada@example.org")
    link = link_in(transport.messages[0], "confirm")
    shown = client.get(link)
    assert shown.status_code == 200 and "Confirm my subscription" in shown.text
    assert store.find_subscriber("ada@example.org").status is SubscriberStatus.UNCONFIRMED
    first = client.post(link, data={"csrf": csrf_of(shown.text)})
    assert first.status_code == 200 and "subscribed" in first.text
    assert store.find_subscriber("ada@example.org").status is SubscriberStatus.ACTIVE
    assert [m.subject for m in transport.messages][-1].startswith("Welcome")
    assert 'href="/preferences/' in first.text
    again = client.get(link)
    assert again.status_code == 410 and "already used" in again.text
    replay = client.post(link, data={"csrf": csrf_of(shown.text)})
    assert replay.status_code == 410 and "already used" in replay.text
    assert len(transport.messages) == 2  # no second welcome


def test_a_newer_confirmation_replaces_the_older_link(
    client: TestClient, store: Store, transport: MemoryTransport
) -> None:
    subscribe(client, "ada@example.org")
    subscribe(client, "ada@example.org")
    old, new = (link_in(m, "confirm") for m in transport.messages)
    assert client.get(old).status_code == 410
    assert confirm_with_button(client, new).status_code == 200
    assert store.find_subscriber("ada@example.org").status is SubscriberStatus.ACTIVE


def test_an_address_gets_at_most_three_confirmations_a_day(
    client: TestClient, transport: MemoryTransport
) -> None:
    answers = [subscribe(client, "target@example.org") for _ in range(5)]
    assert len({a.text for a in answers}) == 1
    assert len(transport.messages) == 3


def test_expired_tampered_and_cross_purpose_confirm_tokens(
    client: TestClient, store: Store, signer: Signer
) -> None:
    sub = store.add_subscriber(
        Subscriber(email="x@example.org", status=SubscriberStatus.UNCONFIRMED)
    )
    nonce = store.next_confirm_nonce(sub.id)
    expired = make_old_token(signer, Purpose.CONFIRM, sub.id, nonce, 49 * 3600)
    answer = client.get(f"/confirm/{expired}")
    assert answer.status_code == 410 and "expired" in answer.text
    good = signer.make(Purpose.CONFIRM, sub.id, nonce)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert client.get(f"/confirm/{tampered}").status_code == 400
    other_key = Signer("another-secret-key-0123456789-abcdefgh").make(
        Purpose.CONFIRM, sub.id, nonce
    )
    assert client.get(f"/confirm/{other_key}").status_code == 400
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES):
        assert client.get(f"/confirm/{signer.make(purpose, sub.id, nonce)}").status_code == 400
    assert store.get_subscriber(sub.id).status is SubscriberStatus.UNCONFIRMED
    young = make_old_token(signer, Purpose.CONFIRM, sub.id, nonce, 47 * 3600)
    assert confirm_with_button(client, f"/confirm/{young}").status_code == 200
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE


# --- preferences -----------------------------------------------------------------------------


def test_preferences_show_and_save(
    client: TestClient, store: Store, signer: Signer, settings: Settings
) -> None:
    topics = subs.known_topics(settings)
    sub = add_active(store, topics=(topics[0],))
    url = f"/preferences/{signer.make(Purpose.PREFERENCES, sub.id)}"
    page = client.get(url)
    assert page.status_code == 200
    assert "a***@example.org" in page.text and "ada@example.org" not in page.text
    assert re.search(rf'value="{re.escape(topics[0])}" checked', page.text.replace("&amp;", "&"))
    saved = client.post(
        url,
        data={
            "csrf": csrf_of(page.text),
            "action": "save",
            "topic": topics[1:3],
            "frequency": "weekly",
            "max_papers": "7",
            "keywords": "diffusion, robot arms",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    after = client.get(saved.headers["location"])
    assert "preferences are saved" in after.text
    now = store.get_subscriber(sub.id)
    assert now.topics == tuple(topics[1:3]) and now.frequency is Frequency.WEEKLY
    assert now.max_papers == 7 and now.keywords == ("diffusion", "robot arms")


def test_preferences_reject_a_bad_number_and_a_missing_csrf(
    client: TestClient, store: Store, signer: Signer
) -> None:
    sub = add_active(store)
    url = f"/preferences/{signer.make(Purpose.PREFERENCES, sub.id)}"
    field = csrf_of(client.get(url).text)
    bad = client.post(url, data={"csrf": field, "action": "save", "max_papers": "9999"})
    assert bad.status_code == 400 and "Papers per email" in bad.text
    forged = client.post(url, data={"action": "pause"}, follow_redirects=False)
    assert forged.status_code == 403
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE


def test_pause_and_resume(client: TestClient, store: Store, signer: Signer) -> None:
    sub = add_active(store)
    url = f"/preferences/{signer.make(Purpose.PREFERENCES, sub.id)}"
    field = csrf_of(client.get(url).text)
    client.post(url, data={"csrf": field, "action": "pause"})
    assert store.get_subscriber(sub.id).status is SubscriberStatus.PAUSED
    assert list(store.iter_active_subscribers()) == []
    page = client.post(url, data={"csrf": field, "action": "resume"})
    assert "Welcome back" in page.text
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE


def test_delete_my_data_needs_the_tick_and_then_suppresses(
    client: TestClient, store: Store, signer: Signer, transport: MemoryTransport
) -> None:
    sub = add_active(store)
    url = f"/preferences/{signer.make(Purpose.PREFERENCES, sub.id)}"
    field = csrf_of(client.get(url).text)
    unticked = client.post(url, data={"csrf": field, "action": "delete"})
    assert unticked.status_code == 400 and store.get_subscriber(sub.id) is not None
    done = client.post(url, data={"csrf": field, "action": "delete", "confirm_delete": "yes"})
    assert done.status_code == 200 and "deleted" in done.text
    assert store.get_subscriber(sub.id) is None
    assert client.get(url).status_code == 404
    subscribe(client, "ada@example.org")
    assert store.find_subscriber("ada@example.org") is None and transport.messages == []


def test_preferences_refuse_other_purposes_and_tampering(
    client: TestClient, store: Store, signer: Signer
) -> None:
    sub = add_active(store)
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.CONFIRM):
        assert client.get(f"/preferences/{signer.make(purpose, sub.id, 1)}").status_code == 400
    token = signer.make(Purpose.PREFERENCES, sub.id)
    assert client.get(f"/preferences/{token}x").status_code == 400


# --- unsubscribe -----------------------------------------------------------------------------


def test_get_unsubscribe_changes_nothing_and_sets_no_cookie(
    client: TestClient, store: Store, signer: Signer
) -> None:
    sub = add_active(store)
    page = client.get(f"/unsubscribe/{signer.make(Purpose.UNSUBSCRIBE, sub.id)}")
    assert page.status_code == 200 and "<button" in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "set-cookie" not in page.headers
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE


def test_one_click_post_unsubscribes_at_once_without_cookies_or_redirect(
    settings: Settings, store: Store, signer: Signer
) -> None:
    sub = add_active(store)
    app = create_app(settings, store, transport=MemoryTransport(), renderer=Renderer(settings))
    url = f"/unsubscribe/{signer.make(Purpose.UNSUBSCRIBE, sub.id)}"
    with TestClient(app) as provider:  # a fresh client: no cookies, no CSRF token
        first = provider.post(
            url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK, follow_redirects=False
        )
        again = provider.post(
            url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK, follow_redirects=False
        )
    assert first.status_code == 200 and "unsubscribed" in first.text
    assert "location" not in first.headers
    assert again.status_code == 200
    stored = store.get_subscriber(sub.id)
    assert stored.status is SubscriberStatus.UNSUBSCRIBED
    assert list(store.iter_active_subscribers()) == []


def test_unsubscribe_tokens_never_expire_and_are_purpose_bound(
    client: TestClient, store: Store, signer: Signer
) -> None:
    sub, other = add_active(store), add_active(store, "bob@example.org")
    for purpose in (Purpose.PREFERENCES, Purpose.CONFIRM):
        token = signer.make(purpose, sub.id, 1)
        assert client.post(f"/unsubscribe/{token}", headers=ONE_CLICK).status_code == 400
    token = signer.make(Purpose.UNSUBSCRIBE, sub.id)
    assert client.post(f"/unsubscribe/{token[:-3]}abc").status_code == 400
    assert store.get_subscriber(sub.id).status is SubscriberStatus.ACTIVE
    # A token from years ago still works, and only for its own subscriber.
    old = make_old_token(signer, Purpose.UNSUBSCRIBE, sub.id, 0, 5 * 365 * 86400)
    assert client.post(f"/unsubscribe/{old}", content=b"List-Unsubscribe=One-Click",
                       headers=ONE_CLICK).status_code == 200  # fmt: skip
    assert store.get_subscriber(sub.id).status is SubscriberStatus.UNSUBSCRIBED
    assert store.get_subscriber(other.id).status is SubscriberStatus.ACTIVE


# --- archive, feed, health -------------------------------------------------------------------


@pytest.fixture
def editions(store: Store) -> tuple[Edition, Edition]:
    papers = [
        Paper(
            arxiv_id="2401.00001", title="Agents <script>alert(1)</script> & tools", sources=("hf",)
        ),
        Paper(arxiv_id="2401.00002", title="Diffusion for robots"),
    ]
    store.upsert_papers(papers)
    sent = store.save_edition(
        Edition(key="daily-2026-11-25", frequency=Frequency.DAILY, date=date(2026, 11, 25),
                themes=(Theme("Agents & tools", (papers[0],)), Theme("Robots", (papers[1],))))
    )  # fmt: skip
    store.set_edition_status(sent.id, EditionStatus.SENT)
    draft = store.save_edition(
        Edition(key="daily-2026-11-26", frequency=Frequency.DAILY, date=date(2026, 11, 26),
                themes=())
    )  # fmt: skip
    return sent, draft


def test_archive_lists_published_editions_and_shows_the_web_version(
    client: TestClient, editions: tuple[Edition, Edition]
) -> None:
    listing = client.get("/archive")
    assert listing.status_code == 200
    assert 'href="/archive/daily-2026-11-25"' in listing.text
    assert "daily-2026-11-26" not in listing.text  # drafts are not published
    page = client.get("/archive/daily-2026-11-25")
    assert page.status_code == 200 and "Diffusion for robots" in page.text
    assert "<script>alert(1)" not in page.text
    assert "/unsubscribe/" not in page.text  # the web version carries no personal links
    assert client.get("/archive/daily-2026-11-26").status_code == 404
    assert client.get("/archive/nope").status_code == 404


def test_feed_is_valid_atom_with_an_entry_per_published_edition(
    client: TestClient, editions: tuple[Edition, Edition]
) -> None:
    answer = client.get("/archive/feed.xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ElementTree.fromstring(answer.content)
    entries = root.findall("a:entry", ns)
    assert len(entries) == 1
    link = entries[0].find("a:link", ns).get("href")
    assert link == "https://digest.example.org/archive/daily-2026-11-25"
    assert "Agents & tools (1)" in entries[0].find("a:summary", ns).text


def test_healthz_checks_the_database(client: TestClient, settings: Settings, tmp_path) -> None:
    ok = client.get("/healthz")
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    empty = Store(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    app = create_app(settings, empty, transport=MemoryTransport(), renderer=Renderer(settings))
    with TestClient(app) as other:
        assert other.get("/healthz").status_code == 503
    empty.close()


def test_pages_can_be_overridden_from_the_templates_dir(
    settings: Settings, store: Store, tmp_path
) -> None:
    (tmp_path / "mine" / "web").mkdir(parents=True)
    (tmp_path / "mine" / "web" / "notice.html").write_text("<p>Custom: {{ title }}</p>")
    custom = settings.model_copy(update={"templates_dir": tmp_path / "mine"})
    app = create_app(custom, store, transport=MemoryTransport(), renderer=Renderer(settings))
    with TestClient(app) as client:
        assert subscribe(client, "x@example.org").text == "<p>Custom: Check your inbox</p>"
        assert 'name="email"' in client.get("/").text  # the rest still comes from the shipped set


def test_web_needs_a_long_secret(settings: Settings, store: Store) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        create_app(settings.model_copy(update={"secret_key": "short"}), store,
                   transport=MemoryTransport())  # fmt: skip


def test_nothing_personal_reaches_the_logs(
    client: TestClient, store: Store, transport: MemoryTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    subscribe(client, "secret.person@example.org")
    confirm = link_in(transport.messages[0], "confirm")
    confirm_with_button(client, confirm)
    unsubscribe = link_in(transport.messages[1], "unsubscribe")
    client.post(unsubscribe, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    logged = "\n".join(
        f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name.startswith("digest")
    )
    assert "web.request" in logged and "web.unsubscribed" in logged
    assert "secret.person" not in logged
    for token_url in (confirm, unsubscribe):
        assert token_url.rsplit("/", 1)[1] not in logged
    assert TEST_SECRET not in logged
