"""The taxonomy: the shipped topics, matching papers to them, and reading custom files."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.models import Paper
from digest.sources.jsonfile import load_papers
from digest.themes.taxonomy import Topic, keyword_pattern, load_taxonomy

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


@pytest.fixture(scope="module")
def hf_papers():
    """Every recorded Hugging Face paper: real titles, abstracts, HF keywords and summaries."""
    names = ("hf_daily_papers_2024-10-25.json", "hf_daily_papers_recent.json")
    return [p for name in names for p in load_papers(FIXTURES / name).papers]


def test_shipped_taxonomy_has_a_dozen_or_more_unique_topics(taxonomy):
    assert 12 <= len(taxonomy.topics) <= 20
    assert len({t.casefold() for t in taxonomy.topics}) == len(taxonomy.topics)
    assert "Robotics" in taxonomy.topics and "Language models" in taxonomy.topics


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Scaling LLMs for long documents", "Language models"),
        ("Dexterous manipulation with a humanoid robot", "Robotics"),
        ("Robots that learn from play", "Robotics"),  # plural of a keyword
        ("Post-training quantization of vision transformers", "Efficient AI"),  # quantiz*
        ("Jailbreaking aligned chatbots with jailbreak prompts", "Safety and security"),
        ("Agentic workflows for data science", "Agents"),
        ("Text-to-image diffusion models at scale", "Image and video generation"),
    ],
)
def test_title_with_a_keyword_matches_its_topic(taxonomy, title, expected):
    assert expected in taxonomy.match(Paper("2601.00001", title))


def test_title_without_keywords_matches_nothing(taxonomy):
    assert taxonomy.match(Paper("2601.00001", "On the cohomology of sheaves over curves")) == []


def test_whole_words_only(taxonomy):
    # "reagent" holds "agent", "URLs" holds "RL", "bugle" holds "bug": none is a match.
    paper = Paper("2601.00001", "A reagent for URLs and bugle calls")
    assert taxonomy.match(paper) == []


def test_acronyms_match_only_in_capitals(taxonomy):
    assert "Reinforcement learning" in taxonomy.match(Paper("1", "Offline RL with priors"))
    assert "Reinforcement learning" not in taxonomy.match(Paper("1", "The rl of poetry"))


def test_categories_match_when_the_title_says_nothing(taxonomy):
    paper = Paper("2601.00001", "A note on controllers", categories=("cs.RO", "eess.SY"))
    assert "Robotics" in taxonomy.match(paper)


def test_hf_keywords_count_like_the_title(taxonomy):
    paper = Paper("2601.00001", "Project Nimbus", keywords=("speech recognition", "ASR"))
    assert "Speech and audio" in taxonomy.match(paper)


def test_one_passing_mention_in_the_abstract_is_not_enough(taxonomy):
    once = Paper("1", "Sheaf cohomology", abstract="Unlike robotics, we study curves.")
    twice = Paper("1", "Sheaf cohomology", abstract="Robot arms need curves; robot safety too.")
    assert "Robotics" not in taxonomy.match(once)
    assert "Robotics" in taxonomy.match(twice)


def test_places_are_counted_across_keywords_and_each_keeps_its_case_rule():
    topic = Topic("Speech", keywords=("recognition", "speech recognition", "ASR"))
    # Two keywords starting at two places of one phrase: two places, as two mentions would be.
    assert topic.matches(Paper("1", "Sheaves", abstract="We study speech recognition."))
    # Both keywords start at the same place: one place only.
    same_place = Topic("Speech", keywords=("speech", "speech recognition"))
    assert not same_place.matches(Paper("1", "Sheaves", abstract="We study speech recognition."))
    # "asr" in lower case is not the acronym, while "Recognition" ignores case.
    assert not topic.matches(Paper("1", "Sheaves", abstract="Recognition of asr tokens."))
    assert topic.matches(Paper("1", "Sheaves", abstract="Recognition of ASR tokens."))


def test_matching_agrees_with_each_keyword_scanned_on_its_own(taxonomy, hf_papers):
    """The one-scan matcher against the rule it implements, on every recorded HF paper."""

    def by_each_keyword(topic, paper):
        if set(topic.categories) & set(paper.categories):
            return True
        patterns = [keyword_pattern(k) for k in topic.keywords]
        if any(p.search(" \n ".join((paper.title, *paper.keywords))) for p in patterns):
            return True
        prose = f"{paper.abstract}\n{paper.ai_summary or ''}"
        return len({m.start() for p in patterns for m in p.finditer(prose)}) >= 2

    pairs = [(t, p) for t in taxonomy.entries for p in hf_papers]
    assert sum(t.matches(p) for t, p in pairs) > len(hf_papers)  # most papers have a topic
    assert [t.matches(p) for t, p in pairs] == [by_each_keyword(t, p) for t, p in pairs]


def test_find_ignores_case(taxonomy):
    assert taxonomy.find("  robotics ").name == "Robotics"
    assert taxonomy.find("underwater basket weaving") is None


def test_custom_file(tmp_path):
    path = tmp_path / "topics.toml"
    path.write_text(
        '[[topic]]\nname = "Bells"\nkeywords = ["bell", "carillon"]\n'
        '[[topic]]\nname = "Stars"\ncategories = ["astro-ph.SR"]\n',
        encoding="utf-8",
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy.topics == ("Bells", "Stars")
    assert taxonomy.match(Paper("1", "Tuning a carillon")) == ["Bells"]
    assert taxonomy.match(Paper("1", "Spots", categories=("astro-ph.SR",))) == ["Stars"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[topic]\nname =", "not valid TOML"),
        ("title = 'x'\n", "no [[topic]] entries"),
        ('[[topic]]\nname = "Empty"\n', "needs keywords or categories"),
        ('[[topic]]\nkeywords = ["x"]\n', "has no name"),
        ('[[topic]]\nname = "A"\nkeywords = "x"\n', "must be a list"),
        (
            '[[topic]]\nname = "A"\nkeywords = ["x"]\n[[topic]]\nname = "a"\nkeywords = ["y"]\n',
            "twice",
        ),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "topics.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DigestError) as info:
        load_taxonomy(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_missing_file(tmp_path):
    with pytest.raises(DigestError, match="cannot read taxonomy"):
        load_taxonomy(tmp_path / "nope.toml")
