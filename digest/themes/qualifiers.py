"""A lone word made into a label a researcher would write: "Black hole", "Galaxies and stars".

A one-word label ("Hole", "Robotics", "Galaxies") tells a reader little. Its qualifier comes
from the theme's own papers and is as honest as the word: first the two-word phrase holding
the word that the most papers write (adjacent in a title, the keywords, the abstract or the
summary: "black hole", "neural networks"), if enough of the papers write it; else the
theme's most distinctive word that as many papers hold, before the word if an adjective
("Multimodal reasoning"), after "and" if a noun ("Galaxies and stars"), in the phrase the
papers write it in if it modifies another word ("Agents and language models"). When none
exists the word stays alone: a qualifier that most papers lack would mislead.
"""

from __future__ import annotations

import math
from collections import Counter

from digest.models import Paper
from digest.themes.field_labels import MIN_COVERAGE, free
from digest.themes.phrases import BREAK, dangling, display, word_set
from digest.themes.words import GENERIC_END_STEMS, GENERIC_STEMS, STOP_WORDS, TOKEN, stem

__all__ = ["adjacent_phrase", "joined"]

Key = tuple[str, ...]
# A written form in a title counts this little against one in prose: Title Case hides case.
TITLE_FORM = 0.01
# A word goes with a theme when it is this many times as common in it as in the edition.
LIFT = 2.0
# The best few such words are tried in turn for one that reads as a noun or an adjective.
CHOICES = 5
# A word written before another this often is a modifier ("language" of "language models").
MODIFIER = 0.7


def adjacent_phrase(
    word: str, members: list[Paper], taken: list[frozenset[str]], least: float = MIN_COVERAGE
) -> tuple[Key, str] | None:
    """(key, written form) of the two-word phrase holding ``word`` most papers write, or None.

    The phrase must be written by ``least`` of the papers (and two), read well as a label (no
    stop word, number or generic word such as "novel" or "results" beside the word, no
    hanging end) and read unlike the labels ``taken``. Ties go to the phrase more titles hold.
    """
    target = stem(word)
    papers: Counter = Counter()
    titled: Counter = Counter()
    forms: dict[Key, Counter] = {}
    for paper in members:
        found = _pairs(target, paper.title, forms, TITLE_FORM)
        titled.update(found)
        for part in (*paper.keywords, paper.abstract, paper.ai_summary or ""):
            found |= _pairs(target, part, forms, 1.0)
        papers.update(found)
    least = max(2, least * len(members))
    ranked = sorted(papers, key=lambda key: (-papers[key], -titled[key], key))
    for key in ranked:
        if papers[key] < least:
            break
        if not dangling(key, forms) and free(frozenset(key), taken):
            return key, display(key, forms[key])
    return None


def _pairs(target: str, part: str, forms: dict[Key, Counter], weight: float) -> set[Key]:
    """The label-shaped two-word phrases of ``part`` holding the stem ``target``."""
    found: set[Key] = set()
    for chunk in BREAK.split(part):
        words = TOKEN.findall(chunk)
        stems = [stem(w) for w in words]
        for i, current in enumerate(stems):
            if current != target:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < len(words) and _qualifies(words[j], stems[j], before=j < i):
                    first, last = min(i, j), max(i, j)
                    key = (stems[first], stems[last])
                    if key[0] != key[1]:
                        found.add(key)
                        written = f"{words[first]} {words[last]}"
                        forms.setdefault(key, Counter())[written] += weight
    return found


def _qualifies(word: str, term: str, *, before: bool) -> bool:
    """Whether ``word`` can stand beside the label's word: a subject, not filler."""
    lower = word.lower()
    if lower in STOP_WORDS or len(word) < 3:
        return False
    # "novel robots" and "robots using" say nothing; "robot learning" does.
    return term not in (GENERIC_STEMS if before else GENERIC_END_STEMS)


def joined(
    label: str,
    own: frozenset[str],
    members: list[Paper],
    words: list[frozenset[str]],
    edition: tuple[Counter, int],
    taken: list[frozenset[str]],
    least: float = MIN_COVERAGE,
) -> tuple[Key, str] | None:
    """(key of the word added, whole label) for ``label`` (stems ``own``) with a second word.

    The second word is a subject word of ``least`` of the papers (and two) that one of their
    titles holds too (abstracts are full of "rely" and "consistently"), at least LIFT times
    as common in the theme as in the edition (``edition``: stem -> papers, and how many),
    best by coverage times the log of that lift, reading unlike the labels ``taken``. An
    adjective goes before the word ("Multimodal reasoning"); a noun after "and" ("Galaxies and
    stars"); a word the papers write mostly before another comes with that other word, when
    ``least`` of the papers write the two ("Agents and language models"), else is passed
    over. None when no word qualifies.
    """
    (held, total), n = edition, len(members)
    titled = Counter(w for p in members for w in word_set(p.title))
    counts = Counter(w for found in words for w in found)
    scored = []
    for term, count in counts.items():
        if count < max(2, least * n) or not titled[term] or _filler(term, own):
            continue
        lift = (count / n) / (max(held[term], count) / total)
        if lift >= LIFT and free(own | {term}, taken):
            scored.append((-count / n * math.log(lift), term))
    for _, term in sorted(scored)[:CHOICES]:
        forms, modifier = _usage(term, members)
        written = display((term,), forms)
        if dangling((term,), {(term,): forms}):  # "Multimodal", "Gravitational"
            return (term,), f"{written} {label[:1].lower() + label[1:] if _plain(label) else label}"
        if modifier < MODIFIER:
            # a name ("Gaussian") is capitalised nearly every time it is written
            name = sum(c for f, c in forms.items() if f[:1].isupper()) >= 0.8 * sum(forms.values())
            return (term,), f"{label} and {written if name else _lower(written)}"
        # a modifier: the phrase the papers write it in ("Agents and language models")
        phrase = adjacent_phrase(written, members, taken, least)
        if phrase is not None and free(frozenset(phrase[0]), [own]):
            key, text = phrase
            if free(own | set(key), taken):
                return key, f"{label} and {_lower(text)}"
    return None


def _filler(term: str, own: frozenset[str]) -> bool:
    """Stop words, generic words, the label's own words and their prefixes ("LLM"/"LLMs")."""
    return (
        term in STOP_WORDS
        or term in GENERIC_STEMS
        or len(term) < 3
        or any(term.startswith(w) or w.startswith(term) for w in own)
    )


def _usage(term: str, members: list[Paper]) -> tuple[Counter, float]:
    """How the papers write a stem (form -> weight) and the share of uses before another word.

    A plural form wins when the papers write it a third as often as the singular ("Galaxies
    and stars", not "Galaxies and star").
    """
    forms: Counter = Counter()
    uses = before = 0
    for paper in members:
        for part, weight in ((paper.title, TITLE_FORM), (paper.abstract, 1.0)):
            for chunk in BREAK.split(part):
                tokens = TOKEN.findall(chunk)
                for i, token in enumerate(tokens):
                    if stem(token) == term:
                        forms[token] += weight
                        uses += 1
                        after = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
                        before += bool(after) and after not in STOP_WORDS
    plural = Counter({f: c for f, c in forms.items() if f.lower().endswith("s")})
    if plural and sum(plural.values()) >= (sum(forms.values()) - sum(plural.values())) / 3:
        forms = plural
    return forms, before / max(1, uses)


def _plain(word: str) -> bool:
    """An ordinary word (not an acronym or a name) that may be lower-cased mid-label."""
    first = word.split()[0]
    return first[1:] == first[1:].lower() and not any(c.isdigit() for c in first)


def _lower(text: str) -> str:
    """A phrase as written after "and": Title Case words lower-cased, acronyms kept."""
    return " ".join(
        w.lower() if w[1:] == w[1:].lower() and w[:1].isalpha() else w for w in text.split()
    )
