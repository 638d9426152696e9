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
* :mod:`.scoring`: each entry's lexical score (0-100) and the ranking (``rank``);
* :mod:`.tuned` and :mod:`.blend`: the two deciders; :mod:`.result`: ``Decision``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.matching.blend import decide_blend
from bot.matching.index import THIN_PHRASINGS, Analysis, Index
from bot.matching.lexicon import COMMON_WORDS, Vocabulary, analyze_text, quantity_asks
from bot.matching.result import Action, Candidate, Decision
from bot.matching.scoring import SHARE_WINDOW, rank
from bot.matching.tuned import decide_tuned

if TYPE_CHECKING:
    from bot.knowledge import KnowledgeBase

__all__ = ["COMMON_WORDS", "THIN_PHRASINGS", "Action", "Analysis", "Candidate", "Decision", "Index",
           "Vocabulary", "analyze_text", "decide", "decide_blend", "decide_tuned", "quantity_asks",
           "rank"]


def decide(question: str, kb: KnowledgeBase, *, explain: bool = False) -> Decision:
    """What the bot does with ``question``: answer, clarify or open a ticket (see module doc)."""
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
    # answer with it (or offer it while the tuned matcher answers with another), it answers.
    blend = decide_blend(question, kb, explain=explain, ranking=ranking)
    lead = kb.entry(blend.candidates[0].entry_id) if blend.candidates else None
    if lead is None or lead.id not in kb.index.thin:
        return decision
    if decision.action == "answer" and decision.entry is not None and decision.entry.id == lead.id:
        return decision
    if blend.action == "answer" or (blend.action == "clarify" and decision.action == "answer"):
        details = {**blend.explain, "thin": lead.id} if explain else {}
        return Decision(question, "answer", lead, blend.score, blend.candidates, None, details)
    return decision


