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
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from digest.models import Paper
from digest.themes.categories import CATEGORY_NAMES, category_name
from digest.themes.taxonomy import Taxonomy, load_taxonomy

__all__ = ["CATEGORY_NAMES", "MIN_COVERAGE", "analyze", "coverage", "label_clusters"]

# A label's every content word must be in this share of its theme's papers: below it the label
# describes a minority ("Reasoning and lean" over seven papers of which two are about Lean).
MIN_COVERAGE = 1 / 3
# "X and Y" only when each part is in this share of the papers; else the better part alone.
PAIR_COVERAGE = 1 / 2

# Hash slots for counting in how many papers a phrase occurs (4 Mi: 16 MB, few collisions).
_HASH_SLOTS = 1 << 22
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
    gap gaps solution solutions given allow allows allowing enable enables enabling significant
    future ability capability capabilities potential insight insights aspect aspects factor
    factors impact role prior current previous typical common main core overall simple validate
    verify accuracy quality efficiency robustness scalability scalable success finding findings
    highlight highlights exhibit exhibits reveal reveals suggest suggests indicate indicates
    remain maximum minimum identify identifies design designs designed learned research
    researchers demonstrated shown
    achieving achieved diverse complex dynamic computational accurate several numerous crucial
    essential important fundamental practical theoretical competitive promising superior
    consistent substantial unified interpretable lightweight fine-grained end-to-end real-time
    large-scale long-term training trained benchmark benchmarks dataset datasets metric
    metrics strategy strategies develop develops developing developed pretrained including
    include includes support supports""".split()
)
# A phrase ending in one of these is about the paper, not its subject ("experimental results").
_GENERIC_END = frozenset(
    """result results method methods approach approaches performance framework frameworks paper
    study studies work task tasks problem problems analysis experiment experiments baseline
    baselines technique techniques using based via towards toward across within without given
    effectiveness efficiency robustness accuracy quality demonstrate demonstrates show shows
    highlight highlights remain remains exhibit exhibits reveal reveals suggest suggests
    achieve achieves yield yields""".split()
)
# Words that leave a phrase hanging when they end it ("Active galactic", "Advanced deep").
_DANGLING = re.compile(
    r"(?:ic|al|ive|ous|ble|ful|ary|ed|deep|multi|large|high|low|advanced|large language)$"
)
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


# Stems of the generic words: not content, so they never decide a label's coverage, and
# "modeling" or "learned" are as generic as "model" and "learning".
_GENERIC_STEMS = frozenset(_stem(w) for w in _GENERIC)
_GENERIC_END_STEMS = frozenset(_stem(w) for w in _GENERIC_END)


@dataclass
class _Phrases:
    """Per paper: phrase key -> weight (1 in the title or keywords, 0.5 in the abstract)."""

    weights: list[dict[tuple[str, ...], float]]
    surface: dict[tuple[str, ...], Counter]


def _phrases(papers: list[Paper]) -> _Phrases:
    weights: list[dict[tuple[str, ...], float]] = []
    surface: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    repeated = _in_two_papers(papers)
    # One tuple per distinct phrase, shared by every paper holding it: a new tuple per
    # occurrence was most of the memory of labelling 10,000 papers.
    canonical: dict[tuple[str, ...], tuple[str, ...]] = {}
    for paper in papers:
        found: dict[tuple[str, ...], float] = {}
        for fresh, words, weight in _paper_ngrams(paper):
            if not repeated(fresh):
                continue  # in one paper only: it can never be what two papers share
            key = canonical.setdefault(fresh, fresh)
            found[key] = max(found.get(key, 0.0), weight)
            # Prose shows a word's true case ("LLMs", "Gaussian"); Title Case does not.
            surface[key][" ".join(words)] += 1.0 if weight < 1 else 0.01
        weights.append(found)
    return _Phrases(weights, surface)


def _paper_ngrams(paper: Paper) -> Iterator[tuple[tuple[str, ...], list[str], float]]:
    """(key, surface words, weight) of each phrase of a paper: 1 in title or keywords, 0.5 else."""
    for text, weight in (
        (paper.abstract, 0.5),
        (" ; ".join(paper.keywords), 1.0),
        (paper.title, 1.0),
    ):
        for key, words in _ngrams(text):
            yield key, words, weight


def _in_two_papers(papers: list[Paper]) -> Callable[[tuple[str, ...]], bool]:
    """A test that passes every phrase found in at least two papers (and a few hash twins).

    Most phrases of a batch occur in one paper only; only shared ones can label a theme. A
    first pass counts papers per phrase in a fixed table of hash slots, so those phrases are
    never stored: at 10,000 papers storing every phrase took ~250 MB. A slot shared by two
    phrases only lets an extra one through, which changes nothing.
    """
    slots = np.zeros(_HASH_SLOTS, dtype=np.uint32)
    for paper in papers:
        seen = {hash(key) % _HASH_SLOTS for key, _, _ in _paper_ngrams(paper)}
        slots[np.fromiter(seen, dtype=np.int64, count=len(seen))] += 1
    repeated = (slots >= 2).tobytes()  # 4 MB of flags; the counts are let go
    return lambda key: repeated[hash(key) % _HASH_SLOTS] == 1


_BREAK = re.compile(r"[.,;:!?()\[\]{}\"]|\s-\s")


def _ngrams(text: str):
    """(stem key, surface words) of every 1-3 word phrase that could be a label."""
    for chunk in _BREAK.split(text):
        words = _TOKEN.findall(chunk)
        for size in (1, 2, 3):
            for i in range(len(words) - size + 1):
                gram = words[i : i + size]
                lower = [w.lower() for w in gram]
                if lower[0] in _STOP or lower[-1] in _STOP or any(w.isdigit() for w in gram):
                    continue
                key = tuple(_stem(w) for w in gram)
                if key[0] in _GENERIC_STEMS or (size == 1 and len(lower[0]) < 3):
                    continue
                if size > 1 and (
                    key[-1] in _GENERIC_END_STEMS
                    or all(
                        s in _GENERIC_STEMS or w in _STOP for s, w in zip(key, lower, strict=True)
                    )
                ):
                    continue
                yield key, gram


def label_clusters(
    clusters: list[list[Paper]], papers: list[Paper], reserved: str
) -> list[str | None]:
    """A unique readable label of 1-4 words per cluster, biggest cluster first.

    None when the cluster's papers share no phrase at all: then they have no theme in common.
    ``reserved`` is a label no cluster may take (the remainder's). Labels are honest first:
    only phrases in two titles whose words cover a third of the papers (``coverage``) compete.
    In order: the best such phrase of two or three words if it is nearly as distinctive as the
    best single word; two words joined ("Galaxies and stars") when each is in half the papers;
    a single word in half the papers; the arXiv category, then the taxonomy topic, of a third
    of the papers; a single word in a third; the phrase the most papers share.
    """
    phrases = _phrases(papers)
    index = {id(p): i for i, p in enumerate(papers)}
    everywhere: Counter = Counter()
    for found in phrases.weights:
        everywhere.update(found.keys())
    taken: list[frozenset[str]] = [frozenset(_stem(w) for w in reserved.split())]
    labels: list[str | None] = []
    for members in clusters:
        rows = [index[id(p)] for p in members]
        inside: Counter = Counter()
        sharing: Counter = Counter()
        titled: Counter = Counter()
        for row in rows:
            for key, weight in phrases.weights[row].items():
                inside[key] += weight
                sharing[key] += 1
                titled[key] += weight >= 1
        # a theme is what at least two papers have in common
        shared = sorted(key for key in inside if sharing[key] >= 2)
        if not shared:
            labels.append(None)
            continue
        # Each paper is in one cluster: its words are needed once, here, and then let go.
        words = [frozenset(analyze(_text(p))) for p in members]
        cover = {key: coverage(key, words) for key in shared}
        # Coverage counts twice (weighted: a title counts more than an abstract): a phrase in
        # most papers beats a sharper one in a third ("Optimization" over "Differential privacy").
        base = {
            key: _score(key, inside[key], len(members), everywhere[key], len(papers))
            for key in shared
        }
        scores = {key: inside[key] / len(members) * base[key] for key in shared}
        # Researchers name their subject in titles; abstracts are full of "diverse", "complex".
        ranked = sorted(
            (
                (scores[key], key)
                for key in shared
                if cover[key] >= MIN_COVERAGE and titled[key] >= 2
            ),
            key=lambda item: (-item[0], item[1]),
        )
        # A word in half the papers beats a field name; a word in a third does not.
        label = (
            _pick(ranked, taken, phrases.surface, cover, scores, base)
            or _category_label(members, taken)
            or _topic_label(members, taken)
            or _single(
                _words(ranked, taken, phrases.surface),
                taken,
                phrases.surface,
                cover,
                scores,
                MIN_COVERAGE,
            )
            or _widest(shared, cover, inside, scores, taken, phrases.surface)
        )
        labels.append(label)
    return labels


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
    return tuple(w for w in plain if w not in _GENERIC_STEMS) or plain or key


def _text(paper: Paper) -> str:
    return " ; ".join((paper.title, *paper.keywords, paper.abstract))


def _free(stems: frozenset[str], taken: list[frozenset[str]]) -> bool:
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


def _pick(
    ranked: list,
    taken: list[frozenset[str]],
    surface: dict,
    cover: dict,
    scores_all: dict,
    base: dict,
) -> str | None:
    """The label for one cluster from its ranked covering phrases, avoiding other labels.

    A single word only when it is in half the papers; None leaves the choice to the fallbacks.
    """
    words = _words(ranked, taken, surface)
    # Phrase against word on distinctiveness alone: a phrase that covers the theme (checked
    # already) reads better than a bare word even when the word is in a few more papers.
    top_word = max((base[k] for _, k in words), default=0.0)
    scores = {key: score for score, key in ranked}
    for score, key in ranked:
        if len(key) > 1 and base[key] >= 0.5 * top_word and _free(frozenset(key), taken):
            longer = [k for k in scores if len(k) == len(key) + 1 and key in (k[:-1], k[1:])]
            better = [k for k in longer if scores[k] >= 0.7 * score]
            if better:  # "Active galactic" -> "Active galactic nuclei"
                key = max(better, key=lambda k: (scores[k], k))
            if _dangling(key, surface):
                continue
            taken.append(frozenset(key))
            return _display(key, surface[key])
    if len(words) >= 2:
        first, second = words[0][1], words[1][1]
        stems = frozenset(first + second)
        # Join only when the first word alone leaves much of the theme out and both cover half.
        both = cover[first] < 2 / 3 and min(cover[first], cover[second]) >= PAIR_COVERAGE
        apart = not (first[0].startswith(second[0]) or second[0].startswith(first[0]))
        if both and apart and _free(stems, taken):
            taken.append(stems)
            tail = _display(second, surface[second])
            tail = tail if _acronym(second, surface) else tail.lower()
            return f"{_display(first, surface[first])} and {tail}"
    return _single(words, taken, surface, cover, scores_all, PAIR_COVERAGE)


def _single(
    words: list, taken: list, surface: dict, cover: dict, scores_all: dict, least: float
) -> str | None:
    """The best single word (completed if it hangs) in at least ``least`` of the papers."""
    for _, key in words:
        whole = _completed(key, scores_all, surface, taken) if cover[key] >= least else None
        if whole is not None:
            taken.append(frozenset(whole))
            return _display(whole, surface[whole])
    return None


def _words(ranked: list, taken: list, surface: dict) -> list:
    """The free single words of ``ranked``, those that do not hang ("Galactic") first."""
    words = [
        (score, key) for score, key in ranked if len(key) == 1 and _free(frozenset(key), taken)
    ]
    return [w for w in words if not _dangling(w[1], surface)] or words


def _dangling(key: tuple[str, ...], surface: dict) -> bool:
    return bool(_DANGLING.search(_display(key, surface[key]).lower()))


def _completed(
    key: tuple[str, ...], scores: dict, surface: dict, taken: list[frozenset[str]]
) -> tuple[str, ...] | None:
    """``key`` itself, or for a word left hanging ("Coded") its best phrase ("Coded caching")."""
    if not _dangling(key, surface):
        return key
    longer = [
        k
        for k in scores
        if len(k) == 2
        and k[0] == key[0]
        and not _dangling(k, surface)
        and _free(frozenset(k), taken)
    ]
    return max(longer, key=lambda k: (scores[k], k)) if longer else None


def _category_label(members: list[Paper], taken: list[frozenset[str]]) -> str | None:
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
    return _first_free(
        (name for name in ranked if carried[name] >= MIN_COVERAGE * len(members)), taken
    )


def _topic_label(members: list[Paper], taken: list[frozenset[str]]) -> str | None:
    """The shipped taxonomy topic ("Language models", "Robotics") most of the papers match."""
    counts: Counter = Counter()
    for paper in members:
        counts.update(_default_taxonomy().match(paper))
    order = {name: i for i, name in enumerate(_default_taxonomy().topics)}
    ranked = sorted(counts, key=lambda name: (-counts[name], order[name]))
    return _first_free(
        (name for name in ranked if counts[name] >= MIN_COVERAGE * len(members)), taken
    )


@cache
def _default_taxonomy() -> Taxonomy:
    return load_taxonomy(None)


def _first_free(names, taken: list[frozenset[str]]) -> str | None:
    for name in names:
        stems = frozenset(analyze(name))
        if _free(stems, taken):
            taken.append(stems)
            return name
    return None


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
    free = [key for key in ranked if _free(frozenset(key), taken)]
    whole = [k for k in (_completed(key, scores, surface, taken) for key in free) if k]
    if not (whole or free):
        return None
    # A phrase left hanging ("Active galactic") only when nothing else is left.
    key = (whole or free)[0]
    taken.append(frozenset(key))
    return _display(key, surface[key])


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
