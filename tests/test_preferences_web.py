"""The preferences page through `digest web` in its own process, from the link of a real
welcome email: every profile field saved, each mistake one line and nothing saved, rated
papers listed, removed and put back, likes seeded from pasted URLs and from BibTeX and
CSL-JSON files (the arXiv API a local server replaying recorded answers), and the caps."""

from __future__ import annotations

import email
import email.policy
import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from digest.config import Settings
from digest.mail.render import Renderer
from digest.models import Paper, Subscriber
from digest.store import Store
from digest.subscribers import seeding
from digest.web.context import SEEDS_PER_SUBSCRIBER
from tests.httpserver import ReplayServer
from tests.test_seeding import LIBRARY, STORED, arxiv  # noqa: F401 - a fixture
from tests.webclient import WebClient, multipart, served

OTHER = Paper(arxiv_id="2410.16251", title="Can Knowledge Editing Really Correct Hallucinations?")


@pytest.fixture
def site(
    store: Store,
    db_url: str,
    tmp_path: Path,
    arxiv: ReplayServer,  # noqa: F811 - the fixture
) -> Iterator[str]:
    store.upsert_papers([STORED, OTHER])
    with served(db_url, tmp_path, arxiv.url) as base:
        yield base


def preferences_path(settings: Settings, base: str, subscriber: Subscriber) -> str:
    """The preferences link of the welcome email the subscriber gets, as a path."""
    raw = Renderer(settings.model_copy(update={"base_url": base})).welcome(subscriber).raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    return re.search(r"http://127\.0\.0\.1:\d+(/preferences/[A-Za-z0-9_.\-]+)", text)[1]


def open_page(site: str, settings: Settings, store: Store, **profile: object):
    sub = store.add_subscriber(Subscriber("ada@example.org", **profile))
    browser = WebClient(site)
    path = preferences_path(settings, site, sub)
    return sub, browser, path, browser.get(path)


FULL = {
    "action": "save",
    "profile": "1",
    "keywords": "diffusion",
    "frequency": "weekly",
    "blend": "0.75",
    "follow_authors": "Kaiming He\n  Yann   LeCun \n\nkaiming he\n",
    "follow_orgs": "Meta AI\nGoogle DeepMind",
    "timezone": "Australia/Adelaide",
    "send_hour": "7",
    "empty_days": "roll",
}


def test_the_page_saves_every_field_and_shows_them_again(
    site: str, settings: Settings, store: Store
) -> None:
    sub, browser, path, page = open_page(site, settings, store)
    assert page.status == 200 and 'value="0.75"' in page.text
    assert "<option>Europe/Berlin</option>" in page.text and "23:00" in page.text
    saved = browser.post(path, {"csrf": page.csrf(), **FULL})  # "followups" unticked
    assert saved.status == 200 and saved.notice() == "Your preferences are saved."
    now = store.get_subscriber(sub.id)
    assert now.blend == 0.75 and now.keywords == ("diffusion",)
    assert now.follow_authors == ("Kaiming He", "Yann LeCun")  # repeats once, spaces tidied
    assert now.follow_orgs == ("Meta AI", "Google DeepMind")
    assert (now.timezone, now.send_hour, now.empty_days) == ("Australia/Adelaide", 7, "roll")
    assert now.followups is False
    shown = saved.text
    assert re.search(r'name="blend" value="0.75" checked', shown)
    assert "<option selected>Australia/Adelaide</option>" in shown
    assert '<option value="7" selected>07:00</option>' in shown
    assert re.search(r'value="roll" checked', shown)
    assert "Kaiming He\nYann LeCun</textarea>" in shown
    back = browser.post(
        path,
        {"csrf": page.csrf(), **FULL, "blend": "", "timezone": "", "send_hour": "",
         "followups": "on", "empty_days": "skip"},
    )  # fmt: skip
    assert back.status == 200
    now = store.get_subscriber(sub.id)
    assert (now.blend, now.timezone, now.send_hour, now.followups) == (None, None, None, True)
    # An older copy of the page, without the profile fields, leaves them alone.
    browser.post(path, {"csrf": page.csrf(), "action": "save", "keywords": "agents"})
    assert store.get_subscriber(sub.id).follow_orgs == ("Meta AI", "Google DeepMind")
    browser.close()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("send_hour", "24", "Hour must be a whole number from 0 to 23, not &#39;24&#39;."),
        ("timezone", "Mars/Olympus", "Not a time zone: &#39;Mars/Olympus&#39;"),
        ("blend", "2", "Blend must be a number from 0 to 1, not &#39;2&#39;."),
        ("empty_days", "never", "Empty days must be skip or roll, not &#39;never&#39;."),
        ("follow_authors", "\n".join(f"A{i}" for i in range(51)), "Follow at most 50 authors"),
        ("follow_orgs", "x" * 500_000, "A name to follow can be at most 100 characters"),
    ],
    ids=["hour", "timezone", "blend", "empty_days", "51_authors", "500_kb_name"],
)
def test_a_bad_field_is_one_line_and_nothing_is_saved(
    site: str, settings: Settings, store: Store, field: str, value: str, message: str
) -> None:
    sub, browser, path, page = open_page(site, settings, store, follow_orgs=("Meta AI",))
    answer = browser.post(path, {"csrf": page.csrf(), **FULL, field: value})
    assert answer.status == 400
    (alert,) = answer.alerts()
    assert alert.startswith(message) and "\n" not in alert
    assert len(answer.text) < 100_000  # a huge value is not echoed back
    assert store.get_subscriber(sub.id) == sub
    browser.close()


def test_rated_papers_are_listed_removed_and_put_back(
    site: str, settings: Settings, store: Store
) -> None:
    sub, browser, path, page = open_page(
        site, settings, store, likes=(STORED.arxiv_id, "2104.12255"), dislikes=(OTHER.arxiv_id,)
    )
    assert STORED.title in page.text and OTHER.title in page.text
    assert "arXiv:2104.12255" in page.text  # not stored: shown by its id
    removed = browser.post(
        path, {"csrf": page.csrf(), "action": "remove", "remove": OTHER.arxiv_id}
    )
    assert removed.notice() == f"Removed {OTHER.arxiv_id} from your profile."
    assert store.get_subscriber(sub.id).dislikes == ()
    assert OTHER.title not in removed.text.split("Papers you rated")[1]
    undo = browser.post(
        path,
        {"csrf": page.csrf(), "action": "rate", "arxiv_id": OTHER.arxiv_id, "choice": "less"},
    )
    assert "back in your profile" in undo.notice()
    assert store.get_subscriber(sub.id).dislikes == (OTHER.arxiv_id,)
    bad = browser.post(path, {"csrf": page.csrf(), "action": "remove", "remove": "x<y>"})
    assert bad.status == 400 and bad.alerts() == ["Not an arXiv id or URL: &#39;x&lt;y&#39;."]
    browser.close()


def test_pasted_ids_and_urls_are_liked_and_a_bad_paste_is_kept_for_fixing(
    site: str,
    settings: Settings,
    store: Store,
    arxiv: ReplayServer,  # noqa: F811
) -> None:
    sub, browser, path, page = open_page(site, settings, store)
    bad = "2410.17243\nsee my list"
    refused = browser.post(path, {"csrf": page.csrf(), "action": "seed", "ids": bad}, files={})
    assert refused.status == 400 and refused.alerts() == ["Not an arXiv id or URL: &#39;see&#39;."]
    assert f">{bad}</textarea>" in refused.text and store.get_subscriber(sub.id).likes == ()
    paste = (
        "https://huggingface.co/papers/2410.17243\n"
        "https://arxiv.org/abs/1111.2011v2\n"
        "https://arxiv.org/pdf/0000.0000"
    )
    done = browser.post(path, {"csrf": page.csrf(), "action": "seed", "ids": paste}, files={})
    assert done.status == 200
    assert done.notice() == "Liked 2 papers; not on arXiv: 0000.0000."
    assert store.get_subscriber(sub.id).likes == ("2410.17243", "1111.2011")
    (asked,) = arxiv.hits("/api/query")
    assert asked.query["id_list"] == ["1111.2011,0000.0000"]  # the stored one is not asked
    browser.close()


@pytest.mark.parametrize(
    ("name", "liked", "said"),
    [
        (
            "zotero.bib",
            ("2104.12255", "1111.2011", "2410.17243"),
            "Liked 3 papers; 1 entry without an arXiv id.",
        ),
        (
            "arxiv.bib",
            ("2410.17243", "2104.12255", "1111.2011"),
            "Liked 3 papers; 1 entry without an arXiv id; 1 entry unreadable (line 35: "
            "Unexpected block start: `@book`. Was still looking for field-value closing `}`).",
        ),
        (
            "zotero-csl.json",
            ("2104.12255", "1111.2011", "2410.16251"),
            "Liked 3 papers; 1 entry without an arXiv id.",
        ),
    ],
)
def test_a_bibtex_or_csl_json_library_seeds_likes(
    site: str, settings: Settings, store: Store, name: str, liked: tuple, said: str
) -> None:
    sub, browser, path, page = open_page(site, settings, store)
    data = (LIBRARY / name).read_bytes()
    done = browser.post(
        path, {"csrf": page.csrf(), "action": "seed", "ids": ""}, files={"library": (name, data)}
    )
    assert done.status == 200 and done.notice() == said
    assert store.get_subscriber(sub.id).likes == liked
    assert "Papers you rated" in done.text and "(3)" in done.text
    browser.close()


def test_uploads_and_seeding_are_capped(site: str, settings: Settings, store: Store) -> None:
    sub, browser, path, page = open_page(site, settings, store)
    big = b"@misc{a, eprint={2410.17243}, archivePrefix={arXiv}}\n" + b"%" * 2_100_000
    refused = browser.post(
        path, {"csrf": page.csrf(), "action": "seed"}, files={"library": ("big.bib", big)}
    )
    assert refused.status == 413
    assert refused.alerts() == ["A file to upload can be at most 2 MB."]
    huge = browser.post(  # refused before it is read
        path, {"csrf": page.csrf(), "action": "seed"}, files={"library": ("h.bib", big * 3)}
    )
    assert huge.status == 413 and huge.alerts() == ["A file to upload can be at most 2 MB."]
    body, kind = multipart({"csrf": page.csrf(), "action": "seed"}, {"library": ("c.bib", big)})
    chunked = http.client.HTTPConnection(urlsplit(site).hostname, urlsplit(site).port, timeout=60)
    chunked.request(  # no Content-Length: its size is unknown until read, so it is not read
        "POST", path, body=iter([body]), encode_chunked=True,
        headers={"Content-Type": kind, "Cookie": browser.cookie},
    )  # fmt: skip
    assert chunked.getresponse().status == 413
    chunked.close()
    near = b"@misc{a, eprint={2410.17243}, archivePrefix={arXiv}}\n" + b"%" * 1_999_000
    fits = browser.post(
        path, {"csrf": page.csrf(), "action": "seed"}, files={"library": ("near.bib", near)}
    )
    assert fits.status == 200 and fits.notice() == "Liked 1 paper."
    none = browser.post(
        path, {"csrf": page.csrf(), "action": "seed"}, files={"library": ("e.bib", b"@book{b,}")}
    )
    assert none.status == 400 and none.alerts()[0].startswith("No arXiv ids found in &#39;e.bib")
    for _ in range(SEEDS_PER_SUBSCRIBER - 3):
        browser.post(path, {"csrf": page.csrf(), "action": "seed", "ids": "2410.16251"}, files={})
    limited = browser.post(path, {"csrf": page.csrf(), "action": "seed", "ids": "2410.16251"})
    assert limited.status == 429 and "retry-after" in limited.headers
    assert store.get_subscriber(sub.id).likes == ("2410.17243", "2410.16251")
    assert seeding.MAX_UPLOAD_BYTES == 2_000_000  # what the page and README say
    browser.close()
