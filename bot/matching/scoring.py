"""Scoring: each entry's lexical score for a question (0-100), and the ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rapidfuzz import fuzz, process

from bot.matching.index import Analysis, Index, _token_sort, _word_pairs
from bot.matching.lexicon import _COMMON_STEMS, _MAX_TERMS, _SENTENCE, without_greetings
from bot.normalize import MAX_INPUT_CHARS, normalize, strip_slack_markup

if TYPE_CHECKING:
    from bot.matching.matcher import Matcher

# Blend of the signals (they barely interact: a flat optimum, see notes/matching-findings.md).
W_ENTRY = 0.45  # share of the question the entry explains
W_PHRASING = 0.35  # F-measure with the best phrasing
W_CHARS = 0.10  # rapidfuzz similarity with the best phrasing
W_PAIRS = 0.10  # consecutive word pairs shared with the best phrasing
UNKNOWN_WEIGHT = 1.5  # what an unknown content word weighs against a match
UNKNOWN_FIRST = 1.0  # ... the first one, beside a known word of the knowledge's own topic
MIN_QUESTION_MASS = 1.2  # about one distinctive word and a bit
# Calibration: confidence = top score x share ** SHARE_EXPONENT, the share a softmax over the
# entries' scores at this temperature (score points).
SHARE_TEMPERATURE = 3.0
SHARE_EXPONENT = 0.5
SHARE_WINDOW = 8  # the entries the softmax runs over (and that decide scores in full)
SENTENCE_SLACK = 3.0  # a sentence may lift an entry within this many points of the whole's top
CLOSE = 12.0  # a clarification offers the entries within this many points of the top one


@dataclass
class _Scored:
    """An entry's score, and the parts it is made of with its best phrasing."""

    entry: int
    score: float
    phrasing: str
    entry_coverage: float
    phrasing_f: float
    chars: float
    pairs: int


def _score_text(
    index: Index, text: str, limit: int | None = None
) -> tuple[list[_Scored], Analysis]:
    """Entries scored for normalised ``text``, best first (with ``limit``, only that many).

    Every entry that shares a word with the question is scored at once, as numpy vector
    operations over the inverted indexes (a question costs a few dozen array operations, not a
    Python loop per phrasing); only the entries returned become Python objects."""
    analysis = index.read(text)
    credit = analysis.credit
    if not credit:
        return [], analysis
    weight = index.weight
    known_mass = sum(weight[t] * c for t, c in credit.items())
    n_unknown = len(analysis.unknown)
    unknown_mass = _unknown_mass(n_unknown, topical=any(t not in _COMMON_STEMS for t in credit))
    # A question says at least this much: one common word cannot be 'fully explained'.
    q_mass = max(known_mass + unknown_mass, MIN_QUESTION_MASS)

    matched, explained = _shared_weight(index, credit)
    # Each entry's best phrasing: sharing weight m with a phrasing of mass M is an F-measure
    # of m/q_mass and m/M, which is 2m / (q_mass + M). Phrasings that tie for it are all
    # scored in full below, and the best full score counts.
    fit = 2 * matched / (q_mass + index.phrasing_mass)
    best_fit = np.maximum.reduceat(fit, index.entry_start)
    pids = np.flatnonzero((fit == best_fit[index.phrasing_entry]) & (matched > 0))
    if not len(pids):
        return [], analysis
    owners = index.phrasing_entry[pids]
    cheap = 100 * (W_ENTRY * explained[owners] / q_mass + W_PHRASING * fit[pids])

    # The rest of the score: rapidfuzz's character similarity (token_sort_ratio: the words
    # sorted, then compared) and the question's consecutive word pairs the phrasing shares.
    pairs_q = _word_pairs(analysis.order)
    pair_hits = np.zeros(len(index.phrasing_text))
    for pair in pairs_q:
        span = index.pair_postings.get(pair)
        if span is not None:
            pair_hits[index.pair_posting_ids[span[0] : span[1]]] += 1
    pair_hits = pair_hits[pids]
    sorted_texts = index.phrasing_sorted
    chars = process.cdist(
        [_token_sort(text)], [sorted_texts[i] for i in pids.tolist()],
        scorer=fuzz.ratio, processor=None, dtype=np.float64, workers=1,
    )[0] / 100.0
    full = cheap + 100 * (W_CHARS * chars + W_PAIRS * np.minimum(1.0, pair_hits / 2))

    ranked = _one_per_entry(owners, full, tied=len(pids) != np.count_nonzero(best_fit))
    if limit is not None:
        ranked = ranked[:limit]
    texts = index.phrasing_text
    results = []
    for entry_no, pid, score, f, c, hits, covered in zip(
        owners[ranked].tolist(), pids[ranked].tolist(), full[ranked].tolist(),
        fit[pids[ranked]].tolist(), chars[ranked].tolist(), pair_hits[ranked].tolist(),
        explained[owners[ranked]].tolist(), strict=True,
    ):
        results.append(_Scored(entry_no, score, texts[pid], covered / q_mass, f, c, int(hits)))
    return results, analysis



def _shared_weight(index: Index, credit: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Through the inverted indexes: the weight each phrasing shares with the question, and
    the weight each entry explains (its phrasings' words; its answer's at ANSWER_ONLY).
    Vector sums over the postings, in the same order as term-by-term additions would be."""
    weight = index.weight
    matched = np.zeros(len(index.phrasing_text))
    explained = np.zeros(len(index.entries))
    for term, c in credit.items():
        w = weight[term] * c
        span = index.postings.get(term)
        if span is not None:
            matched[index.posting_ids[span[0] : span[1]]] += w
        span = index.entry_postings.get(term)
        if span is not None:
            start, stop = span
            explained[index.entry_posting_ids[start:stop]] += (
                w * index.entry_posting_factors[start:stop]
            )
    return matched, explained


def _one_per_entry(owners: np.ndarray, full: np.ndarray, *, tied: bool) -> np.ndarray:
    """Positions of one phrasing per entry (the best full score; the first on a tie), entries
    best first. ``owners`` are the phrasings' entries, in order; ``tied``: an entry may have
    several."""
    if not tied:
        return np.lexsort((owners, -full))
    first = _run_starts(owners)
    run = np.cumsum(first) - 1
    keep = np.flatnonzero(full == np.maximum.reduceat(full, np.flatnonzero(first))[run])
    keep = keep[_run_starts(owners[keep])]
    return keep[np.lexsort((owners[keep], -full[keep]))]


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values in ``keys`` begins (a boolean mask)."""
    starts = np.empty(len(keys), dtype=bool)
    starts[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    return starts


def _unknown_mass(n_unknown: int, *, topical: bool = True) -> float:
    """What the question's unknown words weigh: one unfamiliar word is often just a word the
    knowledge lacks (less), several mean another topic (each further one more). When the
    known words are all everyday ones ("how long does a *refund* take": long, take), the
    unknown word is probably the question's topic: each weighs in full."""
    if not n_unknown:
        return 0.0
    if not topical:
        return UNKNOWN_WEIGHT * n_unknown
    return UNKNOWN_FIRST + UNKNOWN_WEIGHT * (n_unknown - 1)


def _readings(question: str) -> list[str]:
    """The whole message, and for long ones also each sentence (the question is often one)."""
    cleaned = strip_slack_markup(question[:MAX_INPUT_CHARS])
    whole = without_greetings(normalize(cleaned))
    readings = [whole]
    if len(whole.split()) > 12:
        # each sentence with whether it asks ("?"), before the short ones are left out
        marked = [(without_greetings(normalize(raw)), raw.rstrip().endswith("?"))
                  for raw in _SENTENCE.split(cleaned)]
        marked = [(s, asks) for s, asks in marked if len(s.split()) >= 2]
        if len(marked) > 1:
            asking = [s for s, asks in marked if asks]
            readings.extend((asking or [s for s, _ in marked])[:4])
    if len(readings[0].split()) > _MAX_TERMS * 2:
        readings[0] = " ".join(readings[0].split()[: _MAX_TERMS * 2])
    return list(dict.fromkeys(readings))


# what rank() returns: the scored entries best first, the analysis and the reading used
Ranking = tuple[list[_Scored], Analysis, str]


def rank(
    question: str, kb: Matcher, *, limit: int | None = None
) -> tuple[list[_Scored], Analysis, str]:
    """Entries scored for ``question``, best first, with the analysis of the reading used.

    With ``limit``, only (at least) the ``limit`` best entries are scored in full: the head of
    the ranking is the same, the tail is left out (``decide`` needs :data:`SHARE_WINDOW`)."""
    index = kb.index
    best_by_entry: dict[int, _Scored] = {}
    best_analysis: Analysis | None = None
    best_reading = ""
    best_top = -1.0
    leaders: set[int] = set()
    for n, reading in enumerate(_readings(question)):
        scored, analysis = _score_text(index, reading, limit)
        if n == 0:
            # A sentence read alone may lift only an entry the whole message already ranks
            # (nearly) first: alone, "is that possible with the developer tools?" loses the
            # context sentence that said what "that" is (ads, permissions, a rejection).
            head = scored[0].score if scored else 0.0
            leaders = {s.entry for s in scored if s.score >= head - SENTENCE_SLACK}
        else:
            scored = [s for s in scored if s.entry in leaders]
        discount = 1.0 if n == 0 else 0.97
        top = scored[0].score * discount if scored else 0.0
        if best_analysis is None or top > best_top:
            best_analysis, best_reading, best_top = analysis, reading, top
        for s in scored:
            s.score *= discount
            if s.entry not in best_by_entry or s.score > best_by_entry[s.entry].score:
                best_by_entry[s.entry] = s
    ranked = sorted(best_by_entry.values(), key=lambda s: -s.score)
    return ranked, best_analysis or Analysis(), best_reading


