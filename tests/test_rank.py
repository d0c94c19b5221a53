"""Trending score, theme order and what each subscriber gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.themes.grouping import REMAINDER_LABEL
from digest.themes.rank import order_themes, select, selection_key, trending_score
from digest.themes.taxonomy import load_taxonomy

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def paper(n: int, title: str, *, upvotes=0, comments=0, stars=None, days_old=0.0, **kw) -> Paper:
    return Paper(
        f"2611.{n:05d}",
        title,
        upvotes=upvotes,
        comments=comments,
        github_stars=stars,
        listed_at=NOW - timedelta(days=days_old),
        **kw,
    )


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def test_fresh_30_upvotes_beat_40_from_three_days_ago():
    today = paper(1, "Fresh", upvotes=30)
    older = paper(2, "Older", upvotes=40, days_old=3)
    assert trending_score(today, NOW) > trending_score(older, NOW)
    # ...while on the same day 40 beat 30
    assert trending_score(paper(3, "x", upvotes=40), NOW) > trending_score(today, NOW)


def test_past_a_week_old_papers_rank_by_their_votes_not_their_age():
    month_old_hit = paper(1, "Hit", upvotes=41, days_old=30)
    fortnight_old_unvoted = paper(2, "Unvoted", days_old=14)
    assert trending_score(month_old_hit, NOW) > trending_score(fortnight_old_unvoted, NOW)
    # ...while within the week the decay still lets fresh papers compete
    assert trending_score(paper(3, "x", upvotes=40, days_old=6), NOW) < trending_score(
        paper(4, "y", upvotes=30), NOW
    )


def test_score_grows_with_every_signal_and_stars_are_damped():
    base = trending_score(paper(1, "x", upvotes=10), NOW)
    assert trending_score(paper(1, "x", upvotes=11), NOW) > base
    assert trending_score(paper(1, "x", upvotes=10, comments=1), NOW) > base
    assert trending_score(paper(1, "x", upvotes=10, stars=50), NOW) > base
    # a famous repository does not drown the day's votes
    assert trending_score(paper(1, "x", stars=100_000), NOW) < trending_score(
        paper(2, "y", upvotes=60), NOW
    )


def test_unvoted_paper_scores_by_freshness_and_missing_dates_count_as_new():
    assert trending_score(paper(1, "x"), NOW) == pytest.approx(1.0)
    assert trending_score(Paper("2611.00009", "no dates", upvotes=4), NOW) == pytest.approx(5.0)
    assert trending_score(paper(1, "x", days_old=2), NOW) == pytest.approx(0.5)


def test_order_themes_by_best_papers_with_the_remainder_last():
    hot = paper(1, "hot", upvotes=90)
    themes = [
        Theme("Quiet theme", (paper(2, "a", upvotes=1), paper(3, "b", upvotes=2))),
        Theme(REMAINDER_LABEL, (paper(4, "c", upvotes=500),)),
        Theme("Hot theme", (paper(5, "d", upvotes=3), hot)),
    ]
    ordered = order_themes(themes, NOW)
    assert [t.label for t in ordered] == ["Hot theme", "Quiet theme", REMAINDER_LABEL]
    assert ordered[0].papers[0] is hot
    assert [p.upvotes for p in ordered[1].papers] == [2, 1]


def edition() -> Edition:
    robots = (
        paper(1, "Robot grasping in clutter", upvotes=42),
        paper(2, "Humanoid locomotion on stairs", upvotes=5),
    )
    llms = (
        paper(3, "Scaling LLM reasoning", upvotes=80, comments=4),
        paper(4, "Tokenizers for code", upvotes=12),
        paper(5, "Diffusion language models", upvotes=1),
    )
    rest = (paper(6, "Bell acoustics", upvotes=0),)
    themes = (Theme("Robot manipulation", robots), Theme("LLM reasoning", llms))
    return Edition(
        "daily-2026-11-26", Frequency.DAILY, NOW.date(), themes + (Theme(REMAINDER_LABEL, rest),)
    )


def test_select_honours_topics_and_explains_why(taxonomy):
    who = Subscriber("r@example.org", topics=("robotics",))
    sel = select(edition(), who, taxonomy=taxonomy, default_max=30, now=NOW)
    assert [t.label for t in sel.themes] == ["Robot manipulation"]
    first = sel.themes[0].papers[0]
    assert first.paper.title == "Robot grasping in clutter"
    assert first.why == "42 upvotes · matches Robotics"
    assert first.score == pytest.approx(43.0)
    assert sel.count == 2 and sel.omitted == 0


def test_select_keywords_and_free_text_topics(taxonomy):
    who = Subscriber("k@example.org", keywords=("diffusion",), topics=("Bell acoustics",))
    sel = select(edition(), who, taxonomy=taxonomy, default_max=30, now=NOW)
    titles = {p.paper.title: p.why for t in sel.themes for p in t.papers}
    assert set(titles) == {"Diffusion language models", "Bell acoustics"}
    assert titles["Diffusion language models"] == '1 upvote · mentions "diffusion"'
    assert titles["Bell acoustics"] == 'new · mentions "Bell acoustics"'


def test_no_topics_gets_everything_up_to_the_limit_best_first(taxonomy):
    everyone = Subscriber("e@example.org")
    sel = select(edition(), everyone, taxonomy=taxonomy, default_max=30, now=NOW)
    assert sel.count == 6 and sel.omitted == 0
    assert sel.themes[-1].label == REMAINDER_LABEL  # edition order kept

    capped = select(edition(), everyone, taxonomy=taxonomy, default_max=3, now=NOW)
    kept = sorted(p.paper.upvotes for t in capped.themes for p in t.papers)
    assert kept == [12, 42, 80] and capped.omitted == 3

    own = Subscriber("o@example.org", max_papers=1)
    mine = select(edition(), own, taxonomy=taxonomy, default_max=30, now=NOW)
    assert mine.count == 1 and mine.omitted == 5
    assert mine.themes[0].papers[0].why == "80 upvotes · 4 comments"

    greedy = Subscriber("g@example.org", max_papers=50)  # the site-wide maximum still caps
    assert select(edition(), greedy, taxonomy=taxonomy, default_max=2, now=NOW).count == 2


def test_min_score_drops_weak_papers_without_counting_them_as_omitted(taxonomy):
    who = Subscriber("m@example.org", min_score=20)
    sel = select(edition(), who, taxonomy=taxonomy, default_max=30, now=NOW)
    assert sorted(p.paper.upvotes for t in sel.themes for p in t.papers) == [42, 80]
    assert sel.omitted == 0


def test_subscriber_matching_nothing_gets_an_empty_selection(taxonomy):
    who = Subscriber("n@example.org", topics=("Speech and audio",))
    sel = select(edition(), who, taxonomy=taxonomy, default_max=30, now=NOW)
    assert sel.themes == () and sel.count == 0


def test_selection_key_groups_equivalent_subscribers():
    a = Subscriber("a@example.org", topics=("Robotics", "Agents"), keywords=("RAG",))
    b = Subscriber("b@example.org", topics=("Agents", " Robotics"), keywords=("RAG", "RAG"), id=7)
    c = Subscriber("c@example.org", topics=("Robotics",), max_papers=5)
    assert selection_key(a) == selection_key(b)
    assert selection_key(a) != selection_key(c)
    # an acronym keyword matches only in capitals, so "rag" is a different selection
    d = Subscriber("d@example.org", topics=("Robotics", "Agents"), keywords=("rag",))
    assert selection_key(a) != selection_key(d)
    hash(selection_key(a))
