"""The matching index: everything matching needs, computed once per knowledge load."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from bot.matching.lexicon import (
    _COMMON_STEMS,
    _WORD,
    CACHE_LIMIT,
    EVERYDAY_WORDS,
    FUNCTION_WORDS,
    Vocabulary,
    _has_digit,
    quantity_asks,
)
from bot.matching.spelling import TYPO_CREDIT, _everyday_typo, _typo_hits
from bot.normalize import (
    MAX_INPUT_CHARS,
    expand_shorthand,
    normalize,
    plain_text,
    strip_slack_markup,
)

if TYPE_CHECKING:
    from bot.knowledge import Entry, KnowledgeBase

ANSWER_ONLY = 0.6  # a word found only in an entry's answer counts this much
# An everyday word the knowledge happens to use (one phrasing's "is it ok if…") weighs at most
# this, as if 3 of 15 entries used it: rare in the knowledge, it is still not distinctive.
COMMON_WEIGHT_MAX = 0.7
NOT_COVERED = -1  # Index.verbatim's mark of a `not_covered` question
THIN_PHRASINGS = 3  # an entry with fewer phrasings is judged by the blend in tuned files too
BM25_K1 = 1.2  # Okapi BM25's usual term-frequency saturation and length normalisation
BM25_B = 0.75


@dataclass
class Analysis:
    credit: dict[str, float] = field(default_factory=dict)  # known term -> credit (typo < 1)
    corrected: dict[str, str] = field(default_factory=dict)
    common: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)




class Index:
    """Everything matching needs, computed once per knowledge load (and only that: the
    compiled-knowledge cache pickles it, so build-time bookkeeping is not kept)."""

    def __init__(self) -> None:
        self.entry_ids: list[str] = []
        self.entries: list[Entry] = []
        self.vocabulary = Vocabulary({}, {})
        # term -> the phrasings that use it: a (start, stop) slice of `posting_ids`, one numpy
        # array for all postings (a question's scores are vector sums over them, _score_text)
        self.postings: dict[str, tuple[int, int]] = {}
        self.posting_ids = np.zeros(0, dtype=np.intp)
        self.weight: dict[str, float] = {}
        self.known: frozenset[str] = frozenset()
        self.buckets: dict[str, list[str]] = {}
        # the knowledge's own words as written (normalised, not stemmed), by first letter: a
        # typo is corrected against these before stemming ("documentaton" -> "documentation")
        self.words: frozenset[str] = frozenset()
        self.word_buckets: dict[str, list[str]] = {}
        self._spelled: dict[str, tuple[str, float] | None] = {}
        self._joined: dict[str, tuple[str, str] | None] = {}
        self.handoff: list[tuple[str, ...]] = []
        self._typos: dict[str, tuple[str, float] | None] = {}
        self.df: dict[str, int] = {}
        # term -> (entries, factors): entries whose phrasings (1.0) or only answer (ANSWER_ONLY)
        # use the term, so an entry's coverage is summed over postings, not per entry
        self.entry_postings: dict[str, tuple[int, int]] = {}  # slices of the next two
        self.entry_posting_ids = np.zeros(0, dtype=np.intp)
        self.entry_posting_factors = np.zeros(0)
        # per phrasing (an entry's phrasings are consecutive, its first at entry_start[entry]):
        self.phrasing_text: list[str] = []  # normalised
        self.phrasing_sorted: list[str] = []  # its words sorted (rapidfuzz's token_sort form)
        self.phrasing_entry = np.zeros(0, dtype=np.intp)  # its entry
        self.phrasing_mass = np.zeros(0)  # the sum of its term weights
        self.phrasing_len = np.zeros(0)  # its normalised text's length
        self.pair_postings: dict[str, tuple[int, int]] = {}  # word pair -> phrasings with it
        self.pair_posting_ids = np.zeros(0, dtype=np.intp)
        self.entry_start = np.zeros(0, dtype=np.intp)
        # per entry: the number questions its phrasings ask (quantity_asks)
        self.entry_quantities: list[frozenset[str]] = []
        # BM25 over each entry as one document (its question and its answer), per term a
        # (start, stop) slice of the next two: the answer-aware word signal of the blend
        self.bm25_postings: dict[str, tuple[int, int]] = {}
        self.bm25_ids = np.zeros(0, dtype=np.intp)
        self.bm25_weights = np.zeros(0)
        # the mean BM25 of each entry's own question against the entry: the file's own level
        self.question_bm25 = 0.0
        # ids of the entries with fewer than THIN_PHRASINGS phrasings: judged by the blend too
        self.thin: frozenset[str] = frozenset()
        # a phrasing (question included) as normalised -> its entry; a `not_covered` question
        # -> NOT_COVERED: a question asked exactly so is theirs (matching.decide)
        self.verbatim: dict[str, int] = {}

    @classmethod
    def build(cls, kb: KnowledgeBase) -> Index:
        index = cls()
        index.entries = list(kb.entries)
        index.entry_ids = [e.id for e in kb.entries]
        vocab = Vocabulary.build(kb.synonyms)
        index.vocabulary = vocab

        entry_terms: list[set[str]] = []
        answer_terms: list[frozenset[str]] = []
        texts: list[str] = []
        phrasing_terms: list[list[str]] = []
        phrasing_entry: list[int] = []
        for n, entry in enumerate(kb.entries):
            bag: set[str] = set()
            quantities: set[str] = set()
            for phrasing in entry.all_phrasings:
                text = normalize(phrasing)
                quantities.update(quantity_asks(text, normalized=True))
                terms = vocab.terms(text, normalized=True)
                bag.update(terms)
                texts.append(text)
                phrasing_terms.append(terms)
                phrasing_entry.append(n)
            entry_terms.append(bag)
            index.entry_quantities.append(frozenset(quantities))
            answer_terms.append(frozenset(vocab.terms(strip_slack_markup(entry.answer))) - bag)

        index._build_weights(entry_terms, answer_terms)
        index._build_phrasings(texts, phrasing_terms, phrasing_entry)
        index._build_entry_postings(entry_terms, answer_terms)
        index._build_bm25(kb)
        index.question_bm25 = float(np.mean([
            index.bm25(vocab.terms(e.question))[n] for n, e in enumerate(kb.entries)])) \
            if kb.entries else 0.0
        index.thin = frozenset(e.id for e in kb.entries if len(e.phrasings) < THIN_PHRASINGS)
        index._build_spelling(kb, texts)
        index.handoff = [tuple(normalize(h).split()) for h in kb.handoff if normalize(h)]
        for text, entry in zip(texts, phrasing_entry, strict=True):
            if text:  # a phrasing of punctuation alone reads as nothing
                index.verbatim.setdefault(text, entry)
        for text in filter(None, map(normalize, kb.not_covered)):
            index.verbatim.setdefault(text, NOT_COVERED)
        return index

    def _build_weights(self, entry_terms: list[set[str]], answer_terms: list[frozenset[str]]) -> None:
        """Each term's weight: its rarity across entries (IDF over their phrasings, else over
        the answers that use it), everyday words capped."""
        df: dict[str, int] = defaultdict(int)
        for bag in entry_terms:
            for term in bag:
                df[term] += 1
        answer_df: dict[str, int] = defaultdict(int)
        for bag in answer_terms:
            for term in bag:
                answer_df[term] += 1
        n_entries = max(len(entry_terms), 1)
        norm = math.log(1 + n_entries)
        weight = {t: math.log(1 + n_entries / d) / norm for t, d in df.items()}
        for term, d in answer_df.items():
            weight.setdefault(term, math.log(1 + n_entries / d) / norm)
        for term in weight.keys() & _COMMON_STEMS:
            weight[term] = min(weight[term], COMMON_WEIGHT_MAX)
        self.df = {t: df.get(t, 0) + answer_df.get(t, 0) for t in weight}
        self.weight = weight
        self.known = frozenset(weight)

    def _build_phrasings(self, texts: list[str], phrasing_terms: list[list[str]],
                         phrasing_entry: list[int]) -> None:
        """The phrasings' texts, term and word-pair postings, and per-phrasing arrays."""
        postings: dict[str, list[int]] = defaultdict(list)
        pair_postings: dict[str, list[int]] = defaultdict(list)
        masses: list[float] = []
        for pid, terms in enumerate(phrasing_terms):
            term_set = sorted(set(terms))  # sorted: the same sum whatever the hash seed
            masses.append(sum(self.weight[t] for t in term_set))
            for term in term_set:
                postings[term].append(pid)
            for pair in _word_pairs(terms):
                pair_postings[pair].append(pid)
        self.postings, self.posting_ids = _flatten(postings)
        self.pair_postings, self.pair_posting_ids = _flatten(pair_postings)
        self.phrasing_text = texts
        self.phrasing_sorted = [_token_sort(t) for t in texts]
        self.phrasing_entry = np.array(phrasing_entry, dtype=np.intp)
        self.phrasing_mass = np.array(masses, dtype=np.float64)
        self.phrasing_len = np.array([len(t) for t in texts], dtype=np.float64)
        self.entry_start = np.searchsorted(self.phrasing_entry, np.arange(len(self.entries)))

    def _build_entry_postings(self, entry_terms: list[set[str]],
                              answer_terms: list[frozenset[str]]) -> None:
        """Which entries use each term: an entry's own words first (factor 1), then the words
        only its answer uses (factor ``ANSWER_ONLY``)."""
        entry_postings: dict[str, list[int]] = defaultdict(list)
        for n, bag in enumerate(entry_terms):
            for term in bag:
                entry_postings[term].append(n)
        own = {t: len(ids) for t, ids in entry_postings.items()}
        for n, answer_bag in enumerate(answer_terms):
            for term in answer_bag:
                entry_postings[term].append(n)
        self.entry_postings, self.entry_posting_ids = _flatten(entry_postings)
        factors = np.full(len(self.entry_posting_ids), ANSWER_ONLY)
        for term, (start, _) in self.entry_postings.items():
            factors[start : start + own.get(term, 0)] = 1.0
        self.entry_posting_factors = factors

    def _build_spelling(self, kb: KnowledgeBase, texts: list[str]) -> None:
        """What a typo may be corrected to: known terms by first letter, and written words."""
        vocab = self.vocabulary
        buckets: dict[str, list[str]] = defaultdict(list)
        # A typo is corrected towards a known term or towards any one-word member of a known
        # term's synonym group ("permision" is one letter from "permission", whose term is
        # "scope"): the member is read as its group's term.
        spellings = set(self.known) | {
            key for key, term in vocab.canonical.items() if term in self.known}
        for term in sorted(spellings):  # sorted: the same corrections whatever the hash seed
            if "_" not in term and len(term) >= 3 and not term.isdigit():
                buckets[term[0]].append(term)
        self.buckets = dict(buckets)
        # words as written that a question's typo may be read as: each word of the knowledge
        # whose term is known, and each word of a synonym phrase ("native" of "react native")
        phrase_words = {w for group in kb.synonyms for item in group
                        if len(words := normalize(item).split()) > 1 for w in words}
        written = set(phrase_words)
        for text in chain(texts, (normalize(strip_slack_markup(e.answer)) for e in kb.entries)):
            written.update(text.split())
        word_buckets: dict[str, list[str]] = defaultdict(list)
        own: list[str] = []
        for word in sorted(written):  # sorted: the same corrections whatever the hash seed
            if len(word) < 3 or not word.isalpha() or word in FUNCTION_WORDS:
                continue
            if word in phrase_words or any(
                    t in self.known for t in vocab.terms(word, normalized=True)):
                own.append(word)
                if len(word) >= 4:
                    word_buckets[word[0]].append(word)
        self.word_buckets = dict(word_buckets)
        self.words = frozenset(own)

    def _build_bm25(self, kb: KnowledgeBase) -> None:
        """Okapi BM25 weights of each entry's terms. An entry is one document: its question,
        counted twice, as it says what the entry is about, and the words of its answer; not
        its phrasings, so that an entry just added, with none, stands level with the others.
        Weights are divided by log(1 + entries), the largest IDF up to a constant, so that a
        score means about the same in a small FAQ as in a large one."""
        docs: list[Counter[str]] = []
        for entry in kb.entries:
            doc = Counter(self.vocabulary.terms(entry.question))
            for term in list(doc):
                doc[term] *= 2
            doc.update(self.vocabulary.terms(plain_text(entry.answer)))
            docs.append(doc)
        lengths = np.array([sum(doc.values()) for doc in docs], dtype=np.float64)
        average = float(lengths.mean()) if len(docs) and lengths.mean() > 0 else 1.0
        n_docs = len(docs)
        scale = math.log(1 + max(n_docs, 1))
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for n, doc in enumerate(docs):
            for term, count in doc.items():
                postings[term].append((n, count))
        spans: dict[str, tuple[int, int]] = {}
        ids: list[int] = []
        weights: list[float] = []
        for term in sorted(postings):  # sorted: the same arrays whatever the hash seed
            rows = postings[term]
            idf = math.log(1 + (n_docs - len(rows) + 0.5) / (len(rows) + 0.5))
            spans[term] = (len(ids), len(ids) + len(rows))
            for n, count in rows:
                norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[n] / average)
                ids.append(n)
                weights.append(idf * count * (BM25_K1 + 1) / (count + norm) / scale)
        self.bm25_postings = spans
        self.bm25_ids = np.array(ids, dtype=np.intp)
        self.bm25_weights = np.array(weights, dtype=np.float64)

    def bm25(self, terms: Iterable[str]) -> np.ndarray:
        """Each entry's BM25 score for a question's ``terms`` (each counted once)."""
        scores = np.zeros(len(self.entries))
        for term in set(terms):
            span = self.bm25_postings.get(term)
            if span is not None:
                scores[self.bm25_ids[span[0]:span[1]]] += self.bm25_weights[span[0]:span[1]]
        return scores

    # ------------------------------------------------------------------ question terms

    def correct(self, term: str) -> tuple[str, float] | None:
        """The known term ``term`` is probably a typo of, with a credit (0-1).

        Damerau-Levenshtein distance, so a swapped pair of letters ("reveiw") is one edit:
        one edit allowed from 5 letters on (4-letter words: only a swapped pair), two from 8;
        the first letter must agree. Everyday English words ("lunch", "fund") are never
        corrected: they are words of their own. Ties go to the term more entries use.
        """
        if term in self._typos:
            return self._typos[term]
        found = None
        if len(term) >= 4 and not term.isdigit() and term not in EVERYDAY_WORDS:
            canonical = self.vocabulary.canonical
            hits = [(canonical.get(h, h), d)
                    for h, d in _typo_hits(term, self.buckets.get(term[0], ()), dropped=False)]
            if hits:
                best = min(hits, key=lambda h: (h[1], -self.df.get(h[0], 0), h[0]))
                found = (best[0], TYPO_CREDIT[min(int(best[1]), 2)])
        if len(self._typos) < CACHE_LIMIT and not _has_digit(term):
            self._typos[term] = found
        return found

    def unasked(self, normalized: str, entry: int) -> list[str]:
        """The number questions (``how many``, ``how much``) the normalised question asks that
        no phrasing of entry ``entry`` asks: a count that entry never gives."""
        asks = quantity_asks(normalized, normalized=True)
        return sorted(asks - self.entry_quantities[entry]) if asks else []

    def everyday_typo(self, term: str) -> bool:
        """Whether ``term`` is one edit from an everyday word ("hw" how, "tak" take): neutral."""
        return _everyday_typo(term)

    def spell(self, word: str) -> tuple[str, float] | None:
        """The knowledge's word (as written) ``word`` is probably a typo of, with a credit.

        The rules of :meth:`correct` (a 4-letter word may also have lost a letter of a
        5-letter one: "tokn"), on words before stemming: a typo seldom stems like
        its word ("documentaton" keeps its ending, "documentation" loses it), and a word of a
        synonym phrase ("natve" in "react natve") is found too, so the phrase still forms."""
        if word in self._spelled:
            return self._spelled[word]
        found = None
        if len(word) >= 4 and word.isalpha() and word not in EVERYDAY_WORDS:
            hits = _typo_hits(word, self.word_buckets.get(word[0], ()), dropped=True)
            if hits:
                terms = self.vocabulary.terms
                best = min(hits, key=lambda h: (h[1], -max(
                    (self.df.get(t, 0) for t in terms(h[0], normalized=True)), default=0), h[0]))
                found = (best[0], TYPO_CREDIT[min(int(best[1]), 2)])
        if len(self._spelled) < CACHE_LIMIT:
            self._spelled[word] = found
        return found

    def _misspelt(self, word: str) -> bool:
        """Whether ``word`` is worth a spelling check: a content word the knowledge lacks (of
        at most 30 letters: longer is no word, and is not kept in the caches)."""
        if (not 4 <= len(word) <= 30 or not word.isalpha() or word in self.words
                or word in FUNCTION_WORDS):
            return False
        terms = self.vocabulary.terms(word, normalized=True)
        return bool(terms) and terms[0] not in self.known and terms[0] not in _COMMON_STEMS

    def split(self, word: str) -> tuple[str, str] | None:
        """Two words of the knowledge that ``word`` runs together ("accesstoken", "loginkit",
        "redirecturi"; "accessToken" once lowercased), or None. Each part has 3+ letters and is
        a content word of the knowledge, or the two form one of its synonym phrases; of several
        splits, the most even one."""
        if word in self._joined:
            return self._joined[word]
        found = None
        if len(word) >= 6 and word.isalpha():
            best = 0
            for k in range(3, len(word) - 2):
                left, right = word[:k], word[k:]
                if (min(k, len(word) - k) > best and left in self.words and right in self.words
                        and self._parts_known(left, right)):
                    found, best = (left, right), min(k, len(word) - k)
        if len(self._joined) < CACHE_LIMIT:
            self._joined[word] = found
        return found

    def _parts_known(self, left: str, right: str) -> bool:
        terms = [t for t, _, _ in self.vocabulary.spans([left, right])]
        return all(t in self.known and t not in _COMMON_STEMS for t in terms) and bool(terms)

    def _fix(self, word: str) -> tuple[tuple[str, ...], float] | None:
        """The knowledge's word(s) a question word is read as, with their credit: a typo
        (:meth:`spell`) or two words run together (:meth:`split`); None for a word read as is."""
        if not self._misspelt(word):
            return None
        fixed = self.spell(word)
        if fixed is not None:
            return (fixed[0],), fixed[1]
        parts = self.split(word)
        return (parts, TYPO_CREDIT[1]) if parts else None  # a missing space is one edit

    def respell(self, text: str) -> str:
        """``text`` with each word the matcher reads as a typo, or as two words run together,
        written as the knowledge's word(s) it is read as, and chat shorthand written out ("r" as
        "are"): the text the semantic model reads."""
        def fix(m: re.Match[str]) -> str:
            fixed = self._fix(m.group(0).lower())
            return " ".join(fixed[0]) if fixed else m.group(0)
        return _WORD.sub(fix, expand_shorthand(text))

    def model_reading(self, question: str) -> tuple[str, str]:
        """``question`` as one line without Slack markup, and that line :meth:`respell`-ed:
        what the semantic model and BM25 read (the two differ when a word was corrected)."""
        plain = " ".join(strip_slack_markup(question[:MAX_INPUT_CHARS]).split())
        return plain, self.respell(plain)

    def read(self, text: str) -> Analysis:
        """Classify the terms of normalised ``text`` as known, corrected, common or unknown."""
        words = text.split()
        fixes = {i: fixed for i, word in enumerate(words) if (fixed := self._fix(word))}
        if fixes:
            spelt: list[str] = []
            origin: list[int] = []  # the question word each spelt word comes from
            for i, word in enumerate(words):
                new = fixes[i][0] if i in fixes else (word,)
                spelt.extend(new)
                origin.extend([i] * len(new))
            spans = self.vocabulary.spans(spelt)
            order = [t for t, _, _ in spans]
            # a term only typos gave counts at the typo's credit; spelt right anywhere, in full
            typo_credit: dict[str, float] = {}
            spelt_from: dict[str, list[str]] = defaultdict(list)
            for term, first, count in spans:
                found = sorted({origin[j] for j in range(first, first + count)} & fixes.keys())
                if found:
                    typo_credit[term] = max(typo_credit.get(term, 0.0),
                                            min(fixes[i][1] for i in found))
                    spelt_from[term].extend(words[i] for i in found)
                else:
                    typo_credit[term] = 1.0
        else:
            order = self.vocabulary.terms(text, normalized=True)
            typo_credit, spelt_from = {}, {}
        analysis = Analysis(order=order)
        for term in dict.fromkeys(analysis.order):
            if term in self.known:
                analysis.credit[term] = typo_credit.get(term, 1.0)
                if analysis.credit[term] < 1.0:
                    for word in spelt_from[term]:  # a split word reads as two terms
                        seen = analysis.corrected.get(word)
                        analysis.corrected[word] = f"{seen} {term}" if seen else term
            elif term in _COMMON_STEMS or term.isdigit():
                analysis.common.append(term)
            else:
                fixed = self.correct(term)
                if fixed is not None and fixed[0] not in analysis.credit:
                    analysis.credit[fixed[0]] = fixed[1]
                    analysis.corrected[term] = fixed[0]
                elif fixed is None and term not in EVERYDAY_WORDS and self.everyday_typo(term):
                    analysis.common.append(term)
                else:
                    analysis.unknown.append(term)
        return analysis




def _word_pairs(terms: list[str]) -> set[str]:
    """The consecutive pairs of different terms, as phrasings and questions share them."""
    return {f"{a}+{b}" for a, b in zip(terms, terms[1:], strict=False) if a != b}


def _token_sort(text: str) -> str:
    """``text``'s words sorted: what rapidfuzz's ``token_sort_ratio`` compares."""
    return " ".join(sorted(text.split()))


def _flatten(postings: dict[str, list[int]]) -> tuple[dict[str, tuple[int, int]], np.ndarray]:
    """Posting lists as one array and each key's (start, stop) in it: one allocation instead
    of an array per word, and quick to pickle."""
    spans: dict[str, tuple[int, int]] = {}
    start = 0
    for key, ids in postings.items():
        spans[key] = (start, start + len(ids))
        start += len(ids)
    flat = np.fromiter(chain.from_iterable(postings.values()), dtype=np.intp, count=start)
    return spans, flat




def _asks_for_human(index: Index, words: list[str]) -> bool:
    for phrase in index.handoff:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == phrase:
                return True
    return False


