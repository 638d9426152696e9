"""The calibrated blend: the decision for knowledge without ``thresholds:`` (docs/matching.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bot.matching.explain import Blend, BlendRow, Explanation, NotCovered
from bot.matching.index import _asks_for_human
from bot.matching.result import Action, Candidate, Decision
from bot.matching.scoring import SHARE_WINDOW, Ranking, rank
from bot.normalize import normalize

if TYPE_CHECKING:
    from bot.knowledge import Entry
    from bot.matching.matcher import Matcher
    from bot.semantic import Closeness

# Knowledge whose maintainer has not set ``thresholds:`` (an imported FAQ, a new file) is
# decided by one blend, fitted once across several FAQs rather than tuned on any one file:
#   score = cosine(question, the entry's answer passage)           with the semantic model
#         + BLEND_SENTENCE x how much nearer its answer's nearest sentence is, if it is
#         + BLEND_BM25 x BM25(question, the entry's question and answer)
#         + BLEND_LEXICAL x the lexical score / 100                 without the model
# Answer when the top score reaches `answer` and leads the next entry by `margin`; else offer
# the entries near the top one ("did you mean", even one) when it reaches `clarify`; else a
# ticket (docs/matching.md says how the numbers were chosen).
BLEND_BM25 = 0.1
BLEND_LEXICAL = 0.2
BLEND_CLOSE = 0.12  # a clarification offers the entries within this x `answer` of the top
BLEND_SENTENCE = 0.25  # of how much nearer the answer's nearest sentence is than its passage


@dataclass(frozen=True)
class BlendThresholds:
    answer: float
    margin: float
    clarify: float


# with the model, in units of the file's own level (decide_blend)
BLEND_WITH_MODEL = BlendThresholds(answer=0.51, margin=0.11, clarify=0.435)
BLEND_WORDS_ONLY = BlendThresholds(answer=0.22, margin=0.125, clarify=0.17)
BLEND_SCALE = 70.0  # the reported score (0-100) of a question exactly at `answer`


def decide_blend(question: str, kb: Matcher, *, explain: bool,
                 ranking: Ranking | None = None) -> Decision:
    """:func:`decide` for knowledge without tuned thresholds (see BLEND_BM25 above)."""
    return blend_ranked(question, kb, explain=explain, ranking=ranking)[0]


def blend_ranked(question: str, kb: Matcher, *, explain: bool,
                 ranking: Ranking | None = None) -> tuple[Decision, str | None]:
    """:func:`decide_blend`'s decision, and the id of the entry it ranks second (None with
    fewer than two entries)."""
    index = kb.index
    normalized = normalize(question)
    plain, text = index.model_reading(question)
    words = index.bm25(index.vocabulary.terms(text))
    lexical = cosine = sentences = near = level = None
    if kb.vectors is not None:
        near = kb.vectors.closeness(text)
        cosine, sentences = near.passages, near.sentences
        if sentences is not None:  # a sentence of the answer nearer than its opening
            cosine = cosine + BLEND_SENTENCE * np.maximum(sentences - cosine, 0.0)
        # in units of how well this FAQ's own questions match their own entries: a file
        # whose answers are worded far from its questions scores every question lower
        level = kb.vectors.question_to_answer + BLEND_BM25 * index.question_bm25
        score = (cosine + BLEND_BM25 * words) / max(level, 0.1)
        th = BLEND_WITH_MODEL
    else:
        lexical = np.zeros(len(index.entries))
        for s in (ranking or rank(question, kb, limit=SHARE_WINDOW))[0]:
            lexical[s.entry] = s.score
        score = BLEND_BM25 * words + BLEND_LEXICAL * lexical / 100
        th = BLEND_WORDS_ONLY
    order = np.argsort(-score, kind="stable")
    top = int(order[0]) if len(order) else None
    best = float(score[top]) if top is not None else 0.0
    lead = best - float(score[order[1]]) if len(order) > 1 else best

    def scaled(value: float) -> float:
        return max(0.0, min(100.0, BLEND_SCALE * value / th.answer))

    candidates = tuple(
        Candidate(index.entry_ids[n], index.entries[n].question, scaled(float(score[n])))
        for n in order[: max(kb.thresholds.candidates, 3)])
    beyond = _beyond(kb, near, top) if near is not None and top is not None else None
    details = None
    if explain:
        details = Explanation(text, not_covered=beyond, blend=Blend(
            answer_at=scaled(th.answer), margin=round(th.margin, 3),
            clarify_at=round(scaled(th.clarify), 1), bm25_weight=BLEND_BM25,
            lexical_weight=BLEND_LEXICAL, model=cosine is not None, corrected=text != plain,
            level=round(level, 3) if level is not None else None,
            sentence_weight=BLEND_SENTENCE if sentences is not None else None,
            ranked=tuple(
                BlendRow(index.entry_ids[n], round(scaled(float(score[n])), 1),
                         round(float(score[n]), 3), round(float(words[n]), 3),
                         _part(cosine, n), _part(sentences, n),
                         round(float(lexical[n]), 1) if lexical is not None else None)
                for n in order[:5])))

    runner_up = index.entry_ids[int(order[1])] if len(order) > 1 else None

    def make(action: Action, entry: Entry | None, reason: str | None, cands=candidates):
        return Decision(question, action, entry, scaled(best), cands, reason, details), runner_up

    if _asks_for_human(index, normalized.split()):
        return make("ticket", None, "requested")
    if top is None or best < th.clarify:
        return make("ticket", None, "no_match")
    top_entry = index.entries[top]
    if top_entry.ticket:
        return make("ticket", top_entry, top_entry.ticket)  # a request: a person looks
    if beyond:
        return make("ticket", None, "no_match")  # what the FAQ leaves out: a person answers
    if best >= th.answer and lead >= th.margin:
        return make("answer", top_entry, None)
    close = tuple(c for n, c in zip(order, candidates, strict=False)
                  if float(score[n]) >= best - BLEND_CLOSE * th.answer)[: kb.thresholds.candidates]
    return make("clarify", None, None, close)


def _part(values: np.ndarray | None, n: int) -> float | None:
    return round(float(values[n]), 3) if values is not None else None


def _beyond(kb: Matcher, near: Closeness, top: int) -> NotCovered | None:
    """The ``not_covered`` question nearer the question than the top entry's nearest text (a
    phrasing, its answer passage, or for an entry with few phrasings one of its answer's
    sentences), with both cosines; None if there is none."""
    if near.not_covered is None:
        return None
    thin = kb.index.entry_ids[top] in kb.index.thin
    sentence = float(near.sentences[top]) if near.sentences is not None and thin else -1.0
    entry_cosine = max(float(near.phrasings[top]), float(near.passages[top]), sentence)
    if near.not_covered_cosine < entry_cosine:
        return None
    return NotCovered(kb.not_covered[near.not_covered], cosine=round(near.not_covered_cosine, 3),
                      entry_cosine=round(entry_cosine, 3))
