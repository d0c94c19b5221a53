"""Followed authors and organisations: who of a paper's authors a reader follows.

Names are compared after folding what varies between listings of one person: case, accents
("José" = "Jose", TeX's ``Andr\\'e`` = "Andre"), punctuation and hyphens ("Jean-Pierre" =
"Jean Pierre"), and "Surname, Given" order. The rule, per paper:

* the same name after folding always matches ("kaiming he" = "Kaiming HE");
* otherwise a followed name matches an author with the same surname whose given names agree
  with it initial by initial ("Kaiming He" ~ "K. He", "K He"; "K. He" ~ "Kaiming He"), where
  a spelled-out given name must equal a spelled-out one ("Kaiming He" is not "Kun He") and a
  middle name only one side gives is ignored ("David Jacobs" ~ "David E. Jacobs");
* and such an abbreviated match counts only when it is unambiguous within the paper: exactly
  one of the paper's distinct authors agrees with the followed name: a follow of "K. He"
  matches a paper listing "Kaiming He", not one listing both "Kaiming He" and "Kun He".

A one-word followed name ("Cher") matches only that exact folded name. Organisations match
the paper's ``organization`` (the Hugging Face organisation; papers carry no per-author
affiliations) when the followed name's folded words appear in it as a run of whole words:
"DeepMind" matches "Google DeepMind", "Meta" does not match "Metamaterials Lab".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from digest.models import Paper

__all__ = ["Byline", "Follows", "byline", "fold", "name_parts"]

# TeX accents in arXiv listings: \'e, \"o, \`a, \^o, \~n, \c{c}, {\'e}
_TEX_ACCENT = re.compile(r"""\\(?:['"`^~=.uvHckb]|c\s)\{?\s*([A-Za-z])\}?""")
_NON_WORD = re.compile(r"[^\w]+")


def fold(text: str) -> str:
    """Lower case, no accents, words split on anything but letters and digits, single spaces."""
    text = _TEX_ACCENT.sub(r"\1", text).replace("{", "").replace("}", "")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    # Letters with no decomposition that readers type without their stroke.
    plain = plain.translate(str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss"}))
    return " ".join(_NON_WORD.sub(" ", plain.casefold()).replace("_", " ").split())


def name_parts(name: str) -> tuple[tuple[str, ...], str]:
    """(given names, surname) of a person's name, folded; "He, Kaiming" is read as "Kaiming He"."""
    if name.count(",") == 1:
        surname, given = name.split(",")
        name = f"{given} {surname}"
    words = fold(name).split()
    if not words:
        return (), ""
    return tuple(words[:-1]), words[-1]


def _agree(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Given names agree: the first names, and any middle names both sides give, pair by pair.

    A pair agrees when equal or when one is a single letter that starts the other, so
    "David Jacobs" agrees with "David E. Jacobs" and "K. M. He" with "Kaiming He".
    """
    if not mine or not theirs:
        return False
    for a, b in zip(mine, theirs, strict=False):
        if a != b and not (len(a) == 1 and b.startswith(a) or len(b) == 1 and a.startswith(b)):
            return False
    return True


@dataclass(frozen=True)
class _Person:
    shown: str  # as the reader typed it, for the why line
    folded: str  # given names and surname, folded, in that order
    given: tuple[str, ...]
    surname: str


@dataclass(frozen=True)
class Byline:
    """A paper's authors and organisation folded once, for every reader's follows."""

    # surname -> {folded full name: given names}; a name listed twice is one person
    authors: dict[str, dict[str, tuple[str, ...]]]
    organization: str  # " folded words " or ""


def byline(paper: Paper) -> Byline:
    """Fold a paper's authors and organisation (once per edition, not once per reader)."""
    authors: dict[str, dict[str, tuple[str, ...]]] = {}
    for author in paper.authors:
        given, surname = name_parts(author)
        if surname:
            authors.setdefault(surname, {})[" ".join((*given, surname))] = given
    org = fold(paper.organization or "")
    return Byline(authors, f" {org} " if org else "")


class Follows:
    """One reader's followed authors and organisations, folded once, matched against papers."""

    def __init__(self, authors: Sequence[str] = (), orgs: Sequence[str] = ()) -> None:
        self.people = []
        for name in authors:
            given, surname = name_parts(name)
            if surname:
                folded = " ".join((*given, surname))
                self.people.append(_Person(" ".join(name.split()), folded, given, surname))
        self.orgs = [(" ".join(o.split()), f" {fold(o)} ") for o in orgs if fold(o)]

    def __bool__(self) -> bool:
        return bool(self.people or self.orgs)

    def match(self, paper: Paper, folded: Byline | None = None) -> str | None:
        """Why ``paper`` is followed ("by Kaiming He, whom you follow"), or None when it is not.

        ``folded`` is the paper's `byline`, when the caller keeps one per paper.
        """
        folded = folded or byline(paper)
        for person in self.people:
            namesakes = folded.authors.get(person.surname)
            if not namesakes:
                continue
            if person.folded in namesakes:
                return f"by {person.shown}, whom you follow"
            agreeing = [k for k, given in namesakes.items() if _agree(person.given, given)]
            if len(agreeing) == 1:
                return f"by {person.shown}, whom you follow"
        if folded.organization:
            for shown, org in self.orgs:
                if org in folded.organization:
                    return f"from {shown}, which you follow"
        return None
