"""Words: which carry no topic, stemming, synonym groups (``Vocabulary``), greetings and the
number questions a text asks. Pure functions and data."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import snowballstemmer

from bot.normalize import normalize

# Words that carry no topic in any FAQ: always dropped.
FUNCTION_WORDS = frozenset(
    """
    a an the is are was were be been being am do does did done doing i me my mine myself we us
    our ours you your yours he she they them their it its this that these those to of in on at
    for with by from and or but so if then than as into onto about up out off over under again
    what which who whom whose how hows whats thats theres heres whos im ive id ill youre youve
    youd youll weve wed theyre theyve theyd theyll itll itd thatll hes shes hed shed
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
    good bad great fine ok okay sure yes yeah yep nope right wrong well better best even
    only back around part point case fact idea lot lots bit little big small long
    short high low time times day days week weeks month months year years hour hours minute
    minutes people person guy man company business product project team teams folks dev devs
    developer developers engineer engineers pm manager boss client clients customer customers
    friend colleague anyone somebody someone everybody where when why whether because since
    while though although however otherwise else instead without within between through
    during before after above below per via vs etc eg ie btw fyi imo afaik asap pls sorry
    hope hoping thanks appreciate appreciated help helps helped advice guidance info
    information details detail hear heard let lets put puts keep kept seem seems seemed happen
    happens happened happening able unable possible impossible unsure clear unclear
    basically literally honestly seriously simply ones
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
    share shared continued finished fixed moved planned update updated updates
    sign signed hit hits mark marked call called ping pinged chase chasing followed
    confused confusing stuck struggling struggle lost missing done ready free busy love
    actual additional available basic certain common complete correct current different easy
    entire exact extra full general hard huge important main major minor normal obvious
    official particular previous proper quick real recent regular relevant similar simple
    special specific strange total true typical usual various weird whole whatever overall
    average rough fair reasonable decent standard upcoming pending
    latest earlier later early late fast slow quickly slowly newer older fresh brand
    ahead almost anyway anymore approx basically certainly definitely directly easily especially
    eventually exactly finally fully hopefully immediately likely mainly meanwhile mostly nearly
    obviously officially quite rather somehow somewhat specifically suddenly totally truly
    unfortunately apparently anyhow together alone properly correctly simply surely
    monday tuesday wednesday thursday friday saturday sunday weekday weekdays tonight
    morning afternoon evening night noon midnight date dates deadline period periods
    several multiple couple number numbers amount half dozen hundred hundreds thousand
    thousands million millions percent few lot plenty enough
    hmm umm uh ugh oops wow cool awesome nice neat regards dear sir madam kindly gonna wanna
    gotta dunno idk tbh ngl fwiw iirc afaict lol haha hehe omg pls plz yall hello hey
    im ok alright folks mate buddy guys team teammate teammates colleague colleagues
    someone somewhere anywhere everywhere nowhere whoever whenever wherever
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
    monitor keyboard mouse cable charger badge badges key keys lock locks password
    passwords wifi network vpn server servers git branch branches commit commits merge rebase
    code review reviews pull push deploy deploys build builds test tests bug bugs line lines
    file files folder folders font fonts color colors colour colours theme themes icon icons
    logo logos image images photo photos picture pictures camera sound volume
    night morning evening noon today week month year hour minute second seconds
    fine find fond kind mind wind bind hind mine nine pine lime time
    bunch punch hunch launch crunch lane land sand hand wand
    post most host lost past fast last cast vast mast
    show stop chip clip slip snip drip grip
    date rate late gate fate mate hate
    mode node rode
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


def without_greetings(text: str) -> str:
    """Normalised ``text`` without the salutations and sign-offs at either end."""
    return _GREETING_EDGES.sub("", text).strip()


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

    @cached_property
    def _sorted_phrases(self) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        return {first: sorted(options.items(), key=lambda kv: -len(kv[0]))
                for first, options in self.phrases.items()}

    @cached_property
    def _memo(self) -> dict[str, str | None]:
        """word -> term (None for a function word): a word's term never changes."""
        return {}


_MISSING = object()


def analyze_text(text: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The terms of ``text`` (for tests and tools): see :class:`Vocabulary`."""
    return (vocabulary or Vocabulary({}, {})).terms(text)


# everyday words and their stems: never distinctive of an entry
_COMMON_STEMS = frozenset(
    {w for w in COMMON_WORDS | GENERAL_WORDS} | {_stem(w) for w in COMMON_WORDS | GENERAL_WORDS}
)
