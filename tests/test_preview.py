"""`digest preview`: write, serve, screenshot and test-send the email an edition makes."""

from __future__ import annotations

import email
import email.policy
import os
import struct
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import App, cli
from digest.cli.preview import preview_server
from digest.models import Subscriber
from digest.store import Store
from digest.tokens import Purpose, Signer
from tests.conftest import TEST_SECRET
from tests.test_render import sample_edition


@pytest.fixture
def overrides(tmp_path: Path, db_url: str) -> dict:
    return {
        "database_url": db_url,
        "outbox": tmp_path / "outbox",
        "secret_key": TEST_SECRET,
        "base_url": "https://digest.example.org",
        "sender": "digest <digest@example.org>",
        "transport": "file",
    }


@pytest.fixture
def edition(store: Store):
    edition = sample_edition(12, themes=3)
    store.upsert_papers(edition.papers)
    return store.save_edition(edition)


@pytest.fixture
def ada(store: Store) -> Subscriber:
    return store.add_subscriber(Subscriber(email="ada@example.org"))


def run(overrides: dict, *args: str):
    return CliRunner().invoke(cli, ["preview", *args], obj=App(overrides), catch_exceptions=False)


def test_preview_without_an_edition_is_one_line(overrides, store) -> None:
    result = run(overrides)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: no daily edition yet and no new papers to build one from; "
        "`digest build` collects papers and builds it"
    ]


def test_preview_writes_html_and_text_for_a_subscriber(overrides, edition, ada, tmp_path) -> None:
    out = tmp_path / "out" / "p.html"
    result = run(overrides, "--subscriber", "ada@example.org", "--out", str(out))
    assert result.exit_code == 0, result.output
    html, text = out.read_text(), (tmp_path / "out" / "p.html.txt").read_text()
    for paper in edition.papers:
        assert paper.url in html and paper.url in text
    token = text.split("https://digest.example.org/unsubscribe/")[1].split()[0]
    assert Signer(TEST_SECRET).verify(token, Purpose.UNSUBSCRIBE).subscriber_id == ada.id
    assert str(out) in result.output


def test_preview_picks_edition_by_key_or_date_and_reports_unknown(
    overrides, edition, tmp_path
) -> None:
    assert (
        run(overrides, "--edition", edition.key, "--out", str(tmp_path / "a.html")).exit_code == 0
    )
    assert run(overrides, "--date", "2026-11-26", "--out", str(tmp_path / "b.html")).exit_code == 0
    assert (tmp_path / "a.html").read_text().count("arxiv.org/pdf/") == 12
    for args, message in (
        (["--edition", "daily-1999-01-01"], "error: no edition 'daily-1999-01-01'"),
        (["--date", "1999-01-01"], "error: no daily edition for 1999-01-01"),
        (["--subscriber", "nobody@example.org"], "error: no subscriber 'nobody@example.org'"),
    ):
        result = run(overrides, *args)
        assert result.exit_code == 1 and result.output.startswith(message), result.output
        assert len(result.output.strip().splitlines()) == 1


def test_send_to_sends_a_test_copy_without_touching_the_ledger(
    overrides, edition, ada, store, tmp_path
) -> None:
    result = run(overrides, "--subscriber", "ada@example.org", "--send-to", "admin@example.org")
    assert result.exit_code == 0, result.output
    sent = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(sent) == 1
    parsed = email.message_from_bytes(sent[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "admin@example.org"
    assert parsed["Subject"].startswith("[TEST] digest: 12 trending papers")
    # The copy's links belong to nobody: clicking them cannot unsubscribe Ada.
    token = parsed["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert Signer(TEST_SECRET).verify(token, Purpose.UNSUBSCRIBE).subscriber_id == 0
    assert store.delivery_counts(edition.id) in ({}, {"queued": 0})
    assert not (tmp_path / "preview.html").exists()  # --send-to alone writes no file


def test_serve_shows_the_email_and_reloads_after_a_template_change(
    overrides, edition, tmp_path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    app = App({**overrides, "templates_dir": folder})
    server = preview_server(app, edition, Subscriber(email="preview@example.invalid", id=0), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    def get(path: str) -> str:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.read().decode()

    try:
        page = get("/")
        assert edition.papers[0].url in page and "location.reload" in page
        assert get("/text").startswith("digest: Thursday, 26 November 2026")
        before = get("/version")
        (folder / "digest.txt").write_text("Edited {{ brand.name }}\n")
        os.utime(folder / "digest.txt", (time.time() + 5, time.time() + 5))
        assert get("/version") != before
        assert get("/text") == "Edited digest\n"
        (folder / "digest.txt").write_text("{% if %}\n")
        os.utime(folder / "digest.txt", (time.time() + 10, time.time() + 10))
        assert "digest.txt, line 1" in get("/")  # the error shows in the page, server lives on
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/chromium"), reason="needs Chromium at /usr/bin/chromium"
)
def test_screenshot_shows_phone_and_desktop_widths(overrides, edition, tmp_path) -> None:
    shot = tmp_path / "shots" / "preview.png"
    result = run(overrides, "--screenshot", str(shot))
    assert result.exit_code == 0, result.output
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 375 + 600 and height > 1000  # both frames, full length
