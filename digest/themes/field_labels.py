"""Broader labels for a theme whose papers share no phrase: a field, a topic or a word.

The arXiv category most of its papers carry ("Robotics"), else the shipped taxonomy topic
most of them match ("Language models"), else the content word most of them hold. Each is
checked against the labels taken already, so an edition has no two labels that read alike.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from digest.models import Paper
from digest.themes.categories import category_name
from digest.themes.taxonomy import Taxonomy, Topic, load_taxonomy
from digest.themes.words import GENERIC_STEMS, STOP_WORDS, TOKEN, analyze, stem

__all__ = ["MIN_COVERAGE", "category_label", "common_word", "free", "text", "topic_label"]

# A label's every content word must be in this share of its theme's papers: below it the label
# describes a minority ("Reasoning and lean" over seven papers of which two are about Lean).
MIN_COVERAGE = 1 / 3
TOPIC_SAMPLE = 12


def text(paper: Paper) -> str:
    """All the words a paper brings: title, keywords, abstract, Hugging Face summary."""
    return " ; ".join((paper.title, *paper.keywords, paper.abstract, paper.ai_summary or ""))


def free(stems: frozenset[str], taken: list[frozenset[str]]) -> bool:
    """Whether a label of these stems reads unlike every label taken already."""
    # Equal stems are plural twins ("LLM" / "LLMs"); a phrase holding another label's words
    # ("Large language models" after "Language models") or held by one ("Language") reads
    # the same, and so does an acronym of a taken label ("LLMs" after "Language models").
    mine = _canonical(stems)
    return bool(stems) and not any(
        mine <= other or other <= mine for other in map(_canonical, taken)
    )


# Acronyms that read as another label's words: "LLM" is a language model.
_ALIASES = {"llm": ("language",), "lm": ("language",), "rl": ("reinforce",)}


def _canonical(stems: frozenset[str]) -> frozenset[str]:
    return frozenset(w for s in stems for w in _ALIASES.get(s, (s,)))


def category_label(members: list[Paper], taken: list[frozenset[str]]) -> str | None:
    """The readable name of the arXiv category most of the papers carry, if it covers them.

    Primary categories count first: a paper filed under cs.RO is about robotics, while cs.LG
    as a secondary category is added to half of all papers.
    """
    primary: Counter = Counter()
    carried: Counter = Counter()
    for paper in members:
        names = {category_name(c) for c in paper.categories} - {None}
        carried.update(names)
        if paper.categories and (first := category_name(paper.categories[0])):
            primary[first] += 1
    ranked = sorted(carried, key=lambda name: (-primary[name], -carried[name], name))
    return _firstfree(
        (name for name in ranked if carried[name] >= max(2, MIN_COVERAGE * len(members))),
        taken,
    )


def topic_label(members: list[Paper], taken: list[frozenset[str]]) -> str | None:
    """The shipped taxonomy topic ("Language models", "Robotics") most of the papers match."""
    # A share read from 12 papers: the topic patterns cost about 1 ms a paper.
    members = members[:: max(1, len(members) // TOPIC_SAMPLE)]
    counts: Counter = Counter()
    for paper in members:
        counts.update(_topics_of(paper))
    order = {name: i for i, name in enumerate(_default_taxonomy().topics)}
    ranked = sorted(counts, key=lambda name: (-counts[name], order[name]))
    return _firstfree(
        (name for name in ranked if counts[name] >= MIN_COVERAGE * len(members)), taken
    )


@cache
def _default_taxonomy() -> Taxonomy:
    return load_taxonomy(None)


def _topics_of(paper: Paper) -> list[str]:
    """Taxonomy.match(paper), without running a topic's patterns where they cannot match.

    A keyword pattern matches only where the keyword's first word is: a topic whose first
    words are in neither the title nor the keywords, and occur fewer than twice (the rule
    for prose) in the whole text, cannot match by keywords. Counting substrings is cheap;
    the patterns took about 1 ms a paper, most of labelling 1,000 papers.
    """
    strong = " ".join((paper.title, *paper.keywords)).lower()
    whole = text(paper).lower()
    carried = set(paper.categories)
    return [
        topic.name
        for topic, firsts in _first_words()
        if carried.intersection(topic.categories)
        or (
            (any(w in strong for w in firsts) or sum(whole.count(w) for w in firsts) >= 2)
            and topic.matches(paper)
        )
    ]


@cache
def _first_words() -> list[tuple[Topic, tuple[str, ...]]]:
    return [
        (
            topic,
            tuple(re.split(r"[\s\-]+", k.strip().rstrip("*"))[0].lower() for k in topic.keywords),
        )
        for topic in _default_taxonomy().entries
    ]


def _firstfree(names, taken: list[frozenset[str]]) -> str | None:
    for name in names:
        stems = frozenset(analyze(name))
        if free(stems, taken):
            taken.append(stems)
            return name
    return None


def common_word(members: list[Paper], taken: list[frozenset[str]]) -> str | None:
    """The content word most of the papers hold, if two do: the last honest label left."""
    counts: Counter = Counter()
    written: dict[str, Counter] = {}
    for paper in members:
        for token in set(TOKEN.findall(text(paper))):
            term = stem(token)
            if token.lower() in STOP_WORDS or term in GENERIC_STEMS or len(token) < 3:
                continue
            written.setdefault(term, Counter())[token.lower()] += 1
    for term, forms in written.items():
        counts[term] = max(forms.values())
    for term, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count < max(2, MIN_COVERAGE * len(members)):
            break
        if free(frozenset((term,)), taken):
            taken.append(frozenset((term,)))
            word = max(sorted(written[term]), key=written[term].__getitem__)
            return word[:1].upper() + word[1:]
    return None
