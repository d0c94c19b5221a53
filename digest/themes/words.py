"""Words of papers: tokens, light stems, stop words and the words that say nothing of a theme.

Shared by the grouping space (built with these stems) and the labels, so both count one idea
once ("models"/"model", "robotic"/"robot").
"""

from __future__ import annotations

import re
from functools import cache

__all__ = [
    "GENERIC",
    "GENERIC_END",
    "GENERIC_END_STEMS",
    "GENERIC_STEMS",
    "STOP_WORDS",
    "TOKEN",
    "analyze",
    "stem",
]

TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|\d+[A-Za-z][A-Za-z0-9]*")
# Words that describe how a paper is written, not what it is about: never a label on their own.
GENERIC = frozenset(
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
    include includes support supports understanding feature features behavior behaviour
    interaction interactions object objects guided aware driven enhanced enhancing adaptive
    rethinking revisiting beyond generalization generalizable""".split()
)
# A phrase ending in one of these is about the paper, not its subject ("experimental results").
GENERIC_END = frozenset(
    """result results method methods approach approaches performance framework frameworks paper
    study studies work task tasks problem problems analysis experiment experiments baseline
    baselines technique techniques using based via towards toward across within without given
    effectiveness efficiency robustness accuracy quality demonstrate demonstrates show shows
    highlight highlights remain remains exhibit exhibits reveal reveals suggest suggests
    achieve achieves yield yields""".split()
)
# scikit-learn's English stop words (copied: importing scikit-learn costs about a second),
# and a few of papers' own.
STOP_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone anything
    anyway anywhere are around as at back be became because become becomes becoming been before
    beforehand behind being below beside besides between beyond bill both bottom but by call can
    cannot cant co con could couldnt cry de describe detail do done down due during each eg eight
    either eleven else elsewhere empty enough etc even ever every everyone everything everywhere
    except few fifteen fifty fill find fire first five for former formerly forty found four from
    front full further get give go had has hasnt have he hence her here hereafter hereby herein
    hereupon hers herself him himself his how however hundred i ie if in inc indeed interest into
    is it its itself keep last latter latterly least less ltd made many may me meanwhile might mill
    mine more moreover most mostly move much must my myself name namely neither never nevertheless
    next nine no nobody none noone nor not nothing now nowhere of off often on once one only onto
    or other others otherwise our ours ourselves out over own part per perhaps please put rather re
    same see seem seemed seeming seems serious several she should show side since sincere six sixty
    so some somehow someone something sometime sometimes somewhere still such system take ten than
    that the their them themselves then thence there thereafter thereby therefore therein thereupon
    these they thick thin third this those though three through throughout thru thus to together
    too top toward towards twelve twenty two un under until up upon us very via was we well were
    what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without would yet
    you your yours yourself yourselves
    et al ie eg vs non arxiv""".split()
)


def analyze(text: str) -> list[str]:
    """Split text into lower-case word stems without stop words.

    Stemming folds plural and derived forms ("models"/"model", "robotic"/"robot") so one idea
    counts once; it is shared with the background space, which was built with it.
    """
    terms = map(_term, TOKEN.findall(text))
    return [t for t in terms if t]


@cache
def _term(token: str) -> str:
    """A token's stem, or "" for a stop word or a single letter (one cached look-up a token)."""
    return "" if len(token) < 2 or token.lower() in STOP_WORDS else stem(token)


@cache
def stem(token: str) -> str:
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
GENERIC_STEMS = frozenset(stem(w) for w in GENERIC)
GENERIC_END_STEMS = frozenset(stem(w) for w in GENERIC_END)
