"""Labels for themes: the phrase a researcher would write for what a cluster's papers share.

Candidates are the 1-3 word phrases of titles, HF keywords and abstracts; each is scored
class-based TF-IDF style (common in the cluster, rare in the rest of the edition), two-word
phrases preferred, phrases about how a paper is written ("experimental results") excluded.
Stems make "LLM" and "LLMs" one phrase, so labels within an edition have no plural twins.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from digest.models import Paper

__all__ = ["analyze", "label_clusters"]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|\d+[A-Za-z][A-Za-z0-9]*")
# Words that describe how a paper is written, not what it is about: never a label on their own.
_GENERIC = frozenset(
    """paper propose proposed method methods approach approaches result results show shows
    novel new task tasks performance framework frameworks study studies work existing
    state-of-the-art sota achieve achieves demonstrate experiments experiment extensive data
    model models based using use used problem problems system systems analysis significantly
    improve improves improved improvement effective efficient high low large small different
    various paradigm recent key challenge challenges limited limitations address introduce
    present presents evaluate evaluation outperforms baseline baselines learning question
    questions strong level single multiple real-world world remains leverage lack
    effectiveness robust technique techniques application applications setting settings way
    time end make makes making provide provides framework first towards toward via across
    code available github com https http www number set class type form order case part
    value values term terms information process structure function general specific
    experimental comprehensive empirical extensive proposes upper lower bound bounds critical
    gap gaps""".split()
)
# A phrase ending in one of these is about the paper, not its subject ("experimental results").
_GENERIC_END = frozenset(
    """result results method methods approach approaches performance framework frameworks paper
    study studies work task tasks problem problems analysis experiment experiments baseline
    baselines technique techniques""".split()
)
# Words that leave a phrase hanging when they end it ("Active galactic", "Advanced deep").
_DANGLING = re.compile(r"(?:ic|al|ive|ous|ble|ful|ary|deep|multi|large|high|low|advanced)$")
_STOP = ENGLISH_STOP_WORDS | {"et", "al", "ie", "eg", "vs", "non", "arxiv"}


def analyze(text: str) -> list[str]:
    """Split text into lower-case word stems without stop words.

    Stemming folds plural and derived forms ("models"/"model", "robotic"/"robot") so one idea
    counts once; it is shared with the background space, which was built with it.
    """
    return [_stem(t) for t in _TOKEN.findall(text) if t.lower() not in _STOP and len(t) > 1]


@cache
def _stem(token: str) -> str:
    word = token.lower()
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in (
        "ational",
        "ation",
        "ing",
        "ed",
        "ally",
        "ical",
        "al",
        "ic",
        "ity",
        "ment",
        "er",
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@dataclass
class _Phrases:
    """Per paper: phrase key -> weight (1 in the title or keywords, 0.5 in the abstract)."""

    weights: list[dict[tuple[str, ...], float]]
    surface: dict[tuple[str, ...], Counter]


def _phrases(papers: list[Paper]) -> _Phrases:
    weights: list[dict[tuple[str, ...], float]] = []
    surface: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for paper in papers:
        found: dict[tuple[str, ...], float] = {}
        for text, weight in (
            (paper.abstract, 0.5),
            (" ; ".join(paper.keywords), 1.0),
            (paper.title, 1.0),
        ):
            for key, words in _ngrams(text):
                found[key] = max(found.get(key, 0.0), weight)
                # Prose shows a word's true case ("LLMs", "Gaussian"); Title Case does not.
                surface[key][" ".join(words)] += 1.0 if weight < 1 else 0.01
        weights.append(found)
    return _Phrases(weights, surface)


_BREAK = re.compile(r"[.,;:!?()\[\]{}\"]|\s-\s")


def _ngrams(text: str):
    """(stem key, surface words) of every 1-3 word phrase that could be a label."""
    for chunk in _BREAK.split(text):
        words = _TOKEN.findall(chunk)
        for size in (1, 2, 3):
            for i in range(len(words) - size + 1):
                gram = words[i : i + size]
                lower = [w.lower() for w in gram]
                if lower[0] in _STOP or lower[-1] in _STOP or lower[0] in _GENERIC:
                    continue
                if size == 1 and (lower[0] in _GENERIC or len(lower[0]) < 3):
                    continue
                if size > 1 and (
                    lower[-1] in _GENERIC_END or all(w in _GENERIC or w in _STOP for w in lower)
                ):
                    continue
                if any(w.isdigit() for w in gram):
                    continue
                yield tuple(_stem(w) for w in gram), gram


def label_clusters(
    clusters: list[list[Paper]], papers: list[Paper], reserved: str
) -> list[str | None]:
    """A unique readable label of 2-4 words per cluster, biggest cluster first.

    None when the cluster's papers share no phrase at all: then they have no theme in common.
    ``reserved`` is a label no cluster may take (the remainder's).
    The best phrase of two or three words wins if it is nearly as distinctive as the best
    single word; otherwise the two best words are joined ("Galaxies and stars").
    """
    phrases = _phrases(papers)
    index = {id(p): i for i, p in enumerate(papers)}
    everywhere: Counter = Counter()
    for found in phrases.weights:
        everywhere.update(found.keys())
    taken: list[frozenset[str]] = [frozenset(_stem(w) for w in reserved.split())]
    labels: list[str] = []
    for members in clusters:
        inside: Counter = Counter()
        sharing: Counter = Counter()
        for paper in members:
            for key, weight in phrases.weights[index[id(paper)]].items():
                inside[key] += weight
                sharing[key] += 1
        ranked = sorted(
            (
                (_score(key, w, len(members), everywhere[key], len(papers)), key)
                for key, w in inside.items()
                if sharing[key] >= 2  # a theme is what at least two papers have in common
            ),
            key=lambda item: (-item[0], item[1]),
        )
        label = _pick(ranked, taken, phrases.surface)
        labels.append(label)
    return labels


def _pick(ranked: list, taken: list[frozenset[str]], surface: dict) -> str | None:
    """The label for one cluster from its ranked phrases, avoiding other labels' words."""

    def free(stems: frozenset[str]) -> bool:
        # Equal stems are plural twins ("LLM" / "LLMs"); a longer phrase holding another
        # label's words ("Large language models" after "Language models") reads the same.
        return not any(stems == t or (len(t) > 1 and t <= stems) for t in taken)

    words = [(score, key) for score, key in ranked if len(key) == 1 and free(frozenset(key))]
    nouns = [w for w in words if not _DANGLING.search(_display(w[1], surface[w[1]]).lower())]
    words = nouns if len(nouns) >= 2 else words
    top_word = words[0][0] if words else 0.0
    scores = {key: score for score, key in ranked}
    for score, key in ranked:
        if len(key) > 1 and score >= 0.5 * top_word and free(frozenset(key)):
            longer = [k for k in scores if len(k) == len(key) + 1 and key in (k[:-1], k[1:])]
            better = [k for k in longer if scores[k] >= 0.7 * score]
            if better:  # "Active galactic" -> "Active galactic nuclei"
                key = max(better, key=lambda k: (scores[k], k))
            if _DANGLING.search(_display(key, surface[key]).lower()):
                continue
            taken.append(frozenset(key))
            return _display(key, surface[key])
    if len(words) >= 2:
        first, second = words[0][1], words[1][1]
        stems = frozenset(first + second)
        if free(stems) and not (first[0].startswith(second[0]) or second[0].startswith(first[0])):
            taken.append(stems)
            tail = _display(second, surface[second])
            return f"{_display(first, surface[first])} and {tail if _acronym(second, surface) else tail.lower()}"
    if words:
        taken.append(frozenset(words[0][1]))
        return _display(words[0][1], surface[words[0][1]])
    return None


def _acronym(key: tuple[str, ...], surface: dict) -> bool:
    shown = _display(key, surface[key])
    return shown != shown[:1] + shown[1:].lower()


def _score(key: tuple[str, ...], weight: float, size: int, df: int, total: int) -> float:
    # Class-based TF-IDF on document frequencies: common inside the cluster, rare outside it.
    specificity = math.log((total + 1) / (df + 0.5))
    bonus = {1: 1.0, 2: 1.2, 3: 1.1}[len(key)]  # a researcher writes "Robot manipulation"
    return (weight / size) * specificity * bonus


def _display(key: tuple[str, ...], surface: Counter) -> str:
    """Most common written form, lower-cased except acronyms (LLM, 3D) and names, capitalised."""
    forms: Counter = Counter()
    for form, count in surface.items():
        forms[form.lower()] += count
    best = max(sorted(forms), key=lambda f: forms[f])
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
