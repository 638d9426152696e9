"""Why a decision was made: what ``decide(question, kb, explain=True)`` puts in
``Decision.explain``, for ``faqbot ask --explain``, ``kb lint`` and ``kb gaps``.

One :class:`Explanation` per decision. The decider that made it fills its own part: ``tuned``
(the tuned lexical matcher, for knowledge with ``thresholds:``) or ``blend`` (the calibrated
blend); an entry with few phrasings in tuned knowledge, judged by the blend, has the blend's
part and ``thin``. Scores are rounded as they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Blend", "BlendRow", "Explanation", "LexicalRow", "ModelWord", "NotCovered", "Tuned",
           "Words"]


@dataclass(frozen=True)
class NotCovered:
    """The knowledge's ``not_covered`` question that held the question back (a ticket), and
    how near the question was to it and to the top entry."""

    question: str
    # with the model: the question's cosine with it, and with the top entry's nearest text
    cosine: float | None = None
    entry_cosine: float | None = None
    # without it: the lexical score of the not_covered questions, and of the best entry
    score: float | None = None
    entry_score: float | None = None


@dataclass(frozen=True)
class Words:
    """How the lexical matcher read the question's words."""

    known: dict[str, float]  # each term it counted, and the credit it gave it (0-1)
    weights: dict[str, float]  # those terms' weights (rarer across entries: heavier)
    corrected: dict[str, str]  # typos and run-together words, as read
    common: list[str]  # everyday words, neutral unless the knowledge uses them
    unknown: list[str]  # words the knowledge never uses: they count against a match


@dataclass(frozen=True)
class LexicalRow:
    """One entry's lexical score (0-100) and its parts (docs/matching.md, *Scoring*)."""

    entry: str
    score: float
    entry_coverage: float  # how much of the question the entry explains
    phrasing_f: float  # the F-measure with its best phrasing
    chars: float  # rapidfuzz's character similarity to that phrasing
    pairs: int  # word pairs shared with it
    phrasing: str  # that phrasing, as the index keeps it


@dataclass(frozen=True)
class ModelWord:
    """What the semantic model added to the tuned matcher's confidence."""

    lexical: float  # the lexical confidence (top score x sqrt(share))
    cosine: float  # the question's cosine with the top entry's phrasings
    weight: float  # the model's share of the confidence (``semantic.weight``)
    nearest: str  # the entry nearest in meaning
    read_as: str = ""  # what the model read, when typos were corrected
    lead: float | None = None  # cosine with the top entry less that with the runner-up


@dataclass(frozen=True)
class Tuned:
    """The tuned lexical matcher's account (knowledge with ``thresholds:``)."""

    words: Words
    confidence: float
    answer_at: float  # the threshold that applied (familiar or not, with the model or not)
    share: float  # the top entry's softmax share among the best eight
    ranked: tuple[LexicalRow, ...]  # the five best
    semantic: ModelWord | None = None  # None: no model, or not asked (it could not help)
    asks: tuple[str, ...] = ()  # numbers asked for that no phrasing of the top entry asks


@dataclass(frozen=True)
class BlendRow:
    """One entry's blend score and its parts; a part is None where it is not used."""

    entry: str
    score: float  # shown so that the answer threshold is 70
    blend: float
    bm25: float
    cosine: float | None = None  # with the answer passage (with the model)
    sentence: float | None = None  # with the nearest answer sentence, where they are encoded
    lexical: float | None = None  # the tuned matcher's score (without the model)


@dataclass(frozen=True)
class Blend:
    """The calibrated blend's account (knowledge without ``thresholds:``, or a thin entry)."""

    answer_at: float  # as shown (70)
    margin: float
    clarify_at: float  # as shown
    bm25_weight: float
    lexical_weight: float
    model: bool  # whether the semantic model scored it
    corrected: bool  # whether typos were corrected before scoring
    ranked: tuple[BlendRow, ...]  # the five best
    level: float | None = None  # the file's own level (with the model)
    sentence_weight: float | None = None  # where answer sentences are encoded


@dataclass(frozen=True)
class Explanation:
    """Why a decision was made."""

    reading: str  # the question as matched (Slack markup stripped, normalised, typos fixed)
    tuned: Tuned | None = None
    blend: Blend | None = None
    not_covered: NotCovered | None = None  # the not_covered question that held it back
    verbatim: bool = False  # asked exactly as a phrasing or a not_covered question
    thin: str | None = None  # the entry with few phrasings the blend decided for
