"""The phrases a label can be made of, found in papers, and how a phrase is written out.

A candidate is a 1-3 word phrase of a title or the Hugging Face keywords that does not start
or end with a stop word and is not about how a paper is written ("experimental results"),
found in at least two papers of the edition; its *key* is its word stems, so "LLM" and
"LLMs" are one phrase. Abstracts and summaries then only say which papers also mention a
candidate (weight 0.5 against 1 in a title) and how it is written in prose ("LLMs",
"Gaussian"): enumerating every phrase of every abstract was 82% of `digest themes` on 1,000
papers.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from digest.models import Paper
from digest.themes.words import GENERIC_END_STEMS, GENERIC_STEMS, STOP_WORDS, TOKEN, analyze, stem

__all__ = ["BREAK", "Key", "Phrases", "dangling", "display", "find_phrases", "word_set"]

Key = tuple[str, ...]
TITLE, PROSE = 1.0, 0.5  # a phrase in a title or keywords counts twice one in prose
BREAK = re.compile(r"[.,;:!?()\[\]{}\"]|\s-\s")
# Words that leave a phrase hanging when they end it ("Active galactic", "Advanced deep").
_DANGLING = re.compile(
    r"(?:ic|al|ive|ous|ble|ful|ary|ed|deep|multi|large|high|low|advanced|large language)$"
)


@dataclass
class Phrases:
    """Per paper: candidate key -> weight (1 in the title or keywords, 0.5 in prose only)."""

    weights: list[dict[Key, float]]
    surface: dict[Key, Counter]


def find_phrases(papers: Sequence[Paper]) -> Phrases:
    """The candidate phrases of each paper, and their written forms."""
    strong = [_title_phrases(p) for p in papers]
    seen: Counter = Counter()
    for found in strong:
        seen.update(found.keys())
    candidates = {key for key, count in seen.items() if count >= 2}
    starts = {key[0] for key in candidates}
    # One tuple per distinct phrase, shared by every paper holding it (memory at 10,000).
    canonical = {key: key for key in candidates}
    surface: dict[Key, Counter] = defaultdict(Counter)
    weights: list[dict[Key, float]] = []
    for paper, found in zip(papers, strong, strict=True):
        mine: dict[Key, float] = {}
        for key, words in found.items():
            if key in candidates:
                mine[canonical[key]] = TITLE
                surface[canonical[key]][words] += 0.01  # Title Case hides a word's case
        for key, words in _prose_hits(paper, candidates, starts):
            mine.setdefault(canonical[key], PROSE)
            surface[canonical[key]][words] += 1.0  # prose shows it ("LLMs", "Gaussian")
        weights.append(mine)
    return Phrases(weights, surface)


def _title_phrases(paper: Paper) -> dict[Key, str]:
    """Key -> written form of every candidate-shaped phrase of the title and keywords."""
    out: dict[Key, str] = {}
    for text in (paper.title, *paper.keywords):
        for chunk in BREAK.split(text):
            words = TOKEN.findall(chunk)
            lower = [w.lower() for w in words]
            stems = [stem(w) for w in words]
            for size in (1, 2, 3):
                for i in range(len(words) - size + 1):
                    j = i + size
                    if _fits(lower[i:j], stems[i:j]):
                        out.setdefault(tuple(stems[i:j]), " ".join(words[i:j]))
    return out


def _fits(lower: list[str], stems: list[str]) -> bool:
    """Whether a phrase could be a label: no stop word at its ends, about a subject."""
    if lower[0] in STOP_WORDS or lower[-1] in STOP_WORDS or stems[0] in GENERIC_STEMS:
        return False
    if any(w.isdigit() for w in lower) or (len(lower) == 1 and len(lower[0]) < 3):
        return False
    if len(lower) > 1 and (
        stems[-1] in GENERIC_END_STEMS
        or all(s in GENERIC_STEMS or w in STOP_WORDS for s, w in zip(stems, lower, strict=True))
    ):
        return False
    return True


def _prose_hits(paper: Paper, candidates: set, starts: set) -> Iterator[tuple[Key, str]]:
    """(key, written form) of each candidate in the abstract or summary."""
    for text in (paper.abstract, paper.ai_summary or ""):
        for chunk in BREAK.split(text):
            words = TOKEN.findall(chunk)
            stems = [stem(w) for w in words]
            for i, first in enumerate(stems):
                if first not in starts:
                    continue
                for size in (1, 2, 3):
                    key = tuple(stems[i : i + size])
                    if len(key) == size and key in candidates:
                        yield key, " ".join(words[i : i + size])


@lru_cache(maxsize=4096)
def word_set(text: str) -> frozenset[str]:
    """The stems of a text, as a set (cached: a paper's text is read by every label step)."""
    return frozenset(analyze(text))


def dangling(key: Key, surface: dict) -> bool:
    """Whether a phrase leaves the reader hanging ("Active galactic")."""
    return bool(_DANGLING.search(display(key, surface[key]).lower()))


def display(key: Key, surface: Counter) -> str:
    """Most common written form, lower-cased except acronyms (LLM, 3D) and names, capitalised."""
    forms: Counter = Counter()
    for form, count in surface.items():
        forms[form.lower()] += count
    best = max(sorted(forms), key=lambda f: forms[f]) if forms else " ".join(key)
    cased: dict[str, Counter] = {}
    for form, count in surface.items():
        if form.lower() == best:
            for word in form.split():
                cased.setdefault(word.lower(), Counter())[word] += count
    words = []
    for word in best.split():
        variants = cased.get(word, Counter({word: 1}))
        common = max(sorted(variants), key=lambda v: variants[v])
        acronym = any(c.isdigit() for c in common) or any(
            sum(c.isupper() for c in part) >= 2 for part in common.split("-")
        )
        # A name ("Lean", "Gaussian") is capitalised in the prose nearly every time it occurs.
        name = common[:1].isupper() and variants[common] >= max(1.0, 0.8 * sum(variants.values()))
        words.append(common if acronym or name else word)
    text = " ".join(words)
    return text[:1].upper() + text[1:]
