"""Labels for themes: the phrase a researcher would write for what a cluster's papers share.

Candidates are the 1-3 word phrases of titles, HF keywords and abstracts; each is scored
class-based TF-IDF style (common in the cluster, rare in the rest of the edition), two-word
phrases preferred, phrases about how a paper is written ("experimental results") excluded.
A label must describe the theme as a whole: every content word of a candidate must occur in at
least a third of the cluster's papers (its *coverage*), so two papers on Lean never name a
theme of seven, and it must be in at least two titles (abstracts are full of "diverse" and
"complex"). When no phrase covers the theme, the label falls back to something broader but
honest: the arXiv category most of its papers carry ("Robotics"), else the shipped taxonomy
topic most of them match ("Language models"), else the phrase that covers most.
Stems make "LLM" and "LLMs" one phrase, so labels within an edition have no plural twins.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from digest.models import Paper
from digest.themes.categories import CATEGORY_NAMES
from digest.themes.field_labels import (
    MIN_COVERAGE,
    category_label,
    common_word,
    free,
    text,
    topic_label,
)
from digest.themes.phrases import dangling, display, find_phrases, word_set
from digest.themes.qualifiers import adjacent_phrase, joined
from digest.themes.words import GENERIC_STEMS, STOP_WORDS, analyze, stem

__all__ = ["CATEGORY_NAMES", "MIN_COVERAGE", "analyze", "coverage", "label_clusters"]

# "X and Y" only when each part is in this share of the papers; else the better part alone.
PAIR_COVERAGE = 1 / 2

_STOP = STOP_WORDS
# At most this many papers of a theme are read for its label (evenly spread over the theme):
# shares and scores of 30 papers name a theme of 300 as well, in a tenth of the time.
SAMPLE = 30
# A phrase beats a single word when it is this distinctive relative to it (a bare word such
# as "Reasoning" tells a reader of a Hugging Face day little), and phrases score this bonus.
PHRASE_SHARE = 0.3
LENGTH_BONUS = {1: 1.0, 2: 1.4, 3: 1.5}
# A word chosen alone is written as a phrase holding it that scores this share of it.
EXTEND_SHARE = 0.5
# "X and Y": the second part must be in this share of the papers.
JOIN_COVERAGE = 0.4
# A lone word's qualifier must be in as many papers as the word, or in this share of them.
QUALIFIER_COVERAGE = 0.6


def label_clusters(
    clusters: list[list[Paper]], papers: list[Paper], reserved: str, *, qualify: bool = True
) -> list[str | None]:
    """A unique readable label of 1-4 words per cluster, biggest cluster first.

    None when the cluster's papers share no phrase at all: then they have no theme in common.
    ``reserved`` is a label no cluster may take (the remainder's). Labels are honest first:
    only phrases in two titles whose words cover a third of the papers (``coverage``) compete.
    In order: the best such phrase of two or three words if it is nearly as distinctive as the
    best single word; two words joined ("Galaxies and stars") when each is in half the papers;
    a single word in half the papers; the arXiv category, then the taxonomy topic, of a third
    of the papers; a single word in a third; the phrase the most papers share. A label of
    one word then takes a qualifier from its papers (``_qualified``) unless ``qualify`` is
    False: a sub-theme's "Parent: sub" has the parent's words already.
    """
    samples = [_sample(members) for members in clusters]
    inside = {id(p) for members in clusters for p in members}
    read = [p for sample in samples for p in sample]
    read += _sample([p for p in papers if id(p) not in inside])
    phrases = find_phrases(read)
    everywhere: Counter = Counter()
    for found in phrases.weights:
        everywhere.update(found.keys())
    # Papers holding each word, over the edition: a qualifier must be the theme's own.
    held = Counter(w for p in read for w in word_set(text(p)))
    edition = _Edition(everywhere, held, len(read))
    taken: list[frozenset[str]] = [frozenset(stem(w) for w in reserved.split())]
    labels: list[str | None] = []
    start = 0
    for sample in samples:
        weights = phrases.weights[start : start + len(sample)]
        start += len(sample)
        labels.append(_label(sample, weights, phrases.surface, edition, taken, qualify))
    return labels


@dataclass(frozen=True)
class _Edition:
    """What a label is told apart from: papers holding each phrase key and each word."""

    phrases: Counter
    words: Counter
    papers: int


def _sample(members: list[Paper]) -> list[Paper]:
    """At most SAMPLE of the papers, evenly spread (deterministic)."""
    if len(members) <= SAMPLE:
        return list(members)
    step = len(members) / SAMPLE
    return [members[int(i * step)] for i in range(SAMPLE)]


def _label(
    members: list[Paper],
    weights: list[dict],
    surface: dict,
    edition: _Edition,
    taken: list[frozenset[str]],
    qualify: bool,
) -> str | None:
    """One cluster's label (see label_clusters), or None if its papers share no phrase."""
    inside: Counter = Counter()
    sharing: Counter = Counter()
    titled: Counter = Counter()
    for found in weights:
        for key, weight in found.items():
            inside[key] += weight
            sharing[key] += 1
            titled[key] += weight >= 1
    # a theme is what at least two papers have in common
    shared = sorted(key for key in inside if sharing[key] >= 2)
    words = [word_set(text(p)) for p in members]
    if not shared:  # no phrase in common, but maybe a field or a word
        field = category_label(members, taken) or topic_label(members, taken)
        label = field or common_word(members, taken)
        if not qualify:
            return label
        return _qualified(label, members, words, edition, taken, bool(field))
    cover = {key: coverage(key, words) for key in shared}
    # Coverage counts twice (weighted: a title counts more than an abstract): a phrase in
    # most papers beats a sharper one in a third ("Optimization" over "Differential privacy").
    base = {
        key: _score(key, inside[key], len(members), edition.phrases[key], edition.papers)
        for key in shared
    }
    scores = {key: inside[key] / len(members) * base[key] for key in shared}
    # Researchers name their subject in titles; abstracts are full of "diverse", "complex".
    ranked = sorted(
        ((scores[key], key) for key in shared if cover[key] >= MIN_COVERAGE and titled[key] >= 2),
        key=lambda item: (-item[0], item[1]),
    )
    # A word in half the papers beats a field name; a word in a third does not.
    field = None
    label = _pick(ranked, taken, surface, cover, scores, base)
    if label is None:
        field = category_label(members, taken) or topic_label(members, taken)
    label = (
        label
        or field
        or _single(ranked, taken, surface, cover, scores)
        or _widest(shared, cover, inside, scores, taken, surface)
        or common_word(members, taken)
    )
    if not qualify:
        return label
    return _qualified(label, members, words, edition, taken, bool(field))


def _qualified(
    label: str | None,
    members: list[Paper],
    words: list[frozenset[str]],
    edition: _Edition,
    taken: list[frozenset[str]],
    field: bool = False,
) -> str | None:
    """A one-word label with a qualifier from its papers (see digest.themes.qualifiers).

    First the two-word phrase holding the word that the most papers write ("Hole" -> "Black
    hole"), else the theme's most distinctive covering word ("Galaxies and stars",
    "Multimodal reasoning"). What is added must be in as many of the papers as the word, or
    in QUALIFIER_COVERAGE of them (and a third): a qualifier narrows a label only so far. The label as it
    was when nothing qualifies, or when it is a ``field`` name (arXiv category, taxonomy
    topic) whose own word is in fewer than a third of the papers: such a name covers the
    papers filed under it, and a qualified label is read as words. ``taken[-1]`` holds the
    label's stems (every step records its choice there) and becomes the whole label's.
    """
    if label is None or len(label.split()) > 1:
        return label
    alone = coverage(tuple(sorted(taken[-1])), words) if words else 0.0
    if field and alone < MIN_COVERAGE:
        return label
    own = taken.pop()
    least = max(MIN_COVERAGE, min(alone, QUALIFIER_COVERAGE))
    key, whole = (
        adjacent_phrase(label, members, taken, least)
        or joined(label, own, members, words, (edition.words, edition.papers), taken, least)
        or ((), label)
    )
    taken.append(own | frozenset(key))
    return whole


def coverage(key: tuple[str, ...], papers_words: list[frozenset[str]]) -> float:
    """Share of papers holding every content word of a phrase key (its least common one).

    Content words leave out stop words and generic ones ("model" in "Language models"), which
    say nothing about a theme; a key of only such words counts them all.
    """
    if not papers_words:
        return 0.0
    content = _content(key)
    return min(sum(word in found for found in papers_words) for word in content) / len(papers_words)


def _content(key: tuple[str, ...]) -> tuple[str, ...]:
    plain = tuple(w for w in key if w not in _STOP)
    return tuple(w for w in plain if w not in GENERIC_STEMS) or plain or key


def _pick(
    ranked: list,
    taken: list[frozenset[str]],
    surface: dict,
    cover: dict,
    scores_all: dict,
    base: dict,
) -> str | None:
    """The label for one cluster from its ranked covering phrases, avoiding other labels.

    The best phrase nearly as distinctive as the best word, else a word in half the papers
    (written as a covering phrase holding it if there is one); joined by "and" with a second
    one when the first leaves much of the theme out. None leaves the choice to the fallbacks.
    """
    words = _words(ranked, taken, surface)
    # Phrase against word on distinctiveness alone: a phrase that covers the theme (checked
    # already) reads better than a bare word even when the word is in a few more papers.
    top_word = max((base[k] for _, k in words), default=0.0)
    scores = {key: score for score, key in ranked}
    first = None
    for score, key in ranked:
        if len(key) > 1 and base[key] >= PHRASE_SHARE * top_word and free(frozenset(key), taken):
            longer = [k for k in scores if len(k) == len(key) + 1 and key in (k[:-1], k[1:])]
            better = [k for k in longer if scores[k] >= 0.7 * score]
            if better:  # "Active galactic" -> "Active galactic nuclei"
                key = max(better, key=lambda k: (scores[k], k))
            if not dangling(key, surface):
                first = key
                break
    for _, key in words if first is None else ():
        if cover[key] >= PAIR_COVERAGE:
            first = _completed(key, scores_all, surface, taken, cover)
            if first is not None:
                break
    if first is None:
        return None
    return _joined(first, ranked, cover, taken, surface)


def _joined(first: tuple, ranked: list, cover: dict, taken: list, surface: dict) -> str:
    """``first``, or "First and second" when first is a lone word or leaves a third out.

    The second is the best covering phrase sharing no word with the first, in at least
    JOIN_COVERAGE of the papers, the whole at most four words ("Galaxies and star formation").
    """
    label = display(first, surface[first])
    second = None
    if cover[first] < 2 / 3 or len(first) == 1:  # a lone word says little: add a second
        second = next(
            (
                key
                for _, key in ranked
                if len(first) + len(key) <= 3
                and cover[key] >= JOIN_COVERAGE
                and _apart(first, key)
                and not dangling(key, surface)
                and free(frozenset(first + key), taken)
            ),
            None,
        )
    if second is None:
        taken.append(frozenset(first))
        return label
    taken.append(frozenset(first + second))
    return f"{label} and {_lowered(second, surface)}"


def _lowered(key: tuple[str, ...], surface: dict) -> str:
    """A phrase as written after "and": lower case unless it starts with an acronym or name."""
    tail = display(key, surface[key])
    return tail if _acronym(key, surface) else tail[:1].lower() + tail[1:]


def _apart(first: tuple, second: tuple) -> bool:
    """No word of one is a word, or the start of a word, of the other ("LLM" / "LLMs")."""
    return not any(a.startswith(b) or b.startswith(a) for a in first for b in second)


def _single(ranked: list, taken: list, surface: dict, cover: dict, scores_all: dict) -> str | None:
    """The best word in a third of the papers, as a phrase if one covers them, maybe joined."""
    for _, key in _words(ranked, taken, surface):
        whole = _completed(key, scores_all, surface, taken, cover)
        if whole is not None:
            return _joined(whole, ranked, cover, taken, surface)
    return None


def _words(ranked: list, taken: list, surface: dict) -> list:
    """The free single words of ``ranked``, those that do not hang ("Galactic") first."""
    words = [(score, key) for score, key in ranked if len(key) == 1 and free(frozenset(key), taken)]
    return [w for w in words if not dangling(w[1], surface)] or words


def _completed(
    key: tuple[str, ...],
    scores: dict,
    surface: dict,
    taken: list[frozenset[str]],
    cover: dict | None = None,
) -> tuple[str, ...] | None:
    """``key``, or a phrase holding it that says more ("Reasoning" -> "Multimodal reasoning").

    A longer phrase wins when it covers a third of the papers too (``cover``) and scores at
    least EXTEND_SHARE of the word; a word left hanging ("Coded") takes its best phrase
    ("Coded caching") in any case, or nothing.
    """
    cover = cover or {}
    longer = [
        k
        for k in scores
        if 1 < len(k) <= 3
        and key[0] in k
        and not dangling(k, surface)
        and free(frozenset(k), taken)
    ]
    saying_more = [
        k
        for k in longer
        if cover.get(k, 0.0) >= MIN_COVERAGE and scores[k] >= EXTEND_SHARE * scores.get(key, 0.0)
    ]
    if saying_more:
        return max(saying_more, key=lambda k: (scores[k], k))
    if not dangling(key, surface):
        return key
    hanging = [k for k in longer if len(k) == 2 and k[0] == key[0]]
    return max(hanging, key=lambda k: (scores[k], k)) if hanging else None


def _widest(
    shared: list,
    cover: dict,
    weight: dict,
    scores: dict,
    taken: list[frozenset[str]],
    surface: dict,
) -> str | None:
    """The free shared phrase covering most papers: the least misleading label left.

    Weighted coverage (``weight``: a title counts twice an abstract) decides, so that what
    the titles share beats the abstracts' filler.
    """
    ranked = sorted(shared, key=lambda key: (-weight[key], -cover[key], key))
    open_ = [key for key in ranked if free(frozenset(key), taken)]
    whole = [k for k in (_completed(key, scores, surface, taken) for key in open_) if k]
    if not (whole or open_):
        return None
    # A phrase left hanging ("Active galactic") only when nothing else is left.
    key = (whole or open_)[0]
    taken.append(frozenset(key))
    return display(key, surface[key])


def _acronym(key: tuple[str, ...], surface: dict) -> bool:
    shown = display(key, surface[key])
    return shown != shown[:1] + shown[1:].lower()


def _score(key: tuple[str, ...], weight: float, size: int, df: int, total: int) -> float:
    # Class-based TF-IDF on document frequencies: common inside the cluster, rare outside it.
    specificity = math.log((total + 1) / (df + 0.5))
    bonus = LENGTH_BONUS[len(key)]  # a researcher writes "Robot manipulation"
    return (weight / size) * specificity * bonus
