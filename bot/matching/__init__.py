"""Matching a question to knowledge entries, and the decision that follows (pure, no I/O).

``decide(question, kb)`` returns a :class:`Decision`: answer, clarify or ticket. How it decides
depends on whether the knowledge sets ``thresholds:`` (docs/matching.md):

* without them (an imported FAQ, a new file): the calibrated blend (:mod:`.blend`), the cosine
  between the question and each entry's question with its answer's opening (semantic model)
  and BM25 over each entry's question and answer, with one setting fitted across FAQs;
* with them: the tuned lexical matcher (:mod:`.tuned`) and the file's own thresholds; an entry
  with fewer than ``THIN_PHRASINGS`` phrasings (one just added) is judged by the blend there too.

The modules, in the order a question meets them:

* :mod:`.lexicon`: words: function and everyday words, stems, synonym groups (``Vocabulary``),
  greetings, the number questions a text asks;
* :mod:`.spelling`: which known word an unknown one may be a typo of;
* :mod:`.index`: ``Index``, built once per knowledge load: term weights, postings, the typo
  and run-together-word readings of a question (``Index.read``), BM25;
* :mod:`.matcher`: ``Matcher``, the knowledge compiled for matching (its ``Index``, the
  ``not_covered`` questions as a hidden entry, the model's vectors): what ``decide`` reads;
* :mod:`.scoring`: each entry's lexical score (0-100) and the ranking (``rank``);
* :mod:`.tuned` and :mod:`.blend`: the two deciders; :mod:`.result`: ``Decision``;
  :mod:`.explain`: why it was made (``Explanation``, with ``explain=True``).
"""

from __future__ import annotations

from dataclasses import replace

from bot.matching.blend import blend_ranked, decide_blend
from bot.matching.explain import Explanation
from bot.matching.index import NOT_COVERED, THIN_PHRASINGS, Analysis, Index
from bot.matching.lexicon import (
    COMMON_WORDS,
    Vocabulary,
    analyze_text,
    quantity_asks,
    without_greetings,
)
from bot.matching.matcher import Matcher
from bot.matching.result import Action, Candidate, Decision
from bot.matching.scoring import SHARE_WINDOW, rank
from bot.matching.tuned import decide_tuned
from bot.normalize import normalize

__all__ = ["COMMON_WORDS", "THIN_PHRASINGS", "Action", "Analysis", "Candidate", "Decision",
           "Explanation", "Index", "Matcher",
           "Vocabulary", "analyze_text", "decide", "decide_blend", "decide_tuned", "quantity_asks",
           "rank"]


#: A longer message is never one of the knowledge's phrasings asked verbatim (and is not read
#: again to find out).
VERBATIM_CHARS = 1000


def decide(question: str, kb: Matcher, *, explain: bool = False) -> Decision:
    """What the bot does with ``question``: answer, clarify or open a ticket (see module doc)."""
    return _verbatim(question, kb, _decide(question, kb, explain=explain), explain)


def _verbatim(question: str, kb: Matcher, decision: Decision, explain: bool) -> Decision:
    """A question that is, once normalised (and greetings and sign-offs at either end cut),
    exactly one of an entry's phrasings (its question included) is that entry's, whatever the
    scores say: someone who pasted the FAQ's own question is answered. One that is exactly a
    ``not_covered`` question is a ticket."""
    if decision.reason == "requested" or len(question) > VERBATIM_CHARS:
        return decision
    text = normalize(question)
    found = kb.index.verbatim.get(text)
    if found is None:  # "hi team, what is X? thanks"
        found = kb.index.verbatim.get(without_greetings(text))
    if found is None:
        return decision
    details = replace(decision.explain, verbatim=True) if decision.explain else None
    if found == NOT_COVERED:
        if decision.action == "ticket":
            return decision
        return Decision(question, "ticket", None, decision.score, decision.candidates, "no_match",
                        details)
    entry = kb.index.entries[found]
    if decision.entry is entry and decision.action != "clarify":
        return decision
    candidates = (Candidate(entry.id, entry.question, 100.0),) + tuple(
        c for c in decision.candidates if c.entry_id != entry.id)
    if entry.ticket:  # an entry that files a request (the cap) does so
        return Decision(question, "ticket", entry, 100.0, candidates, entry.ticket, details)
    return Decision(question, "answer", entry, 100.0, candidates, None, details)


def _decide(question: str, kb: Matcher, *, explain: bool) -> Decision:
    if not kb.thresholds.tuned:
        return decide_blend(question, kb, explain=explain)
    if not kb.index.thin:
        return decide_tuned(question, kb, explain=explain)
    ranking = rank(question, kb, limit=SHARE_WINDOW)  # the tuned matcher's and the blend's
    decision = decide_tuned(question, kb, explain=explain, ranking=ranking)
    if decision.action == "ticket" and decision.reason == "requested":
        return decision
    # An entry with few phrasings gives the tuned matcher little to go on: when the blend,
    # which reads every entry's question and answer alike, puts such an entry first and would
    # answer with it, it answers. When the blend would only offer it, it answers too if the
    # tuned matcher answers with another entry, or if the entries behind it in the blend (the
    # next one, and any offered beside it) are ones the tuned matcher knows by their
    # phrasings: that it answered with none of them says the question is not theirs. Where
    # an entry behind it has few phrasings too, nothing tells the two apart: the tuned
    # matcher decides.
    blend, runner_up = blend_ranked(question, kb, explain=explain, ranking=ranking)
    lead = kb.entry(blend.candidates[0].entry_id) if blend.candidates else None
    index = kb.index
    thin = index.thin
    if lead is None or lead.id not in thin:
        return decision
    if decision.action == "answer" and decision.entry is not None and decision.entry.id == lead.id:
        return decision
    # the tuned matcher's number check holds for it too (an entry that never gives a count)
    if index.unasked(normalize(question), index.entry_ids.index(lead.id)):
        return decision
    behind_known = runner_up is not None and runner_up not in thin and all(
        c.entry_id not in thin for c in blend.candidates[1:])
    if blend.action == "answer" or (blend.action == "clarify" and (
            decision.action == "answer" or behind_known)):
        details = replace(blend.explain, thin=lead.id) if blend.explain else None
        return Decision(question, "answer", lead, blend.score, blend.candidates, None, details)
    return decision


