"""Matching a question to knowledge entries, and the decision that follows (pure, no I/O).

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
the confidence blends in the question's cosine with the top entry (docs/semantic.md), and a
clarification also offers the entry nearest in meaning. A question about what the FAQ leaves
out is a ticket: one at least as near one of the knowledge's ``not_covered`` questions as to
any phrasing of its top entry (with the model), or one that those questions, scored as a
hidden entry, explain at least as well as any entry (without it). Requests for a human
(``handoff``) and entries marked ``ticket:`` (when they lead) open tickets too.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import snowballstemmer
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from bot.normalize import MAX_INPUT_CHARS, expand_shorthand, normalize, plain_text, strip_slack_markup

if TYPE_CHECKING:
    from bot.knowledge import Entry, KnowledgeBase

__all__ = ["Analysis", "Candidate", "Decision", "Index", "analyze_text", "decide", "decide_tuned"]

Action = Literal["answer", "clarify", "ticket"]

# Words that carry no topic in any FAQ: always dropped.
FUNCTION_WORDS = frozenset(
    """
    a an the is are was were be been being am do does did done doing i me my mine myself we us
    our ours you your yours he she they them their it its this that these those to of in on at
    for with by from and or but so if then than as into onto about up out off over under again
    what which who whom whose how hows whats thats theres heres whos im ive id ill youre youve
    youd youll were weve wed theyre theyve theyd theyll itll itd thatll hes shes hed shed its
    lets has have had having will would should could can may might must
    shall wont cant dont doesnt didnt isnt arent wasnt werent havent hasnt wouldnt shouldnt
    couldnt there here just also too very really pls plz please thanks thank thx ty tia cheers
    hi hello hey hiya yo guys folks all everyone anyone anybody someone somebody nobody question
    quick q qq some any much many more most such own same other else each every both few
    """.split()
)

# Everyday words: when the knowledge does not use them they are neither evidence for an entry
# nor against it ("usually", "wondering"). A knowledge file that does use one keeps it.
COMMON_WORDS = frozenset(
    """
    usually typically normally generally roughly approximately actually currently still already
    yet now rn today tomorrow yesterday soon later ago recently lately ever never always often
    sometimes again once twice maybe perhaps probably possibly kinda sorta like know knows
    knew think thought wonder wondering wondered curious ask asking asked tell telling told
    say says said mean means meant want wants wanted wanting need needs needed needing trying
    try tried get gets got getting go goes going went gone come comes came coming make makes
    made making take takes took taking give gives gave given see sees saw seen look looks
    looking looked find found use uses used using work works worked working way ways thing
    things stuff something anything everything nothing one two three first last next new old
    good bad great fine ok okay sure yes yeah yep nope right wrong well better best still even
    only already back around part point case fact idea lot lots bit little big small long
    short high low time times day days week weeks month months year years hour hours minute
    minutes people person guy man company business product project team teams folks dev devs
    developer developers engineer engineers pm manager boss client clients customer customers
    friend colleague anyone somebody someone everybody where when why whether because since
    while though although however otherwise else instead without within between through
    during before after above below per via vs etc eg ie btw fyi imo afaik asap pls sorry
    hope hoping thanks appreciate appreciated help helps helped advice guidance info
    information details detail hear heard let lets put puts keep kept seem seems seemed happen
    happens happened happening able unable possible impossible sure unsure clear unclear
    currently basically literally honestly seriously simply already else yet ones
    """.split()
)

# More everyday English (verbs, adjectives, adverbs, time and chat words): neutral like
# COMMON_WORDS when the knowledge does not use them. Hand-written and general: no domain nouns
# ("refund", "docker", "invoice" stay unknown, so they still count against a match).
GENERAL_WORDS = frozenset(
    """
    accept add allow allowed appear apply arrive attempt avoid become begin believe bring
    change changed check checked choose click close confirm consider continue decide depend
    depends expect expected expecting explain fail figure fill finish fix follow forget guess
    handle hold include involve join learn leave manage matter mention miss move notice obtain
    offer open pass pick plan planning prefer prepare proceed provide read realize receive
    received recommend remember reply respond run seek send sent set show showed shown sit
    solve sort speak spend start started stay stop suppose talk tend understand wait waited
    watch wish worry write wrote written figured sorted handled dealt deal deals reach reached
    share shared continue continued finished fixed moved planned update updated updates
    sign signed hit hits mark marked call called ping pinged chase chasing follow followed
    confused confusing stuck struggling struggle lost missing done ready free busy love
    actual additional available basic certain common complete correct current different easy
    entire exact extra full general hard huge important main major minor normal obvious
    official particular previous proper quick ready real recent regular relevant similar simple
    special specific strange total true typical usual various weird whole whatever overall
    average rough fair reasonable decent proper standard expected official upcoming pending
    latest earlier later early late fast slow quickly slowly newer older fresh brand
    ahead almost anyway anymore approx basically certainly definitely directly easily especially
    eventually exactly finally fully hopefully immediately likely mainly meanwhile mostly nearly
    obviously officially quite rather somehow somewhat specifically suddenly totally truly
    unfortunately apparently anyhow together alone properly correctly simply surely
    monday tuesday wednesday thursday friday saturday sunday weekday weekdays tonight
    morning afternoon evening night noon midnight date dates deadline period periods
    several multiple couple number numbers amount half dozen hundred hundreds thousand
    thousands million millions percent total few lot plenty enough
    hmm umm uh ugh oops wow cool awesome nice neat regards dear sir madam kindly gonna wanna
    gotta dunno idk tbh ngl fwiw iirc afaict lol haha hehe omg pls plz yall hello hey
    im ok alright anyway folks mate buddy guys team teammate teammates colleague colleagues
    someone somewhere somehow anywhere everywhere nowhere whatever whoever whenever wherever
    question questions answer answers reason reasons thing things issue issues problem problems
    situation scenario context background step steps option options approach process
    channel channels thread threads
    second third fourth fifth zero separate separately individual individually cover covers
    covered side sides range vague typo typos push pushed intermittent intermittently
    occasional occasionally sporadic sporadically random randomly constantly
    longer longest shortest meantime default defaults forward potential potentially altogether
    realistic realistically usage mgr pitch rewrite roadmap buffer sanity end ends ended
    round rounds land lands landed upper lower platform leadership ciso cto indie
    """.split()
)

# Real English words that a typo corrector must leave alone: each is one edit away from a word
# FAQs like this one use ("lunch"/"launch", "fund"/"find", "shop"/"show"), but it is a word of
# its own. When the knowledge does not use it, it is an unknown word (against a match).
EVERYDAY_WORDS = frozenset(
    """
    lunch dinner breakfast brunch meal meals snack coffee coffe tea beer wine pizza food drink
    drinks party parties game games movie movies music song songs band sport sports gym
    holiday holidays vacation weekend weekends weather rain snow sunny cloud clouds forecast
    house home room rooms floor floors door doors desk desks chair chairs printer office
    offices building parking car cars bike train trains plane flight flights hotel trip trips
    travel dog dogs cat cats pet pets kid kids baby family wife husband mom dad birthday
    wedding doctor sick ill money cash bank banks salary pay paid payday bill bills rent tax
    taxes price prices cost costs fee fees budget budgets fund funds sale sales shop shops
    shopping order orders ship shipping shipment swag gift gifts coin coins card cards wallet
    refund refunds invoice invoices payment payments purchase purchases buy bought sell sold
    mail email emails phone phones call calls meeting meetings calendar slides deck laptop
    monitor keyboard mouse cable charger printer badge badges key keys lock locks password
    passwords wifi network vpn server servers git branch branches commit commits merge rebase
    code review reviews pull push deploy deploys build builds test tests bug bugs line lines
    file files folder folders font fonts color colors colour colours theme themes icon icons
    logo logos image images photo photos picture pictures camera sound volume
    night morning evening noon today week month year hour minute second seconds
    fine find fond fund kind mind wind bind hind line mine nine pine wine fine lime time
    lunch bunch punch hunch launch crunch lane land sand band hand wand
    post most host cost lost past fast last cast vast mast
    show shop stop ship chip clip slip snip trip drip grip
    date rate late gate fate mate hate
    mode code node rode
    """.split()
)

_STEMMER = snowballstemmer.stemmer("english")
# Per-word caches (word → term, typo corrections, stems): a question's words repeat across
# questions, so these hit almost always; bounded, and words with digits (ids, numbers, each
# new) are not kept, so a long-running worker's memory levels off (bench/bench_soak.py).
CACHE_LIMIT = 20_000
_DIGIT = re.compile(r"\d")


def _has_digit(word: str) -> bool:
    return _DIGIT.search(word) is not None

_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(r"(?<=[.?!])\s+|\n+")
# Salutations and sign-offs at either end of a (normalised) message carry no topic, even when
# the knowledge happens to use their words ("a good description", "the TikTok team").
_SALUTATION = (
    r"(?:good (?:morning|afternoon|evening|day)|morning|afternoon|evening|gm|hi|hello|hey|heya"
    r"|hiya|howdy|greetings|dear)(?: (?:team|all|everyone|folks|guys|there|people|yall|support))?"
)
_SIGN_OFF = (
    r"(?:thanks|thank you|thx|ty|cheers|regards|best regards|kind regards|many thanks"
    r"|thanks in advance|tia)(?: (?:team|all|everyone|folks|guys|a lot|so much|again))?"
)
_GREETING_EDGES = re.compile(rf"^(?:{_SALUTATION} )*{_SALUTATION}\b|\b{_SIGN_OFF}$")
_MAX_TERMS = 60  # a question longer than this is reduced to its sentences
# "how many requests per minute", "how much does it cost": a question that asks for a number
# (a count, an amount) is answered only by an entry one of whose phrasings asks for one too;
# "how many days" and "how much time" ask how long, which is not checked.
_QUANTITY = re.compile(r"\bhow (many|much)\b((?: \S+){0,2})")
_DURATION_WORDS = frozenset(
    "second seconds sec secs minute minutes min mins hour hours hr hrs day days week weeks "
    "month months year years time longer business working".split()
)


def quantity_asks(text: str, *, normalized: bool = False) -> frozenset[str]:
    """The number questions ``text`` asks: ``how many`` / ``how much``, except of a time span
    ("how many days", "how much time": a duration). ``normalized``: ``text`` is already the
    output of :func:`normalize`."""
    found = set()
    for m in _QUANTITY.finditer(text if normalized else normalize(text)):
        if not any(w in _DURATION_WORDS for w in m.group(2).split()):
            found.add(f"how {m.group(1)}")
    return frozenset(found)


def _stem(word: str) -> str:
    if len(word) <= 3 or word.isdigit():
        return word
    if _has_digit(word):  # "v2", "2fa": stemmed, not cached (each new id would be kept)
        return _STEMMER.stemWord(word)
    return _stem_word(word)


@lru_cache(maxsize=CACHE_LIMIT)
def _stem_word(word: str) -> str:
    return _STEMMER.stemWord(word)


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    question: str
    score: float


@dataclass(frozen=True)
class Decision:
    """What the bot does with a question. ``entry`` is set for answers (and cap tickets)."""

    question: str
    action: Action
    entry: Entry | None
    score: float
    candidates: tuple[Candidate, ...]
    reason: str | None = None
    explain: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The contract's ``faqbot ask --json`` object."""
        return {
            "question": self.question,
            "action": self.action,
            "entry": self.entry.id if self.entry else None,
            "answer": self.entry.answer if self.entry else None,
            "score": round(self.score, 1),
            "candidates": [
                {"entry": c.entry_id, "question": c.question, "score": round(c.score, 1)}
                for c in self.candidates
            ],
            "reason": self.reason,
        }


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Vocabulary:
    """How words become terms: synonym groups (single words and phrases) and stemming."""

    canonical: dict[str, str]  # stemmed word or joined phrase -> canonical term
    phrases: dict[str, dict[tuple[str, ...], str]]  # first word -> {word tuple: joined term}

    @classmethod
    def build(cls, groups: Iterable[Iterable[str]]) -> Vocabulary:
        canonical: dict[str, str] = {}
        phrases: dict[str, dict[tuple[str, ...], str]] = defaultdict(dict)
        for group in groups:
            keys = []
            for item in group:
                words = tuple(normalize(item).split())
                if not words:
                    continue
                if len(words) > 1:
                    # matched on stems, so "signed off" and "turning down" are phrases too
                    stems = tuple(_stem(w) for w in words)
                    joined = "_".join(stems)
                    phrases[stems[0]][stems] = joined
                    keys.append(joined)
                else:
                    keys.append(_stem(words[0]))
            if not keys:
                continue
            head = keys[0]
            for key in keys:
                canonical.setdefault(key, head)
        return cls(canonical, dict(phrases))

    def terms(self, text: str, *, normalized: bool = False) -> list[str]:
        """Canonical terms of ``text`` in order (function words dropped, duplicates kept)."""
        words = (text if normalized else normalize(text)).split()
        out: list[str] = []
        memo = self._memo
        phrases = self.phrases
        i = 0
        n = len(words)
        while i < n:
            word = words[i]
            if phrases and self.starts_phrase(word):
                joined = self._phrase_at(words, i)
                if joined is not None:
                    out.append(self.canonical.get(joined[0], joined[0]))
                    i += joined[1]
                    continue
            i += 1
            term = memo.get(word, _MISSING)
            if term is _MISSING:
                if word in FUNCTION_WORDS:
                    term = None
                else:
                    stem = _stem(word)
                    term = self.canonical.get(stem, stem)
                if len(memo) < CACHE_LIMIT and not _has_digit(word):
                    memo[word] = term
            if term is not None:
                out.append(term)
        return out

    def spans(self, words: list[str]) -> list[tuple[str, int, int]]:
        """Like :meth:`terms`, each term with the words it comes from: (term, first, count)."""
        out: list[tuple[str, int, int]] = []
        i, n = 0, len(words)
        while i < n:
            if self.phrases and self.starts_phrase(words[i]):
                joined = self._phrase_at(words, i)
                if joined is not None:
                    out.append((self.canonical.get(joined[0], joined[0]), i, joined[1]))
                    i += joined[1]
                    continue
            term = self.terms(words[i], normalized=True)
            if term:
                out.append((term[0], i, 1))
            i += 1
        return out

    def starts_phrase(self, word: str) -> bool:
        """Whether ``word`` (normalised) may begin one of the synonym phrases."""
        return bool(self.phrases) and _stem(word) in self.phrases

    def _phrase_at(self, words: list[str], i: int) -> tuple[str, int] | None:
        """The longest synonym phrase starting at ``words[i]``, with its length in words."""
        for phrase, joined in self._sorted_phrases[_stem(words[i])]:
            if tuple(_stem(w) for w in words[i : i + len(phrase)]) == phrase:
                return joined, len(phrase)
        return None

    @property
    def _sorted_phrases(self) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        cached = self.__dict__.get("_sorted")
        if cached is None:
            cached = {
                first: sorted(options.items(), key=lambda kv: -len(kv[0]))
                for first, options in self.phrases.items()
            }
            object.__setattr__(self, "_sorted", cached)
        return cached

    @property
    def _memo(self) -> dict[str, str | None]:
        """word -> term (None for a function word): a word's term never changes."""
        memo = self.__dict__.get("_word_memo")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_word_memo", memo)
        return memo


_MISSING = object()


def analyze_text(text: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The terms of ``text`` (for tests and tools): see :class:`Vocabulary`."""
    return (vocabulary or Vocabulary({}, {})).terms(text)


# --------------------------------------------------------------------------- index


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
        # ids of the entries with fewer than THIN_PHRASINGS phrasings: judged by the blend too
        self.thin: frozenset[str] = frozenset()

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

        df: dict[str, int] = defaultdict(int)
        for bag in entry_terms:
            for term in bag:
                df[term] += 1
        answer_df: dict[str, int] = defaultdict(int)
        for bag in answer_terms:
            for term in bag:
                answer_df[term] += 1
        n_entries = max(len(kb.entries), 1)
        norm = math.log(1 + n_entries)
        weight = {t: math.log(1 + n_entries / d) / norm for t, d in df.items()}
        for term, d in answer_df.items():
            weight.setdefault(term, math.log(1 + n_entries / d) / norm)
        for term in weight.keys() & _COMMON_STEMS:
            weight[term] = min(weight[term], COMMON_WEIGHT_MAX)
        index.df = {t: df.get(t, 0) + answer_df.get(t, 0) for t in weight}
        index.weight = weight
        index.known = frozenset(weight)

        postings: dict[str, list[int]] = defaultdict(list)
        pair_postings: dict[str, list[int]] = defaultdict(list)
        masses: list[float] = []
        for pid, terms in enumerate(phrasing_terms):
            term_set = sorted(set(terms))  # sorted: the same sum whatever the hash seed
            masses.append(sum(weight[t] for t in term_set))
            for term in term_set:
                postings[term].append(pid)
            for pair in _word_pairs(terms):
                pair_postings[pair].append(pid)
        index.postings, index.posting_ids = _flatten(postings)
        index.pair_postings, index.pair_posting_ids = _flatten(pair_postings)
        index.phrasing_text = texts
        index.phrasing_sorted = [_token_sort(t) for t in texts]
        index.phrasing_entry = np.array(phrasing_entry, dtype=np.intp)
        index.phrasing_mass = np.array(masses, dtype=np.float64)
        index.phrasing_len = np.array([len(t) for t in texts], dtype=np.float64)
        index.entry_start = np.searchsorted(index.phrasing_entry, np.arange(len(kb.entries)))
        # an entry's own words first (factor 1), then the words only its answer uses
        entry_postings: dict[str, list[int]] = defaultdict(list)
        for n, bag in enumerate(entry_terms):
            for term in bag:
                entry_postings[term].append(n)
        own = {t: len(ids) for t, ids in entry_postings.items()}
        for n, answer_bag in enumerate(answer_terms):
            for term in answer_bag:
                entry_postings[term].append(n)
        index.entry_postings, index.entry_posting_ids = _flatten(entry_postings)
        factors = np.full(len(index.entry_posting_ids), ANSWER_ONLY)
        for term, (start, _) in index.entry_postings.items():
            factors[start : start + own.get(term, 0)] = 1.0
        index.entry_posting_factors = factors
        index._build_bm25(kb)
        index.thin = frozenset(e.id for e in kb.entries if len(e.phrasings) < THIN_PHRASINGS)

        buckets: dict[str, list[str]] = defaultdict(list)
        # A typo is corrected towards a known term or towards any one-word member of a known
        # term's synonym group ("permision" is one letter from "permission", whose term is
        # "scope"): the member is read as its group's term.
        spellings = set(index.known) | {
            key for key, term in vocab.canonical.items() if term in index.known}
        for term in sorted(spellings):  # sorted: the same corrections whatever the hash seed
            if "_" not in term and len(term) >= 3 and not term.isdigit():
                buckets[term[0]].append(term)
        index.buckets = dict(buckets)
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
                    t in index.known for t in vocab.terms(word, normalized=True)):
                own.append(word)
                if len(word) >= 4:
                    word_buckets[word[0]].append(word)
        index.word_buckets = dict(word_buckets)
        index.words = frozenset(own)
        index.handoff = [tuple(normalize(h).split()) for h in kb.handoff if normalize(h)]
        return index

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


_COMMON_STEMS = frozenset(
    {w for w in COMMON_WORDS | GENERAL_WORDS} | {_stem(w) for w in COMMON_WORDS | GENERAL_WORDS}
)
# misspellings of these are neutral too ("hw" how, "tak" take); words of 3+ letters only
_EVERYDAY_POOL: dict[str, list[str]] = defaultdict(list)
for _w in sorted(
    {w for w in FUNCTION_WORDS | COMMON_WORDS if len(w) >= 3}
    | {_stem(w) for w in COMMON_WORDS if len(w) >= 4}
):
    _EVERYDAY_POOL[_w[0]].append(_w)
TYPO_CREDIT = (1.0, 0.85, 0.7)


def _typo_hits(word: str, pool: Sequence[str], *, dropped: bool) -> list[tuple[str, float]]:
    """The words of ``pool`` (all with ``word``'s first letter) that ``word`` may be a typo of,
    with their Damerau-Levenshtein distance: one edit from 5 letters on, two from 8. A 4-letter
    word is only a swapped pair ("shop" is not "show"), or with ``dropped``, also a 5-letter
    word that lost a letter ("tokn")."""
    if not pool:
        return []
    allowed = 2 if len(word) >= 8 else 1
    hits = process.extract(
        word, pool, scorer=DamerauLevenshtein.distance, score_cutoff=allowed, limit=None)
    if len(word) == 4:
        hits = [h for h in hits if sorted(h[0]) == sorted(word)
                or (dropped and len(h[0]) == 5 and all(c in h[0] for c in word))]
    return [(h[0], h[1]) for h in hits]


@lru_cache(maxsize=CACHE_LIMIT)
def _everyday_typo(term: str) -> bool:
    if len(term) < 2 or term.isdigit():
        return False
    pool = _EVERYDAY_POOL.get(term[0], ())
    return any(DamerauLevenshtein.distance(term, w, score_cutoff=1) <= 1 for w in pool)


@dataclass
class Analysis:
    credit: dict[str, float] = field(default_factory=dict)  # known term -> credit (typo < 1)
    corrected: dict[str, str] = field(default_factory=dict)
    common: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- scoring

# Blend of the signals (they barely interact: a flat optimum, see notes/matching-findings.md).
W_ENTRY = 0.45  # share of the question the entry explains
W_PHRASING = 0.35  # F-measure with the best phrasing
W_CHARS = 0.10  # rapidfuzz similarity with the best phrasing
W_PAIRS = 0.10  # consecutive word pairs shared with the best phrasing
UNKNOWN_WEIGHT = 1.5  # what an unknown content word weighs against a match
UNKNOWN_FIRST = 1.0  # ... the first one, beside a known word of the knowledge's own topic
MIN_QUESTION_MASS = 1.2  # about one distinctive word and a bit
ANSWER_ONLY = 0.6  # a word found only in an entry's answer counts this much
# Calibration: confidence = top score x share ** SHARE_EXPONENT, the share a softmax over the
# entries' scores at this temperature (score points).
SHARE_TEMPERATURE = 3.0
SHARE_EXPONENT = 0.5
SHARE_WINDOW = 8  # the entries the softmax runs over (and that decide scores in full)
SENTENCE_SLACK = 3.0  # a sentence may lift an entry within this many points of the whole's top
CLOSE = 12.0  # a clarification offers the entries within this many points of the top one
# An everyday word the knowledge happens to use (one phrasing's "is it ok if…") weighs at most
# this, as if 3 of 15 entries used it: rare in the knowledge, it is still not distinctive.
COMMON_WEIGHT_MAX = 0.7


@dataclass
class _Scored:
    entry: int
    score: float
    parts: dict[str, Any]


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

    # Through the inverted indexes: the weight each phrasing shares with the question, and
    # the weight each entry explains (its phrasings' words; its answer's at ANSWER_ONLY).
    # Vector sums over the postings, in the same order as term-by-term additions would be.
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

    # One phrasing per entry (the best full score; the first on a tie), entries best first.
    if len(pids) == np.count_nonzero(best_fit):  # no ties: one phrasing per entry already
        ranked = np.lexsort((owners, -full))
    else:
        first = _run_starts(owners)
        run = np.cumsum(first) - 1
        keep = np.flatnonzero(full == np.maximum.reduceat(full, np.flatnonzero(first))[run])
        keep = keep[_run_starts(owners[keep])]
        ranked = keep[np.lexsort((owners[keep], -full[keep]))]
    if limit is not None:
        ranked = ranked[:limit]
    texts = index.phrasing_text
    results = []
    for entry_no, pid, score, f, c, hits, covered in zip(
        owners[ranked].tolist(), pids[ranked].tolist(), full[ranked].tolist(),
        fit[pids[ranked]].tolist(), chars[ranked].tolist(), pair_hits[ranked].tolist(),
        explained[owners[ranked]].tolist(), strict=True,
    ):
        results.append(_Scored(entry_no, score, {
            "phrasing": texts[pid],
            "entry_coverage": covered / q_mass,
            "phrasing_f": f,
            "chars": c,
            "pairs": int(hits),
        }))
    return results, analysis


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
    whole = _GREETING_EDGES.sub("", normalize(cleaned)).strip()
    readings = [whole]
    if len(whole.split()) > 12:
        # each sentence with whether it asks ("?"), before the short ones are left out
        marked = [(_GREETING_EDGES.sub("", normalize(raw)).strip(), raw.rstrip().endswith("?"))
                  for raw in _SENTENCE.split(cleaned)]
        marked = [(s, asks) for s, asks in marked if len(s.split()) >= 2]
        if len(marked) > 1:
            asking = [s for s, asks in marked if asks]
            readings.extend((asking or [s for s, _ in marked])[:4])
    if len(readings[0].split()) > _MAX_TERMS * 2:
        readings[0] = " ".join(readings[0].split()[: _MAX_TERMS * 2])
    return list(dict.fromkeys(readings))


def rank(
    question: str, kb: KnowledgeBase, *, limit: int | None = None
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


def _asks_for_human(index: Index, words: list[str]) -> bool:
    for phrase in index.handoff:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == phrase:
                return True
    return False


def decide(question: str, kb: KnowledgeBase, *, explain: bool = False) -> Decision:
    """What the bot does with ``question``: answer, clarify or open a ticket (see module doc)."""
    if not kb.thresholds.tuned:
        return _decide_blend(question, kb, explain=explain)
    decision = decide_tuned(question, kb, explain=explain)
    if not kb.index.thin or decision.action == "ticket" and decision.reason == "requested":
        return decision
    # An entry with few phrasings gives the tuned matcher little to go on: when the blend,
    # which reads every entry's question and answer alike, puts such an entry first and would
    # answer with it (or offer it while the tuned matcher answers with another), it answers.
    blend = _decide_blend(question, kb, explain=explain)
    lead = kb.entry(blend.candidates[0].entry_id) if blend.candidates else None
    if lead is None or lead.id not in kb.index.thin:
        return decision
    if decision.action == "answer" and decision.entry is not None and decision.entry.id == lead.id:
        return decision
    if blend.action == "answer" or (blend.action == "clarify" and decision.action == "answer"):
        details = {**blend.explain, "thin": lead.id} if explain else {}
        return Decision(question, "answer", lead, blend.score, blend.candidates, None, details)
    return decision


def decide_tuned(question: str, kb: KnowledgeBase, *, explain: bool = False) -> Decision:
    """:func:`decide` by the knowledge's own thresholds alone, without the blend's word on
    entries with few phrasings (``kb lint`` holds phrasings out, which makes every entry
    look thinner than it is)."""
    index = kb.index
    th = kb.thresholds
    ranked, analysis, reading = rank(question, kb, limit=SHARE_WINDOW)
    candidates = tuple(
        Candidate(index.entry_ids[s.entry], index.entries[s.entry].question, min(s.score, 100.0))
        for s in ranked[: max(th.candidates, 3)]
    )
    top = ranked[0] if ranked else None
    share = _share([s.score for s in ranked])
    top_score = confidence(ranked[0].score, share) if top else 0.0
    raw_top = min(top.score, 100.0) if top else 0.0
    second = ranked[1].score if len(ranked) > 1 else 0.0
    # A question made only of words the knowledge knows is far more often a rewording of an
    # entry than one with a word it has never seen, at the same confidence: it may be answered
    # at the lower `familiar` threshold (docs/quality.md, round 4).
    answer_at = th.answer if analysis.unknown else th.answer_familiar
    lexical = top_score
    cosine = None
    nearest: int | None = None  # the entry nearest in meaning (with the semantic model)
    model_text = ""  # what the semantic model read, when the matcher corrected words of it
    beyond: dict[str, Any] | None = None  # the `not_covered` question the question is nearer
    sem = kb.semantic
    if top is not None and sem is not None and kb.vectors is not None:
        # The optional sentence-embedding signal: how close the question's meaning is to the
        # top entry's phrasings. It lifts in-scope questions worded unlike any phrasing that
        # the lexical score alone leaves unsure of (docs/semantic.md).
        # the model reads the words the matcher corrected as corrected ("documentaton" as
        # "documentation", "accessToken" as "access token"): a typo splits into odd word pieces
        plain = " ".join(strip_slack_markup(question[:MAX_INPUT_CHARS]).split())
        text = index.respell(plain)
        near = kb.vectors.closeness(text)
        model_text = text if text != plain else ""
        cosine = float(near.entries[top.entry])
        nearest = int(np.argmax(near.entries))
        top_score = (1 - sem.weight) * top_score + sem.weight * 100 * max(cosine, 0.0)
        answer_at = sem.answer if analysis.unknown else sem.familiar
        # A question at least as near one of the knowledge's `not_covered` questions as to any
        # phrasing of the top entry is about what the FAQ leaves out: it is not answered
        # (docs/quality.md, round 12).
        if near.not_covered is not None and (
                near.not_covered_cosine >= float(near.phrasings[top.entry])):
            beyond = {"question": kb.not_covered[near.not_covered],
                      "cosine": round(near.not_covered_cosine, 3),
                      "entry_cosine": round(float(near.phrasings[top.entry]), 3)}
    elif kb.beyond is not None and (explain or (top is not None and top_score >= answer_at)):
        # Without the model, the `not_covered` questions are scored as one more entry: a
        # question they explain at least as well as any entry is about what the FAQ leaves out
        # (docs/quality.md, round 15).
        hidden = len(index.entries)
        b_ranked, _, _ = rank(question, kb.beyond, limit=SHARE_WINDOW)
        other = next((s for s in b_ranked if s.entry != hidden), None)
        held = next((s for s in b_ranked if s.entry == hidden), None)
        if held is not None and held.score >= (other.score if other else 0.0):
            # the not_covered question as written (the index keeps them normalised, in order)
            written = kb.beyond.index.phrasing_text[int(kb.beyond.index.entry_start[hidden]):]
            via = held.parts.get("phrasing")
            beyond = {"question": kb.not_covered[written.index(via)] if via in written else via,
                      "score": round(held.score, 1),
                      "entry_score": round(other.score, 1) if other else 0.0}
    normalized = normalize(question)  # for the number check and the handoff phrases
    # a question that asks for a number the top entry never gives is about something else
    asks = quantity_asks(normalized, normalized=True) if top is not None else frozenset()
    unasked = sorted(asks - index.entry_quantities[top.entry]) if asks else []
    details: dict[str, Any] = {}
    if explain:
        details = {
            "reading": reading,
            "known": {t: round(c, 2) for t, c in analysis.credit.items()},
            "weights": {t: round(index.weight[t], 2) for t in analysis.credit},
            "corrected": analysis.corrected,
            "common": analysis.common,
            "unknown": analysis.unknown,
            "confidence": round(top_score, 1),
            **({"semantic": {"lexical": round(lexical, 1), "cosine": round(cosine, 3),
                             "weight": sem.weight, "nearest": index.entry_ids[nearest],
                             **({"read_as": model_text} if model_text else {})}}
               if cosine is not None and nearest is not None and sem else {}),
            "answer_at": answer_at,
            **({"asks": unasked} if unasked else {}),
            **({"not_covered": beyond} if beyond else {}),
            "share": round(share, 3),
            "ranked": [
                {
                    "entry": index.entry_ids[s.entry],
                    "score": round(s.score, 1),
                    **{k: round(v, 3) if isinstance(v, float) else v for k, v in s.parts.items()},
                }
                for s in ranked[:5]
            ],
        }

    def make(action: Action, entry: Entry | None, reason: str | None, cands=candidates):
        return Decision(question, action, entry, top_score, cands, reason, details)

    if _asks_for_human(index, normalized.split()):
        return make("ticket", None, "requested")
    # answering needs confidence; asking back only needs a top entry that fits well enough
    if top is None or (top_score < answer_at and raw_top < th.clarify):
        return make("ticket", None, "no_match")
    top_entry = index.entries[top.entry]
    if top_score >= answer_at and raw_top - second >= th.margin and not unasked and not beyond:
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
    if nearest is not None and all(c.entry_id != index.entry_ids[nearest] for c in close):
        # the entry nearest in meaning is offered too, in place of the last lexical one if the
        # list is full: it is often the one meant when the words alone are split (semantic.md)
        lexical_scores = {s.entry: min(s.score, 100.0) for s in ranked}
        offer = Candidate(index.entry_ids[nearest], index.entries[nearest].question,
                          lexical_scores.get(nearest, 0.0))
        close = close[: th.candidates - 1] + (offer,)
    return make("clarify", None, None, close)


# ----------------------------------------------------------------- the calibrated blend

# Knowledge whose maintainer has not set ``thresholds:`` (an imported FAQ, a new file) is
# decided by one blend, fitted once across several FAQs rather than tuned on any one file:
#   score = cosine(question, the entry's answer passage)           with the semantic model
#         + BLEND_BM25 x BM25(question, the entry's question and answer)
#         + BLEND_LEXICAL x the lexical score / 100                 without the model
# Answer when the top score reaches `answer` and leads the next entry by `margin`; else offer
# the entries near the top one ("did you mean", even one) when it reaches `clarify`; else a
# ticket (docs/matching.md says how the numbers were chosen).
BLEND_BM25 = 0.1
BLEND_LEXICAL = 0.2
THIN_PHRASINGS = 3  # an entry with fewer phrasings is judged by the blend in tuned files too
BM25_K1 = 1.2  # Okapi BM25's usual term-frequency saturation and length normalisation
BM25_B = 0.75
BLEND_CLOSE = 0.08  # a clarification offers the entries within this of the top score


@dataclass(frozen=True)
class BlendThresholds:
    answer: float
    margin: float
    clarify: float


BLEND_WITH_MODEL = BlendThresholds(answer=0.68, margin=0.13, clarify=0.58)
BLEND_WORDS_ONLY = BlendThresholds(answer=0.22, margin=0.125, clarify=0.17)
BLEND_SCALE = 70.0  # the reported score (0-100) of a question exactly at `answer`


def _decide_blend(question: str, kb: KnowledgeBase, *, explain: bool) -> Decision:
    """:func:`decide` for knowledge without tuned thresholds (see BLEND_BM25 above)."""
    index = kb.index
    normalized = normalize(question)
    plain = " ".join(strip_slack_markup(question[:MAX_INPUT_CHARS]).split())
    text = index.respell(plain)
    words = index.bm25(index.vocabulary.terms(text))
    lexical = cosine = near = None
    if kb.vectors is not None:
        near = kb.vectors.closeness(text)
        cosine = near.passages
        score = cosine + BLEND_BM25 * words
        th = BLEND_WITH_MODEL
    else:
        lexical = np.zeros(len(index.entries))
        for s in rank(question, kb, limit=SHARE_WINDOW)[0]:
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
    beyond = None
    if near is not None and top is not None and near.not_covered is not None:
        # the top entry's nearest text: a phrasing, or its answer passage
        entry_cosine = max(float(near.phrasings[top]), float(near.passages[top]))
        if near.not_covered_cosine >= entry_cosine:
            beyond = {"question": kb.not_covered[near.not_covered],
                      "cosine": round(near.not_covered_cosine, 3),
                      "entry_cosine": round(entry_cosine, 3)}
    details: dict[str, Any] = {}
    if explain:
        details = {
            "reading": text,
            "blend": {"answer_at": scaled(th.answer), "margin": round(th.margin, 3),
                      "bm25_weight": BLEND_BM25, "lexical_weight": BLEND_LEXICAL,
                      "clarify_at": round(scaled(th.clarify), 1), "model": cosine is not None,
                      "corrected": text != plain},
            **({"not_covered": beyond} if beyond else {}),
            "ranked": [
                {"entry": index.entry_ids[n], "score": round(scaled(float(score[n])), 1),
                 "blend": round(float(score[n]), 3), "bm25": round(float(words[n]), 3),
                 **({"cosine": round(float(cosine[n]), 3)} if cosine is not None else {}),
                 **({"lexical": round(float(lexical[n]), 1)} if lexical is not None else {})}
                for n in order[:5]
            ],
        }

    def make(action: Action, entry: Entry | None, reason: str | None, cands=candidates):
        return Decision(question, action, entry, scaled(best), cands, reason, details)

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
                  if float(score[n]) >= best - BLEND_CLOSE)[: kb.thresholds.candidates]
    return make("clarify", None, None, close)


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
