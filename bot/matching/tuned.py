"""The decision by a knowledge file's own thresholds (files with ``thresholds:``).

How a question is scored (``faqbot ask --explain`` shows each part):

1. *Analysis* turns text into terms: :func:`bot.normalize.normalize`, multi-word synonyms
   joined into one term ("react native" → ``react_native``), function words dropped, Snowball
   stemming, synonym groups folded to one canonical term.
2. Each question term is *known* (the knowledge uses it), *corrected* (a typo of a known term,
   found by Damerau-Levenshtein distance, first on the words as written, before synonyms and
   stemming, then on stems; everyday English words such as "lunch" are never corrected,
   4-letter words only for a swapped pair or a letter dropped; two of the knowledge's words
   run together, "accessToken", are split), *common* (an everyday word the knowledge does not
   use, or a typo of one: "hw", "tak": ignored) or *unknown* (a content word the
   knowledge never uses: it counts against a match — "how long does a *refund* take?" is
   probably not about app review; the first one less, each further one more, and each in
   full when every known word is an everyday one: "how long does it take").
3. Terms weigh by rarity across entries (IDF): "app" and "tiktok" count little.
4. An entry's score (0-100) blends how much of the question the entry explains (over all its
   phrasings), how well the best single phrasing fits (an F-measure of coverage both ways), word
   pairs shared with a phrasing, and rapidfuzz's character similarity to that phrasing.
5. Long messages are also scored sentence by sentence; the best reading counts. Greetings and
   sign-offs at either end ("good morning team", "thanks a lot") are cut first.

The decision uses a *calibrated confidence*: the top entry's score times the square root of its
softmax share among the entries' scores (:func:`confidence`), so a question that four entries
explain equally well is not confident. A confidence at or above ``thresholds.answer`` (for a
question with no unknown word: ``thresholds.familiar``, usually lower) with a raw lead of
``thresholds.margin`` answers; otherwise, when at least two entries near the top one
each score at or above ``thresholds.clarify`` (real evidence for two or more entries), the bot
offers them; else a ticket (``no_match``): a question only one entry half-explains is more
often about something else. A question that asks for a number ("how many requests per
minute", "how much does it cost") is not answered by an entry none of whose phrasings asks for
one: the entry is about the topic, not about what is asked. With the optional semantic model,
the confidence blends in the question's cosine with the top entry (docs/semantic.md); a raw
lead short of ``margin`` is enough when the model puts the top entry clearly nearer than the
runner-up (by :data:`MODEL_LEAD`), and a clarification also offers the entry nearest in
meaning. A question about what the FAQ leaves out is a ticket: one at least as near one of the
knowledge's ``not_covered`` questions as to any phrasing of its top entry (with the model), or
one that those questions, scored as a hidden entry, explain at least as well as any entry
(without it). Requests for a human (``handoff``) and entries marked ``ticket:`` (when they
lead) open tickets too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bot.matching.explain import Explanation, LexicalRow, ModelWord, NotCovered, Tuned, Words
from bot.matching.index import Analysis, Index, _asks_for_human
from bot.matching.result import Action, Candidate, Decision
from bot.matching.scoring import (
    CLOSE,
    SHARE_EXPONENT,
    SHARE_TEMPERATURE,
    SHARE_WINDOW,
    Ranking,
    rank,
)
from bot.normalize import normalize

if TYPE_CHECKING:
    from bot.knowledge import Entry
    from bot.matching.matcher import Matcher

#: With the model, how much nearer in meaning (cosine) the top entry must be than the lexical
#: runner-up for a lexical lead short of ``thresholds.margin`` to answer: the words barely
#: tell the two apart, the meaning does.
MODEL_LEAD = 0.05


def decide_tuned(question: str, kb: Matcher, *, explain: bool = False,
                 ranking: Ranking | None = None) -> Decision:
    """:func:`decide` by the knowledge's own thresholds alone, without the blend's word on
    entries with few phrasings (``kb lint`` holds phrasings out, which makes every entry
    look thinner than it is)."""
    index = kb.index
    th = kb.thresholds
    ranked, analysis, reading = ranking or rank(question, kb, limit=SHARE_WINDOW)
    candidates = tuple(
        Candidate(index.entry_ids[s.entry], index.entries[s.entry].question, min(s.score, 100.0))
        for s in ranked[: max(th.candidates, 3)]
    )
    top = ranked[0] if ranked else None
    share = _share([s.score for s in ranked])
    lexical = confidence(ranked[0].score, share) if top else 0.0
    raw_top = min(top.score, 100.0) if top else 0.0
    second = ranked[1].score if len(ranked) > 1 else 0.0
    # A question made only of words the knowledge knows is far more often a rewording of an
    # entry than one with a word it has never seen, at the same confidence: it may be answered
    # at the lower `familiar` threshold.
    answer_at = th.answer if analysis.unknown else th.answer_familiar
    top_score = lexical
    model: _ModelView | None = None
    beyond: NotCovered | None = None  # the `not_covered` question the question is nearer
    if top is not None and kb.semantic is not None and kb.vectors is not None:
        answer_at = kb.semantic.answer if analysis.unknown else kb.semantic.familiar
        top_score, model = _blended(question, kb, top.entry, lexical, answer_at,
                                    may_offer=explain or raw_top >= th.clarify,
                                    runner_up=ranked[1].entry if len(ranked) > 1 else None)
        beyond = model.beyond if model else None
    elif kb.beyond is not None and (explain or (top is not None and top_score >= answer_at)):
        beyond = _beyond_lexically(question, kb)
    normalized = normalize(question)  # for the number check and the handoff phrases
    # a question that asks for a number the top entry never gives is about something else
    unasked = index.unasked(normalized, top.entry) if top is not None else []
    details = None
    if explain:
        details = Explanation(reading, not_covered=beyond, tuned=Tuned(
            _words(index, analysis), round(top_score, 1), answer_at, round(share, 3),
            _ranked(index, ranked[:5]), model.explain(kb, lexical) if model else None,
            tuple(unasked)))

    def make(action: Action, entry: Entry | None, reason: str | None, cands=candidates):
        return Decision(question, action, entry, top_score, cands, reason, details)

    if _asks_for_human(index, normalized.split()):
        return make("ticket", None, "requested")
    # answering needs confidence; asking back only needs a top entry that fits well enough
    if top is None or (top_score < answer_at and raw_top < th.clarify):
        return make("ticket", None, "no_match")
    top_entry = index.entries[top.entry]
    ahead = raw_top - second >= th.margin or (
        model is not None and model.lead is not None and model.lead >= MODEL_LEAD)
    if top_score >= answer_at and ahead and not unasked and not beyond:
        if top_entry.ticket:
            return make("ticket", top_entry, top_entry.ticket)
        return make("answer", top_entry, None)
    if top_entry.ticket:
        # an entry that files a request (the cap) does so whenever it leads: a person looks
        return make("ticket", top_entry, top_entry.ticket)
    if beyond:
        return make("ticket", None, "no_match")  # what the FAQ leaves out: a person answers
    # asking back is for a question close to two or more entries: each offered entry needs
    # real evidence of its own (a score at or above `clarify`, near the top one); a question
    # that only one entry half-explains is more likely about something else: a ticket
    close = tuple(c for c in candidates if c.score >= raw_top - CLOSE)[: th.candidates]
    if sum(1 for c in close if c.score >= th.clarify) < 2:
        return make("ticket", None, "no_match")
    if model is not None:
        close = _with_nearest(close, model.nearest, index, ranked, th.candidates)
    return make("clarify", None, None, close)


def _with_nearest(close: tuple[Candidate, ...], nearest: int, index: Index, ranked: list,
                  limit: int) -> tuple[Candidate, ...]:
    """The entries offered, with the entry nearest in meaning among them: in place of the last
    lexical one if the list is full. It is often the one meant when the words alone are split
    (semantic.md)."""
    if any(c.entry_id == index.entry_ids[nearest] for c in close):
        return close
    lexical_scores = {s.entry: min(s.score, 100.0) for s in ranked}
    offer = Candidate(index.entry_ids[nearest], index.entries[nearest].question,
                      lexical_scores.get(nearest, 0.0))
    return close[: limit - 1] + (offer,)


def _ranked(index: Index, ranked: list) -> tuple[LexicalRow, ...]:
    """``--explain``'s list of the best entries with the parts of their scores."""
    return tuple(
        LexicalRow(index.entry_ids[s.entry], round(s.score, 1), round(s.entry_coverage, 3),
                   round(s.phrasing_f, 3), round(s.chars, 3), s.pairs, s.phrasing)
        for s in ranked
    )


def _words(index: Index, analysis: Analysis) -> Words:
    """``--explain``'s account of how the question's words were read."""
    return Words(
        known={t: round(c, 2) for t, c in analysis.credit.items()},
        weights={t: round(index.weight[t], 2) for t in analysis.credit},
        corrected=analysis.corrected,
        common=analysis.common,
        unknown=analysis.unknown,
    )


@dataclass(frozen=True)
class _ModelView:
    """What the optional sentence-embedding model says of a question (docs/semantic.md)."""

    cosine: float  # with the top entry's phrasings
    nearest: int  # the entry nearest in meaning
    read_as: str  # what the model read, when the matcher corrected words of the question
    beyond: NotCovered | None  # the `not_covered` question it is at least as near
    lead: float | None  # cosine with the top entry less that with the lexical runner-up

    def explain(self, kb: Matcher, lexical: float) -> ModelWord:
        assert kb.semantic is not None
        return ModelWord(round(lexical, 1), round(self.cosine, 3), kb.semantic.weight,
                         kb.index.entry_ids[self.nearest], self.read_as,
                         round(self.lead, 3) if self.lead is not None else None)


def _blended(question: str, kb: Matcher, top: int, lexical: float, answer_at: float,
             *, may_offer: bool, runner_up: int | None) -> tuple[float, _ModelView | None]:
    """The confidence with the model's word, and what the model says (None: not asked).

    The model is asked only where it can change the decision: a question that no cosine (at
    most 1) lifts to ``answer_at``, and whose top entry is too weak to offer (not
    ``may_offer``), is a ticket whatever it says; it is then scored on its words alone. The
    encoder is most of a question's cost."""
    assert kb.semantic is not None
    weight = kb.semantic.weight
    score = (1 - weight) * lexical
    if not may_offer and score + weight * 100 < answer_at:
        return score, None
    model = _model_view(question, kb, top, runner_up)
    return score + weight * 100 * max(model.cosine, 0.0), model


def _model_view(question: str, kb: Matcher, top: int, runner_up: int | None) -> _ModelView:
    """How close the question's meaning is to the top entry's phrasings. It lifts in-scope
    questions worded unlike any phrasing that the lexical score alone leaves unsure of."""
    assert kb.vectors is not None
    # the model reads the words the matcher corrected as corrected ("documentaton" as
    # "documentation", "accessToken" as "access token"): a typo splits into odd word pieces
    plain, text = kb.index.model_reading(question)
    near = kb.vectors.closeness(text)
    # A question at least as near one of the knowledge's `not_covered` questions as to any
    # phrasing of the top entry is about what the FAQ leaves out: it is not answered.
    beyond = None
    if near.not_covered is not None and near.not_covered_cosine >= float(near.phrasings[top]):
        beyond = NotCovered(kb.not_covered[near.not_covered],
                            cosine=round(near.not_covered_cosine, 3),
                            entry_cosine=round(float(near.phrasings[top]), 3))
    cosine = float(near.entries[top])
    lead = cosine - float(near.entries[runner_up]) if runner_up is not None else None
    return _ModelView(cosine, int(np.argmax(near.entries)), text if text != plain else "",
                      beyond, lead)


def _beyond_lexically(question: str, kb: Matcher) -> NotCovered | None:
    """Without the model, the `not_covered` questions are scored as one more entry: a question
    they explain at least as well as any entry is about what the FAQ leaves out."""
    assert kb.beyond is not None
    hidden = len(kb.index.entries)
    b_ranked, _, _ = rank(question, kb.beyond, limit=SHARE_WINDOW)
    other = next((s for s in b_ranked if s.entry != hidden), None)
    held = next((s for s in b_ranked if s.entry == hidden), None)
    if held is None or held.score < (other.score if other else 0.0):
        return None
    # the not_covered question as written (the index keeps them normalised, in order)
    written = kb.beyond.index.phrasing_text[int(kb.beyond.index.entry_start[hidden]):]
    via = held.phrasing
    return NotCovered(kb.not_covered[written.index(via)] if via in written else via,
                      score=round(held.score, 1),
                      entry_score=round(other.score, 1) if other else 0.0)


def _share(scores: list[float]) -> float:
    """The top entry's softmax share among all scored entries (1.0: nobody else is close)."""
    if not scores:
        return 0.0
    top = scores[0]
    return 1.0 / sum(math.exp((s - top) / SHARE_TEMPERATURE) for s in scores[:SHARE_WINDOW])


def confidence(top: float, share: float) -> float:
    """The calibrated score (0-100) the thresholds apply to: the top entry's score, lowered
    when other entries explain the question nearly as well (a question four entries explain
    equally is not confident)."""
    return min(100.0, top) * share**SHARE_EXPONENT
