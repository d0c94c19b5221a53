"""The digest, confirmation and welcome emails: content, markup rules, size, hostile input."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import DigestError
from digest.mail.render import Renderer
from digest.mail.text import format_authors, shorten, summarize
from digest.models import (
    Edition,
    Frequency,
    Paper,
    SelectedTheme,
    Selection,
    Subscriber,
    Theme,
)
from digest.themes.rank import full_selection
from digest.tokens import Purpose, Signer
from tests.conftest import FIXTURES, TEST_SECRET

SUBSCRIBER = Subscriber(email="ada@example.org", id=42)


# --- sample data (real papers from the recorded HF responses) ------------------------------


def real_papers() -> list[Paper]:
    """The 30 papers of the recorded Hugging Face daily-papers responses."""
    items = json.loads((FIXTURES / "hf_daily_papers_2024-10-25.json").read_text())
    items += json.loads((FIXTURES / "hf_daily_papers_recent.json").read_text())
    papers = []
    for item in items:
        p = item["paper"]
        org = p.get("organization") or item.get("organization") or {}
        papers.append(
            Paper(
                arxiv_id=p["id"],
                title=item.get("title") or p["title"],
                abstract=p["summary"],
                authors=tuple(a["name"] for a in p["authors"]),
                upvotes=p.get("upvotes", 0),
                comments=item.get("numComments", 0),
                ai_summary=p.get("ai_summary"),
                github_url=p.get("githubRepo"),
                github_stars=p.get("githubStars"),
                project_url=p.get("projectPage"),
                organization=org.get("fullname"),
                thumbnail_url=item.get("thumbnail"),
                sources=("hf",),
            )
        )
    return papers


def sample_edition(n: int = 30, themes: int = 6, papers: list[Paper] | None = None) -> Edition:
    """An edition of ``n`` real papers (repeated with new ids past 30) in ``themes`` themes."""
    base = papers or real_papers()
    many = [
        dataclasses.replace(base[i % len(base)], arxiv_id=f"2411.{10000 + i}")
        if i >= len(base)
        else base[i]
        for i in range(n)
    ]
    labels = ["Vision & language", "Reasoning", "Agents", "Diffusion", "Efficiency", "Data"]
    groups = tuple(
        Theme(
            labels[t % len(labels)] + (f" {t}" if t >= len(labels) else ""), tuple(many[t::themes])
        )
        for t in range(themes)
    )
    return Edition(
        key="daily-2026-11-26", frequency=Frequency.DAILY, date=date(2026, 11, 26), themes=groups
    )


def selection_of(edition: Edition, limit: int = 30, why: str = "") -> Selection:
    """What rank.select would return for a subscriber who follows everything."""
    sel = full_selection(edition, limit)
    if not why:
        return sel
    themes = tuple(
        SelectedTheme(t.label, tuple(dataclasses.replace(p, why=why) for p in t.papers))
        for t in sel.themes
    )
    return Selection(themes, sel.omitted)


# --- an HTML parser that keeps what the checks need ----------------------------------------


class Doc(HTMLParser):
    """Every start tag with its attributes, text per element, and the hrefs of links."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.styles: list[str] = []
        self.text: list[str] = []
        self._a: list[str] | None = None
        self._href = ""
        self._in_style = False
        self._title: list[str] | None = None
        self.title = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "a":
            self._a, self._href = [], a.get("href", "")
        self._in_style = tag == "style"
        if tag == "title":
            self._title = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._a is not None:
            self.links.append((self._href, "".join(self._a).strip()))
            self._a = None
        if tag == "style":
            self._in_style = False
        if tag == "title" and self._title is not None:
            self.title = "".join(self._title)
            self._title = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
            return
        if self._title is not None:
            self._title.append(data)
        if self._a is not None:
            self._a.append(data)
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def body_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def check_markup(html: str) -> Doc:
    """Assert the rules every email's HTML follows; return the parsed document."""
    doc = Doc(html)
    assert doc.all("html") and doc.all("html")[0].get("lang") == "en"
    assert doc.title.strip()
    assert any(m.get("charset", "").lower() == "utf-8" for m in doc.all("meta"))
    assert any(
        m.get("name") == "color-scheme" and m.get("content") == "light dark"
        for m in doc.all("meta")
    )
    css = "\n".join(doc.styles)
    assert "prefers-color-scheme: dark" in css
    assert "@import" not in css
    tables = doc.all("table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    assert all(img.get("alt", "").strip() for img in doc.all("img"))
    assert not doc.all("script")
    assert not [link for link in doc.all("link") if "stylesheet" in link.get("rel", "")]
    widths = [
        int(w) for t, a in doc.tags for w in re.findall(r"width:\s*(\d+)px", a.get("style", ""))
    ]
    widths += [int(a["width"]) for t, a in doc.tags if a.get("width", "").isdigit()]
    assert widths and max(widths) <= 600
    # The preheader: the first element of the body, hidden.
    body_at = next(i for i, (t, _) in enumerate(doc.tags) if t == "body")
    first = doc.tags[body_at + 1][1].get("style", "")
    assert "display:none" in first.replace(" ", "")
    return doc


@pytest.fixture
def renderer(settings) -> Renderer:
    return Renderer(settings)


def test_digest_has_every_part_a_subscriber_reads(renderer: Renderer) -> None:
    edition = sample_edition(30)
    message = renderer.prepare_digest(
        edition, selection_of(edition, why="You follow Agents")
    ).for_subscriber(SUBSCRIBER)
    doc = check_markup(message.html)
    links = dict(doc.links)
    text = doc.body_text
    # Header: date, counts, view in browser.
    assert "Thursday, 26 November 2026" in text and "30 papers in 6 themes" in text
    assert "https://digest.example.org/archive/daily-2026-11-26" in links
    assert "26 Nov 2026" in message.subject and "30" in message.subject
    for theme in edition.themes:
        assert text.count(theme.label) >= 2  # table of contents + section heading
        for paper in theme.papers:
            assert (paper.url, " ".join(paper.title.split())) in doc.links
            assert (paper.pdf_url, "PDF") in doc.links and (paper.abs_url, "arXiv") in doc.links
            assert format_authors(paper.authors) in text
            if paper.github_url:
                assert links[paper.github_url] == "Code"
    assert "et al." in text
    recent = next(p for p in edition.papers if p.ai_summary)
    assert recent.ai_summary in text
    assert "Multimedia and Human Understanding Group" in text
    assert "10 upvotes" in text and "9 GitHub stars" in text and "1 comment" in text
    assert "Why: You follow Agents" in text
    # Footer: why they get it, working preferences + unsubscribe links, contact.
    assert "because you subscribed" in text
    signer = Signer(TEST_SECRET)
    unsub = next(h for h, t in doc.links if t == "Unsubscribe")
    prefs = next(h for h, t in doc.links if t == "Preferences")
    assert signer.verify(unsub.rsplit("/", 1)[1], Purpose.UNSUBSCRIBE).subscriber_id == 42
    assert signer.verify(prefs.rsplit("/", 1)[1], Purpose.PREFERENCES).subscriber_id == 42
    assert unsub.startswith("https://digest.example.org/unsubscribe/")
    assert prefs.startswith("https://digest.example.org/preferences/")
    assert message.headers["List-Unsubscribe"] == f"<{unsub}>"


def test_branding_comes_from_settings(settings) -> None:
    branded = settings.model_copy(
        update={
            "name": "Paper Radar",
            "accent_color": "#0055aa",
            "logo_url": "https://cdn.example.org/logo.png",
            "contact": "Questions? editors@example.org",
        }
    )
    edition = sample_edition(5, themes=2)
    message = (
        Renderer(branded).prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    )
    doc = check_markup(message.html)
    assert doc.all("img")[0]["src"] == "https://cdn.example.org/logo.png"
    assert doc.all("img")[0]["alt"] == "Paper Radar logo"
    assert "#0055aa" in message.html and "#ff6f00" not in message.html
    assert "Paper Radar" in doc.title and message.subject.startswith("Paper Radar:")
    assert "Questions? editors@example.org" in doc.body_text
    assert "Questions? editors@example.org" in message.text


def test_size_budget_with_50_and_200_papers(renderer: Renderer) -> None:
    fifty = sample_edition(50)
    html = (
        renderer.prepare_digest(fifty, selection_of(fifty, limit=50))
        .for_subscriber(SUBSCRIBER)
        .html
    )
    # Two feedback links per paper (issue 14) add ~330 bytes each: 97 KB, under Gmail's 102 KB.
    assert len(html.encode()) <= 99_000
    # 200 papers: the default limit (30) shows 30 and links the archive for the rest.
    many = sample_edition(200, themes=8)
    message = renderer.prepare_digest(many, selection_of(many, limit=30)).for_subscriber(SUBSCRIBER)
    doc = check_markup(message.html)
    assert len(message.html.encode()) <= 95_000
    titles = [h for h, t in doc.links if h.startswith("https://huggingface.co/papers/") and t]
    assert len(titles) == 30  # (each theme's thumbnail links its lead paper too, without text)
    more = [(h, t) for h, t in doc.links if "more papers" in t]
    assert more == [
        ("https://digest.example.org/archive/daily-2026-11-26", "170 more papers in this edition")
    ]
    assert (
        "170 more papers in this edition:\nhttps://digest.example.org/archive/daily-2026-11-26"
        in message.text
    )
    # Even the unclipped 200 stays under Gmail's clip.
    everything = renderer.prepare_digest(many, selection_of(many, limit=200)).for_subscriber(
        SUBSCRIBER
    )
    assert len(everything.html.encode()) / 200 < 1_700
    for raw_line in everything.raw.split(b"\r\n"):
        assert len(raw_line) < 998


HOSTILE = {
    "markup": '<img src=x onerror=alert(1)> <b>bold</b> & "quotes" </div></td></table>',
    "latex": r"We bound $\alpha < \beta$ and $\mathcal{O}(n^2)$ & more.",
    "rtl": "\u202eevil\u202c نموذج لغوي كبير للتفكير. עברית.",
    "emoji": "Rockets 🚀 and sparkles ✨ everywhere.",
}


def test_hostile_abstracts_are_escaped_and_trimmed(renderer: Renderer) -> None:
    base = real_papers()[0]
    papers = [
        dataclasses.replace(
            base,
            arxiv_id="2411.00001",
            title="<script>alert(1)</script> & friends",
            abstract=HOSTILE["markup"],
        ),
        dataclasses.replace(base, arxiv_id="2411.00002", abstract=HOSTILE["latex"]),
        dataclasses.replace(
            base, arxiv_id="2411.00003", title="تعلم الآلة", abstract=HOSTILE["rtl"]
        ),
        dataclasses.replace(
            base, arxiv_id="2411.00004", title="Emoji 🚀 paper", abstract=HOSTILE["emoji"]
        ),
        dataclasses.replace(base, arxiv_id="2411.00005", abstract="Word " * 200_000 + "end."),
        dataclasses.replace(
            base, arxiv_id="2411.00006", abstract="x" * 1_000_000, github_url="javascript:alert(1)"
        ),
    ]
    edition = Edition(
        "daily-2026-11-26",
        Frequency.DAILY,
        date(2026, 11, 26),
        (Theme("Hostile <b>", tuple(papers)),),
    )
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    doc = check_markup(message.html)
    assert not doc.all("script") and not doc.all("b")
    # The one picture is the lead paper's thumbnail, its hostile title escaped in the alt text.
    assert doc.all("img") == [
        {"src": base.thumbnail_url, "width": "552", "height": "290",
         "alt": "<script>alert(1)</script> & friends", "style": doc.all("img")[0]["style"]}
    ]  # fmt: skip
    assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends"' in message.html
    assert not any(h.startswith("javascript:") for h, _ in doc.links)
    text = doc.body_text
    assert "<script>alert(1)</script> & friends" in text
    assert '<img src=x onerror=alert(1)> <b>bold</b> & "quotes"' in text
    assert r"$\alpha < \beta$" in text and r"$\mathcal{O}(n^2)$" in text
    assert "🚀" in text and "✨" in text and "Hostile <b>" in text
    assert "نموذج لغوي كبير" in text and "\u202e" not in message.html and "\u202e" not in text
    assert len(message.html.encode()) < 30_000  # the 1 MB abstracts were trimmed
    assert "<script>alert(1)</script> & friends" in message.text
    assert r"$\alpha < \beta$" in message.text and "🚀" in message.text


def test_summary_prefers_ai_summary_and_never_cuts_mid_word() -> None:
    paper = real_papers()[-1]
    assert summarize(paper) == paper.ai_summary
    no_ai = dataclasses.replace(paper, ai_summary=None)
    summary = summarize(no_ai)
    assert no_ai.abstract.startswith(summary) and summary.endswith(".")
    words = set(no_ai.abstract.split())
    long_sentence = "alpha " * 100 + "omega."
    cut = shorten(long_sentence, 100)
    assert cut.endswith("…") and set(cut[:-1].split()) <= {"alpha"} | words
    assert len(cut) <= 101


def test_a_summary_does_not_stop_at_an_initial_or_an_abbreviation() -> None:
    # The bundled paper 2410.18975's abstract; "James P." once ended its summary.
    unbounded = next(p for p in real_papers() if p.arxiv_id == "2410.18975")
    assert "Inspired by James P. Carse's distinction" in summarize(unbounded, 400)
    assert not summarize(unbounded).endswith("James P.")
    text = "Following Smith et al. and e.g. Fig. 3 we build a model. " + "More words here. " * 30
    assert shorten(text, 70) == "Following Smith et al. and e.g. Fig. 3 we build a model."


def test_text_part_reads_alone(renderer: Renderer) -> None:
    edition = sample_edition(30)
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    text = message.text
    for line in text.splitlines():
        if len(line) > 78:  # only a lone URL may run past 78 columns
            assert re.fullmatch(r"\s*(\w+: )?https://\S+", line), line
    for paper in edition.papers:
        assert paper.url in text and paper.pdf_url in text
        assert " ".join(paper.title.split()[:4]) in text
    unsub, prefs = renderer.links(SUBSCRIBER)
    assert unsub in text.splitlines() and prefs in text.splitlines()
    assert "https://digest.example.org/archive/daily-2026-11-26" in text
    assert "<" not in text.replace("<script>", "")  # no markup leaks into the text part


def test_the_lead_paper_of_each_theme_shows_its_thumbnail(renderer: Renderer) -> None:
    edition = sample_edition(30)
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    doc = check_markup(message.html)
    thumbs = [i for i in doc.all("img") if i["src"] != renderer.brand.logo_url]
    leads = [t.papers[0] for t in edition.themes]
    assert [i["src"] for i in thumbs] == [p.thumbnail_url for p in leads]
    for img, paper in zip(thumbs, leads, strict=True):
        # Hosted where Hugging Face hosts it; a fixed size; the title as its alt text.
        assert img["src"].startswith("https://cdn-thumbnails.huggingface.co/social-thumbnails/")
        assert (img["width"], img["height"]) == ("552", "290")
        assert img["alt"] == " ".join(paper.title.split())
    assert (leads[0].url, "") in doc.links  # the picture links to the paper too
    assert "cdn-thumbnails" not in message.text  # the text part has no images


def test_thumbnails_can_be_turned_off_and_come_only_from_known_hosts(settings) -> None:
    off = Renderer(settings.model_copy(update={"thumbnails": False}))
    edition = sample_edition(12, themes=2)
    message = off.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    assert "<img" not in message.html
    elsewhere = (
        "http://cdn-thumbnails.huggingface.co/x.png",  # not https
        "https://tracker.example.org/pixel.png?u=1",  # a file source could say anything
        "https://cdn-thumbnails.huggingface.co.evil.example/x.png",
        "https://user@cdn-thumbnails.huggingface.co/x.png",
    )
    themes = tuple(
        Theme(f"T{i}", (dataclasses.replace(edition.papers[i], thumbnail_url=url),))
        for i, url in enumerate(elsewhere)
    )
    odd = dataclasses.replace(edition, themes=themes)
    html = Renderer(settings).prepare_digest(odd, selection_of(odd)).for_subscriber(SUBSCRIBER).html
    assert "<img" not in html


def test_confirmation_and_welcome_share_the_layout(renderer: Renderer) -> None:
    confirm = renderer.confirmation(SUBSCRIBER, nonce=7)
    doc = check_markup(confirm.html)
    link = next(h for h, t in doc.links if t == "Confirm my subscription")
    token = link.removeprefix("https://digest.example.org/confirm/")
    data = Signer(TEST_SECRET).verify(token, Purpose.CONFIRM)
    assert (data.subscriber_id, data.nonce) == (42, 7)
    assert link in confirm.text and "List-Unsubscribe" not in confirm.headers
    assert confirm.subject == "Confirm your subscription to digest"
    welcome = renderer.welcome(SUBSCRIBER)
    wdoc = check_markup(welcome.html)
    unsub, prefs = renderer.links(SUBSCRIBER)
    assert (unsub, "Unsubscribe") in wdoc.links and (prefs, "Preferences") in wdoc.links
    assert welcome.headers["List-Unsubscribe"] == f"<{unsub}>"
    assert unsub in welcome.text and prefs in welcome.text
    # Same brand header as the digest.
    for d in (doc, wdoc):
        assert any(a.get("style", "").startswith("margin:0;font-size:22px") for a in d.all("h1"))


def test_templates_ship_inside_the_package() -> None:
    shipped = resources.files("digest.templates")
    for name in (
        "digest.mjml",
        "digest.txt",
        "confirm.mjml",
        "confirm.txt",
        "welcome.mjml",
        "welcome.txt",
    ):
        assert shipped.joinpath(name).is_file(), name


def test_templates_dir_overrides_and_errors_name_file_and_line(settings, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "digest.txt").write_text("Custom text for {{ brand.name }}\n{{ unsubscribe_url }}\n")
    own = settings.model_copy(update={"templates_dir": folder})
    edition = sample_edition(3, themes=1)
    message = (
        Renderer(own).prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    )
    assert message.text.startswith(
        "Custom text for digest\nhttps://digest.example.org/unsubscribe/"
    )
    assert "Vision" in message.html  # digest.mjml still the shipped one

    (folder / "digest.txt").write_text("line one\n{% for x in %}\n")
    with pytest.raises(DigestError, match=r"mine/digest\.txt, line 2"):
        Renderer(own).prepare_digest(edition, selection_of(edition))

    shipped = resources.files("digest.templates").joinpath("digest.mjml").read_text()
    (folder / "digest.txt").unlink()
    broken = shipped.replace("{{ p.summary }}", "{{ p.summary | nosuchfilter }}")
    (folder / "digest.mjml").write_text(broken)
    line = (
        broken.splitlines().index(next(x for x in broken.splitlines() if "nosuchfilter" in x)) + 1
    )
    with pytest.raises(DigestError, match=rf"mine/digest\.mjml, line {line}"):
        Renderer(own).prepare_digest(edition, selection_of(edition))

    (folder / "digest.mjml").write_text(shipped.replace("{{ p.summary }}", "{{ p.nosuchfield }}"))
    line = next(i for i, x in enumerate(shipped.splitlines(), 1) if "{{ p.summary }}" in x)
    with pytest.raises(DigestError, match=rf"digest\.mjml, line {line}: .*nosuchfield"):
        Renderer(own).prepare_digest(edition, selection_of(edition))

    (folder / "digest.mjml").write_text("<mjml><mj-body><mj-section></mj-body></mjml>")
    with pytest.raises(DigestError, match=r"mine/digest\.mjml: not valid MJML"):
        Renderer(own).prepare_digest(edition, selection_of(edition))


def test_templates_dir_overrides_shared_partials_too(settings, tmp_path: Path) -> None:
    (tmp_path / "_footer.mjml").write_text(
        '<mj-section><mj-column><mj-text>Our own footer <a href="{{ unsubscribe_url }}">Leave</a>'
        "</mj-text></mj-column></mj-section>"
    )
    renderer = Renderer(settings.model_copy(update={"templates_dir": tmp_path}))
    edition = sample_edition(3, themes=1)
    digest = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    welcome = renderer.welcome(SUBSCRIBER)
    unsub = renderer.links(SUBSCRIBER)[0]
    for message in (digest, welcome):
        assert (unsub, "Leave") in Doc(message.html).links and "Our own footer" in message.html


def test_empty_edition_says_so_instead_of_arriving_blank(renderer: Renderer) -> None:
    edition = Edition("daily-2026-11-26", Frequency.DAILY, date(2026, 11, 26), ())
    message = renderer.prepare_digest(edition, Selection(())).for_subscriber(SUBSCRIBER)
    check_markup(message.html)
    assert "No new papers were listed" in Doc(message.html).body_text
    assert "No new papers were listed" in message.text


def test_weekly_edition_says_week_of(renderer: Renderer) -> None:
    edition = dataclasses.replace(
        sample_edition(4, themes=2),
        key="weekly-2026-W48",
        frequency=Frequency.WEEKLY,
        date=date(2026, 11, 23),
    )
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    assert "week of 23 Nov 2026" in message.subject
    assert "Week of 23 November 2026" in message.text


def test_render_once_per_selection_then_cheap_per_subscriber(renderer: Renderer) -> None:
    edition = sample_edition(30)
    prepared = renderer.prepare_digest(edition, selection_of(edition))
    a = prepared.for_subscriber(SUBSCRIBER)
    b = prepared.for_subscriber(Subscriber(email="bob@example.org", id=43))
    assert a.recipient == "ada@example.org" and b.recipient == "bob@example.org"
    assert a.headers["Message-ID"] != b.headers["Message-ID"]
    ua, ub = renderer.links(SUBSCRIBER)[0], renderer.links(Subscriber(email="b@x.org", id=43))[0]
    assert ua in a.html and ub in b.html and ua not in b.html
    # ...and their feedback links, one per paper, each for its own subscriber and paper.
    assert "/feedback/42~" in a.html and "/feedback/42~" not in b.html
    tokens = re.compile(r"/feedback/[^?]+")
    assert tokens.sub("", a.html.replace(ua, "").replace(renderer.links(SUBSCRIBER)[1], "")) == (
        tokens.sub(
            "",
            b.html.replace(ub, "").replace(
                renderer.links(Subscriber(email="b@x.org", id=43))[1], ""
            ),
        )
    )


def test_subscriber_without_id_or_secret_is_a_clear_error(settings) -> None:
    edition = sample_edition(2, themes=1)
    prepared = Renderer(settings).prepare_digest(edition, selection_of(edition))
    with pytest.raises(DigestError, match="no id"):
        prepared.for_subscriber(Subscriber(email="x@example.org"))
    no_secret = load_settings(base_url="https://digest.example.org")
    with pytest.raises(DigestError, match="DIGEST_SECRET_KEY"):
        Renderer(no_secret).prepare_digest(edition, selection_of(edition)).for_subscriber(
            SUBSCRIBER
        )


def test_signals_in_the_why_line_are_not_repeated_above_it(renderer: Renderer, settings) -> None:
    from digest.themes.rank import select
    from digest.themes.taxonomy import load_taxonomy

    edition = sample_edition(30)
    subscriber = Subscriber(email="ada@example.org", id=42, topics=("Multimodal models",))
    selection = select(
        edition,
        subscriber,
        taxonomy=load_taxonomy(),
        default_max=30,
        now=edition.papers[0].listed_at,
    )
    picked = next(p for t in selection.themes for p in t.papers if p.paper.upvotes)
    assert picked.why.startswith(f"{picked.paper.upvotes} upvote")
    text = check_markup(renderer.prepare_digest(edition, selection).for_subscriber(subscriber).html)
    assert text.body_text.count(f"Why: {picked.why}") == 1
    # the signals stand once, in the why line, not also under the title
    assert text.body_text.count(picked.why.split(" · ")[0]) == 1
