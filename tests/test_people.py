"""Following authors and organisations on real author lists (issue 16 item 1).

The lists come from recorded responses: Hugging Face daily papers, the arXiv API and an arXiv
RSS feed (with a TeX accent), parsed by digest's own sources as a collect would.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from digest.models import Paper
from digest.sources.arxiv import parse_listing
from digest.sources.arxiv_api import parse_api_feed
from digest.sources.normalize import paper_from_hf
from digest.themes.people import Follows, fold

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def hf() -> dict[str, Paper]:
    papers = {}
    for name in ("hf_daily_papers_2024-10-25.json", "hf_daily_papers_recent.json"):
        for item in json.loads((FIXTURES / name).read_text(encoding="utf-8")):
            paper = paper_from_hf(item, "hf")
            papers[paper.arxiv_id] = paper
    return papers


@pytest.fixture(scope="module")
def rss() -> dict[str, Paper]:
    body = (FIXTURES / "arxiv" / "cs.AI_2025-08-20.xml").read_bytes()
    return {p.arxiv_id: p for p in parse_listing(body, cross_lists=True)[0]}


@pytest.fixture(scope="module")
def api() -> Paper:
    body = (FIXTURES / "arxiv" / "id_list_1111.2011v2.xml").read_bytes()
    return parse_api_feed(body)["1111.2011"]


def _followed(papers: dict[str, Paper], *authors: str, orgs: tuple[str, ...] = ()) -> list[str]:
    follows = Follows(authors, orgs)
    return sorted(a for a, p in papers.items() if follows.match(p))


def test_a_followed_author_is_found_on_each_of_their_papers_and_only_there(hf) -> None:
    # Juntao Li, Qiaoming Zhu and Min Zhang are on two papers of the day; other Lis and
    # Zhangs (Jialu Li, Jun Zhang, Ruiyi Zhang, ...) are other people.
    assert _followed(hf, "Min Zhang") == ["2410.18533", "2410.18693"]
    assert _followed(hf, "Juntao Li") == ["2410.18533", "2410.18693"]
    assert _followed(hf, "Pasquale Minervini") == ["2410.15999", "2410.18860"]
    assert Follows(["Min Zhang"]).match(hf["2410.18533"]) == "by Min Zhang, whom you follow"


def test_case_spacing_and_name_order_do_not_matter(hf) -> None:
    assert _followed(hf, "  min   ZHANG ") == ["2410.18533", "2410.18693"]
    assert _followed(hf, "Zhang, Min") == ["2410.18533", "2410.18693"]


def test_initials_match_when_one_author_of_the_paper_fits(hf, api) -> None:
    assert _followed(hf, "M. Zhang") == ["2410.18533", "2410.18693"]  # not Jun or Ruiyi Zhang
    assert _followed(hf, "S Koyejo") == ["2410.16429", "2410.18194"]
    # A middle initial given on one side only: "David Jacobs" is "David E. Jacobs".
    assert _followed(hf, "David Jacobs") == ["2410.18975"]
    # The other way round: the follow spelled out, the listing abbreviated ("M. Reza Ebrahimi").
    assert _followed(hf, "Mohammad Reza Ebrahimi") == ["2410.18234"]
    # Two-word surnames: "A. Del Maestro" on the arXiv API's "Adrian Del Maestro".
    assert Follows(["A. Del Maestro"]).match(api)
    assert Follows(["J. Murray"]).match(api)  # James M. Murray


def test_spelled_out_given_names_must_be_equal(hf) -> None:
    assert _followed(hf, "Kun Zhang") == []
    assert _followed(hf, "Kaiming He") == []  # Wei He and Jujie He are not him


def test_an_initial_shared_by_two_authors_of_one_paper_matches_neither() -> None:
    paper = Paper("2411.00001", "t", authors=("Kaiming He", "Kun He", "Ross Girshick"))
    assert Follows(["K. He"]).match(paper) is None
    assert Follows(["Kaiming He"]).match(paper)  # the full name is unambiguous
    alone = dataclasses.replace(paper, authors=("K. He", "Ross Girshick"))
    assert Follows(["Kaiming He"]).match(alone) == "by Kaiming He, whom you follow"


def test_an_author_listed_twice_is_one_person(hf) -> None:
    paper = hf["2410.18798"]  # Wei He, ...
    twice = dataclasses.replace(paper, authors=(*paper.authors, "Wei He"))
    assert Follows(["W. He"]).match(twice)


def test_accents_are_forgiven_both_ways_and_in_tex(rss, api) -> None:
    # The RSS feed writes "Paulo Andr\'e Lima de Castro".
    assert Follows(["Paulo André Lima de Castro"]).match(rss["2508.13429"])
    assert Follows(["paulo andre lima de castro"]).match(rss["2508.13429"])
    assert Follows(["Zlatko Tešanović"]).match(api)  # listed as "Zlatko Tesanovic"
    assert fold("José  Raúl-Romero") == "jose raul romero"


def test_one_word_follows_match_only_that_exact_name(hf) -> None:
    assert _followed(hf, "Zhang") == []
    solo = Paper("2411.00002", "t", authors=("Cher",))
    assert Follows(["cher"]).match(solo)


def test_an_organisation_matches_whole_words_of_the_papers_organisation(hf) -> None:
    paper = hf["2602.23229"]  # organisation "Multimedia and Human Understanding Group"
    assert Follows(orgs=["human understanding group"]).match(paper) == (
        "from human understanding group, which you follow"
    )
    assert Follows(orgs=["Human Understanding"]).match(paper)
    assert Follows(orgs=["Understand"]).match(paper) is None  # a word, not part of one
    deepmind = dataclasses.replace(paper, organization="Google DeepMind")
    assert Follows(orgs=["deepmind"]).match(deepmind)
    assert (
        Follows(orgs=["Meta"]).match(dataclasses.replace(paper, organization="Metamaterials Lab"))
        is None
    )
