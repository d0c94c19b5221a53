"""Emails joined from pieces rendered once per edition read exactly as whole renders (issue 17).

Real papers (the bundled example day), the real grouping, ranking, templates and MIME; each
subscriber's email is assembled and also rendered whole for their selection alone, and the
two must show the same subject, text part and HTML part, parsed back from the bytes sent.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
import shutil
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.delivery.contents import Contents
from digest.mail.assembly import assembly_for
from digest.mail.render import Renderer
from digest.models import Edition, Frequency, Message, Subscriber
from digest.sources.jsonfile import load_papers
from digest.themes import grouping, rank
from digest.themes.taxonomy import load_taxonomy
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def edition() -> Edition:
    papers = load_papers(ROOT / "examples" / "papers.json").papers
    themes = rank.order_themes(grouping.group(papers), NOW)
    return Edition(
        key="daily-2026-11-27", frequency=Frequency.DAILY, date=NOW.date(), themes=tuple(themes),
        created_at=NOW, id=1,
    )  # fmt: skip


def settings_for(tmp_path: Path, **more) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path}/d.db", outbox=tmp_path / "outbox",
        secret_key=TEST_SECRET, base_url="https://digest.example.org",
        sender="digest <digest@example.org>", **more,
    )  # fmt: skip


def parts(message: Message) -> tuple[str, str, str]:
    """Subject, text and HTML as a mail client decodes them from the bytes."""
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    return (
        str(parsed["Subject"]),
        parsed.get_body("plain").get_content(),
        parsed.get_body("html").get_content(),
    )


def subscribers(taxonomy) -> list[Subscriber]:
    rng = random.Random(3)
    topics = list(taxonomy.topics)
    people = [
        Subscriber("all@example.org", id=1),
        Subscriber("two@example.org", id=2, max_papers=2),
        Subscriber("kw@example.org", id=3, keywords=("diffusion", "LLM*"), max_papers=7),
        Subscriber("min@example.org", id=4, min_score=5.0),
        Subscriber("likes@example.org", id=5, likes=("2410.16251",), topics=(topics[0],)),
        Subscriber("free@example.org", id=6, topics=("robot*", topics[2])),
    ]
    for i in range(7, 40):
        people.append(Subscriber(
            f"r{i}@example.org", id=i, topics=tuple(rng.sample(topics, 3)),
            max_papers=rng.choice([None, 1, 5, 12]),
        ))  # fmt: skip
    return people


def check_all_alike(settings: Settings, edition: Edition) -> int:
    """Assemble and render whole every subscriber's email; returns how many were compared."""
    renderer, taxonomy = Renderer(settings), load_taxonomy()
    assembly = assembly_for(renderer, edition)
    assert assembly is not None  # the templates have the blocks: no silent fallback
    contents = Contents(edition, settings, renderer, taxonomy)
    compared = 0
    for sub in subscribers(taxonomy):
        selection = contents.selection(sub)
        if not selection.count:
            continue
        assembled = assembly.message(sub, selection)
        whole = renderer.prepare_digest(edition, selection).for_subscriber(sub)
        assert (assembled.text, assembled.html) == (whole.text, whole.html), sub.email
        assert parts(assembled) == parts(whole), sub.email
        assert assembled.headers["List-Unsubscribe"] == whole.headers["List-Unsubscribe"]
        compared += 1
    return compared


def test_assembled_emails_read_as_whole_renders(tmp_path: Path, edition: Edition) -> None:
    assert check_all_alike(settings_for(tmp_path), edition) >= 30


def test_each_paper_has_its_own_feedback_links(tmp_path: Path, edition: Edition) -> None:
    settings = settings_for(tmp_path)
    renderer = Renderer(settings)
    contents = Contents(edition, settings, renderer)
    sub = Subscriber("ada@example.org", id=42, max_papers=5)
    message = contents.message(sub)
    _, text, html = parts(message)
    ids = [p.paper.arxiv_id for t in contents.selection(sub).themes for p in t.papers]
    for arxiv_id in ids:
        token = renderer.signer.make_feedback(42, arxiv_id)
        for choice in ("more", "less"):
            url = f"https://digest.example.org/feedback/{token}?choice={choice}"
            assert url in text and f'href="{url}"' in html
    assert html.count("More like this") == text.count("More like this") == len(ids) == 5


def test_an_overridden_template_with_the_blocks_is_assembled_alike(
    tmp_path: Path, edition: Edition
) -> None:
    """A reworked layout (papers numbered, a rule between themes) keeps the fast path."""
    folder = tmp_path / "templates"
    folder.mkdir()
    shipped = resources.files("digest.templates")
    html = shipped.joinpath("digest.mjml").read_text("utf-8")
    html = html.replace(
        '<p dir="auto" style="margin:0 0 2px;', '<p dir="auto" style="margin:0 0 4px;'
    )
    html = html.replace(
        "{% block paper scoped %}", "{% block paper scoped %}<b>{{ loop.index }}.</b> "
    )
    (folder / "digest.mjml").write_text(html, "utf-8")
    text = shipped.joinpath("digest.txt").read_text("utf-8")
    text = text.replace("== {{ theme.label }} ==", "### {{ theme.label|upper }} ###")
    (folder / "digest.txt").write_text(text, "utf-8")
    settings = settings_for(tmp_path, templates_dir=folder)
    assert check_all_alike(settings, edition) >= 30
    message = Contents(edition, settings).message(Subscriber("a@example.org", id=9))
    assert "<b>1.</b>" in message.html and "### " in message.text


def test_an_old_override_without_blocks_is_rendered_whole(tmp_path: Path, edition: Edition) -> None:
    """A digest.mjml written before the blocks still works: rendered per selection."""
    folder = tmp_path / "templates"
    folder.mkdir()
    shipped = resources.files("digest.templates")
    html = shipped.joinpath("digest.mjml").read_text("utf-8")
    for name in ("contents", "extra", "theme scoped", "paper scoped", "more"):
        html = html.replace("{% block " + name + " %}", "")
    html = html.replace("{% endblock %}", "").replace("Why:", "Because:")
    (folder / "digest.mjml").write_text(html, "utf-8")
    shutil.copy(str(shipped.joinpath("digest.txt")), folder / "digest.txt")
    settings = settings_for(tmp_path, templates_dir=folder)
    assert assembly_for(Renderer(settings), edition) is None
    message = Contents(edition, settings).message(Subscriber("a@example.org", id=9))
    assert "Because:" in message.html and "More like this" in message.html


def test_a_per_subscriber_extra_section_is_assembled_alike(
    tmp_path: Path, edition: Edition
) -> None:
    """The hook for a section of each subscriber's own (e.g. "Since you last saw it"): the
    templates' ``extra`` block, given what ``Contents.message(subscriber, extra=...)`` passes."""
    folder = tmp_path / "templates"
    folder.mkdir()
    shipped = resources.files("digest.templates")
    section = (
        '{% block extra %}{% if extra %}<mj-section css-class="cd" background-color="#ffffff">'
        "<mj-column><mj-text>Since you last saw it: {{ extra|join(', ') }}</mj-text></mj-column>"
        "</mj-section>{% endif %}{% endblock %}"
    )
    html = shipped.joinpath("digest.mjml").read_text("utf-8")
    # The shipped block shows "Since you last saw it"; this override shows plain strings.
    block = re.compile(r"\{% block extra %\}.*?\{% endblock %\}")
    (folder / "digest.mjml").write_text(block.sub(lambda _: section, html, count=1))
    text = shipped.joinpath("digest.txt").read_text("utf-8")
    text = block.sub(
        lambda _: (
            "{% block extra %}{% if extra %}\nSince you last saw it: {{ extra|join(', ') }}\n"
            "{% endif %}{% endblock %}"
        ),
        text,
        count=1,
    )
    (folder / "digest.txt").write_text(text, "utf-8")
    settings = settings_for(tmp_path, templates_dir=folder)
    renderer = Renderer(settings)
    assembly = assembly_for(renderer, edition)
    assert assembly is not None
    contents = Contents(edition, settings, renderer)
    for i, extra in enumerate([None, ["Paper <A> & B", "Paper C"], ["Paper D"]]):
        sub = Subscriber(f"r{i}@example.org", id=i + 1, max_papers=3 + i)
        selection = contents.selection(sub)
        assembled = assembly.message(sub, selection, extra)
        whole = renderer.prepare_digest(edition, selection, extra=extra).for_subscriber(sub)
        assert (assembled.text, assembled.html) == (whole.text, whole.html)
        assert ("Since you last saw it" in assembled.text) is (extra is not None)
    assert "Paper &lt;A&gt; &amp; B" in assembled.html or "Paper D" in assembled.html
    message = contents.message(Subscriber("z@example.org", id=99), extra=["Paper E"])
    assert "Since you last saw it: Paper E" in message.text


def test_links_of_every_length_read_as_whole_renders(tmp_path: Path, edition: Edition) -> None:
    """Feedback links of every width (subscriber ids of 1 to 16 digits, each met twice, the
    second time from remembered sections), where the text part's soft line breaks cut the
    token, read as whole renders, byte for byte when decoded."""
    settings = settings_for(tmp_path)
    renderer = Renderer(settings)
    assembly = assembly_for(renderer, edition)
    contents = Contents(edition, settings, renderer)
    topics = list(load_taxonomy().topics)[:3]
    for round_ in range(2):
        for digits in range(1, 17):
            sub = Subscriber(
                f"w{digits}@example.org", id=10 ** (digits - 1) + round_, topics=topics
            )
            selection = contents.selection(sub)
            assembled = assembly.message(sub, selection)
            whole = renderer.prepare_digest(edition, selection).for_subscriber(sub)
            assert (assembled.text, assembled.html) == (whole.text, whole.html), sub.id
            assert parts(assembled) == parts(whole), sub.id
            assert "=\r\n" in assembled.raw.decode()  # the text part's feedback links break
