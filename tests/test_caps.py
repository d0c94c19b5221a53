"""Every text a subscriber controls is capped, with a clear error (issue 12, item 6).

A 500 KB keyword used to be stored as is (only the count was capped, by silent truncation).
The web pages answer 400 with the reason on the page; the CLI and import say it in one line
per row. Real SQLite file, the app through Starlette's TestClient, the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from digest import subscribers as subs
from digest.cli import cli
from digest.config import Settings
from digest.store import Store
from digest.tokens import Purpose, Signer
from tests.conftest import TEST_SECRET
from tests.test_web import add_active, client, csrf_of, transport  # noqa: F401 - fixtures

HUGE = "k" * 500_000


def save(client: TestClient, url: str, **fields: object):  # noqa: F811 - the fixture's name
    page = client.get(url)
    return client.post(url, data={"csrf": csrf_of(page.text), "action": "save", **fields})


def test_preferences_refuse_a_500_kb_keyword_too_many_and_unknown_topics(
    client: TestClient,  # noqa: F811 - a fixture
    store: Store,
) -> None:
    sub = add_active(store, keywords=("diffusion",))
    url = f"/preferences/{Signer(TEST_SECRET).make(Purpose.PREFERENCES, sub.id)}"
    huge = save(client, url, keywords=f"agents, {HUGE}")
    assert huge.status_code == 400
    assert "A keyword can be at most 100 characters" in huge.text
    assert len(huge.text) < 50_000  # the page does not echo the 500 KB back
    many = save(client, url, keywords=", ".join(f"word{i}" for i in range(21)))
    assert many.status_code == 400 and "At most 20 keywords" in many.text
    unknown = save(client, url, topic=["Agents", "Not a topic"])
    assert unknown.status_code == 400 and "Unknown topic" in unknown.text
    assert store.get_subscriber(sub.id).keywords == ("diffusion",)  # nothing was stored
    ok = save(client, url, keywords="agents, " + "x" * 100, topic=["Agents"])
    assert ok.status_code == 200 and "saved" in ok.text
    assert store.get_subscriber(sub.id).keywords == ("agents", "x" * 100)


def test_subscribe_refuses_an_unknown_topic(client: TestClient, store: Store) -> None:  # noqa: F811
    page = client.get("/")
    answer = client.post(
        "/subscribe",
        data={"csrf": csrf_of(page.text), "email": "a@example.org", "topic": "x" * 5000},
    )
    assert answer.status_code == 400 and "Unknown topic" in answer.text
    assert store.find_subscriber("a@example.org") is None


def test_cli_add_refuses_a_500_kb_keyword_in_one_line(settings: Settings, db_url: str) -> None:
    env = {"DIGEST_DATABASE_URL": db_url, "DIGEST_SECRET_KEY": TEST_SECRET}
    result = CliRunner().invoke(
        cli, ["subscribers", "add", "a@example.org", "--keyword", HUGE], env=env
    )
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line == "error: a keyword can be at most 100 characters (got 500,000)"


def test_import_skips_rows_over_the_caps_with_their_reason(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    rows = [
        {"email": "ok@example.org", "keywords": ["agents"]},
        {"email": "huge@example.org", "keywords": [HUGE]},
        {"email": "many@example.org", "keywords": [f"w{i}" for i in range(21)]},
        {"email": "big@example.org", "max_papers": 10**12},
    ]
    path = tmp_path / "people.json"
    path.write_text(json.dumps(rows))
    report = subs.import_subscribers(store, TEST_SECRET, path, known=subs.known_topics(settings))
    reasons = dict(report.problems)
    assert [s.email for s in store.list_subscribers()] == ["ok@example.org"]
    assert "a keyword can be at most 100 characters" in reasons["#1"]
    assert "at most 20 keywords" in reasons["#2"]
    assert "max_papers must be at most 1,000" in reasons["#3"]
