"""The "More like this" / "Less like this" links of the emails, through `digest web` in its own
process on 127.0.0.1 (SQLite and PostgreSQL): a scanner that fetches every link records
nothing, the person's button does; repeating, reversing and undoing are harmless; forged
links get a clear 400 and a paper the store does not hold is rated by its arXiv id."""

from __future__ import annotations

from pathlib import Path

from digest.models import Subscriber
from digest.store import Store
from digest.tokens import Purpose, Signer
from tests.conftest import TEST_SECRET
from tests.test_seeding import STORED
from tests.webclient import WebClient, served


def links(sid: int, arxiv_id: str) -> dict[str, str]:
    """The paths of a paper's two links, as the email builds them."""
    token = Signer(TEST_SECRET).make_feedback(sid, arxiv_id)
    return {c: f"/feedback/{token}?choice={c}" for c in ("more", "less")}


def test_a_scanner_records_nothing_and_the_button_records_reverses_and_undoes(
    any_store: Store, any_db_url: str, tmp_path: Path
) -> None:
    check, database = any_store, any_db_url
    check.upsert_papers([STORED])
    ada = check.add_subscriber(Subscriber("ada@example.org"))
    more, less = links(ada.id, STORED.arxiv_id).values()
    with served(database, tmp_path) as base:
        scanner = WebClient(base)
        for path in (more, less, more):  # a link scanner: every link, GET and HEAD
            assert scanner.get(path).status == 200
            assert scanner.request("HEAD", path).status == 200
        assert check.rating(ada.id, STORED.arxiv_id) is None
        assert scanner.get(more.split("?")[0] + "?done=more").notice() == ""  # claims nothing

        person = WebClient(base)
        page = person.get(more)
        assert STORED.title in page.text and "Zesen Cheng, Hang Zhang" in page.text
        assert 'href="https://huggingface.co/papers/2410.17243"' in page.text
        assert "More like this?" in page.text and 'method="post"' in page.text
        assert "<script" not in page.text
        assert check.rating(ada.id, STORED.arxiv_id) is None

        done = person.post(more.split("?")[0], {"csrf": page.csrf(), "choice": "more"})
        assert done.status == 200 and "Saved: more papers like this" in done.notice()
        assert "You asked for more like this" in done.text and "Undo" in done.text
        assert check.get_subscriber(ada.id).likes == (STORED.arxiv_id,)
        again = person.post(more.split("?")[0], {"csrf": page.csrf(), "choice": "more"})
        assert again.status == 200 and check.get_subscriber(ada.id).likes == (STORED.arxiv_id,)

        person.post(less.split("?")[0], {"csrf": page.csrf(), "choice": "less"})
        now = check.get_subscriber(ada.id)
        assert (now.likes, now.dislikes) == ((), (STORED.arxiv_id,))
        undone = person.post(less.split("?")[0], {"csrf": page.csrf(), "choice": "undo"})
        assert "Undone" in undone.notice() and "More like this?" in undone.text
        assert check.rating(ada.id, STORED.arxiv_id) is None

        # The page's way to the preferences: a working link for this subscriber.
        preferences = undone.text.split('<a href="/preferences/', 1)[1].split('"', 1)[0]
        page = person.get(f"/preferences/{preferences}")
        assert page.status == 200 and "Your preferences" in page.text
        for browser in (scanner, person):
            browser.close()


def test_forged_links_and_forms_record_nothing(store: Store, db_url: str, tmp_path: Path):
    check, database = store, db_url
    ada = check.add_subscriber(Subscriber("ada@example.org"))
    bob = check.add_subscriber(Subscriber("bob@example.org"))
    real = Signer(TEST_SECRET).make_feedback(ada.id, "2410.17243")
    other_key = Signer("another-secret-key-0123456789-abcdefgh").make_feedback(ada.id, "2410.17243")
    forged = [
        real[:-2] + ("AA" if not real.endswith("AA") else "BB"),  # tampered signature
        other_key,
        real.replace(f"{ada.id}~", f"{bob.id}~"),  # another subscriber, same signature
        Signer(TEST_SECRET).make(Purpose.PREFERENCES, ada.id),
        "nothing",
    ]
    with served(database, tmp_path) as base:
        person = WebClient(base)
        csrf = person.get(f"/feedback/{real}?choice=more").csrf()
        for token in forged:
            page = person.get(f"/feedback/{token}?choice=more")
            assert page.status == 400 and "This link is not valid" in page.text, token
            posted = person.post(f"/feedback/{token}", {"csrf": csrf, "choice": "more"})
            assert posted.status == 400
        stranger = WebClient(base)  # a form from elsewhere: no CSRF cookie of ours
        assert stranger.post(f"/feedback/{real}", {"csrf": csrf, "choice": "more"}).status == 403
        padded = person.post(f"/feedback/{real}", {"csrf": csrf, "choice": "more", "x": "y" * 5000})
        assert padded.status == 413
        odd = person.post(f"/feedback/{real}", {"csrf": csrf, "choice": "all"})
        assert odd.status == 400 and "Choose more or less" in odd.text
        assert check.rating(ada.id, "2410.17243") is None
        assert check.rating(bob.id, "2410.17243") is None
        check.delete_subscriber(bob.id, "hash-of-bob")
        gone = Signer(TEST_SECRET).make_feedback(bob.id, "2410.17243")
        assert person.get(f"/feedback/{gone}?choice=more").status == 404
        for browser in (person, stranger):
            browser.close()


def test_a_paper_the_store_does_not_hold_is_rated_by_its_id(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    check, database = store, db_url
    ada = check.add_subscriber(Subscriber("ada@example.org"))
    less = links(ada.id, "hep-th/9901001")["less"]  # an old-style id, "/" in it
    with served(database, tmp_path) as base:
        person = WebClient(base)
        page = person.get(less)
        assert page.status == 200 and "Less like this?" in page.text
        assert 'href="https://arxiv.org/abs/hep-th/9901001"' in page.text
        person.post(less.split("?")[0], {"csrf": page.csrf(), "choice": "less"})
        person.close()
    assert check.get_subscriber(ada.id).dislikes == ("hep-th/9901001",)
