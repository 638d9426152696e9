"""What users asked that the FAQ does not answer yet (pure, no I/O; weekly figures are
:mod:`bot.stats`).

Usage::

    rows = store.questions(since)                 # the question log (bot.tickets)
    report = find_gaps(rows, kb)                  # faqbot kb gaps
    for gap in report.gaps:
        print(gap.cluster.count, gap.cluster.examples, gap.suggestion.yaml)

**Which questions.** Those that became tickets because nothing matched (``no_match``) or an
answer did not help (``not_helpful``), and those whose answer got *Not helpful* feedback.
Tickets the FAQ opens on purpose (``cap_increase``) and requests for a person (``requested``)
are not gaps.

**Picked from "Did you mean…".** A question the bot asked back about, whose asker then
picked an entry, is that entry's in the asker's own words. Per entry picked at least
``min_count`` times (not for an answer marked *Not helpful*), the questions it does not answer
with that entry yet, and that no entry or ``not_covered`` question has already, are offered as
its phrasings (``GapReport.picked``, kind ``picked``).

**Grouping.** Each question becomes a *key*: the words of :func:`bot.normalize.normalize`
without function and everyday words, stemmed and with the knowledge's synonyms folded
(``kb.index.vocabulary``), sorted and unique. Identical texts are keyed once and identical keys
are one group at once. The rest are grouped greedily, most frequent first: a key joins the
group whose leader it resembles most (rapidfuzz ``token_set_ratio`` at least ``threshold``; of
equal scores, the bigger group), else it leads a new group. A key is only compared with leaders
that share two of its words, or one when either has at most two words, and that have a similar
number of words (so "api" alone does not swallow every question about an API); they are found
through inverted indexes on words and on pairs of words (for one shared by very many leaders,
only the biggest groups' leaders). This keeps 100,000 questions to a few seconds
(``bench/bench_gaps.py``).

**Suggestions.** The current knowledge decides a group's most central questions. When most of
them point to one entry with a middling score, they are phrasings that entry is missing; when
they point nowhere in particular, they need a new entry (drafted with ``answer: TODO``), or a
place in the knowledge's ``not_covered`` list. When most are held back on purpose by a
``not_covered`` question, the group says so (``not-covered``): a person answers them, and the
draft entry is there in case the FAQ should answer them after all. Groups
the knowledge now answers are left out (counted in :attr:`GapReport.answered`), except when
the askers said the answer did not help: then the snippet is that entry's answer, to edit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, combinations
from statistics import median
from typing import Any, Literal

from rapidfuzz import fuzz, process

from bot.gcpause import collector_paused
from bot.maintain import entry_yaml, question_text, unique_id
from bot.matching import COMMON_WORDS, Matcher, Vocabulary, decide
from bot.normalize import normalize, strip_slack_markup

__all__ = [
    "HELPFUL",
    "NOT_HELPFUL",
    "Cluster",
    "Gap",
    "GapReport",
    "Suggestion",
    "cluster_questions",
    "find_gaps",
    "is_gap",
    "suggest",
]

NOT_HELPFUL = "not_helpful"
HELPFUL = frozenset({"helpful", "solved"})
NOT_GAPS = frozenset({"cap_increase", "requested"})  # tickets the FAQ opens on purpose
THRESHOLD = 75.0
EXAMPLES = 3
_POSTINGS_CAP = 64  # leaders looked at per word or pair of words (biggest groups first)
_PAIR_WORDS = 12  # a longer key is indexed by the pairs of its 12 most common words only
_CENTRAL_KEYS = 30  # centrality is computed among a group's most frequent keys
_DECIDED = 5  # questions of a group the knowledge decides, to suggest an entry

Kind = Literal["phrasings", "new-entry", "improve-answer", "answered", "not-covered", "picked"]


def is_gap(row: Mapping[str, Any]) -> bool:
    """A logged question the FAQ did not answer: a ticket (not cap/human) or *Not helpful*."""
    if row.get("feedback") == NOT_HELPFUL:
        return True
    return row.get("action") == "ticket" and row.get("reason") not in NOT_GAPS


# --------------------------------------------------------------------------- grouping


class _Keys:
    """Question text -> grouping key, cached (the same questions come back again and again).

    Words are looked up one by one (word -> term, or None for a function or everyday word),
    except in a text with a word that may start one of the knowledge's synonym phrases.
    """

    def __init__(self, vocabulary: Vocabulary | None) -> None:
        self.vocabulary = vocabulary or Vocabulary({}, {})
        self.common = frozenset(
            self.vocabulary.terms(" ".join(sorted(COMMON_WORDS)), normalized=True)
        )
        self.cache: dict[str, str] = {}
        self.content: dict[str, str | None] = {}  # word -> its term unless function/everyday
        self.term: dict[str, str | None] = {}  # word -> its term unless a function word

    def __call__(self, text: str) -> str:
        key = self.cache.get(text)
        if key is None:
            words = normalize(text).split()
            if not any(map(self.vocabulary.starts_phrase, words)):
                key = self._by_word(words)
            else:
                terms = self.vocabulary.terms(" ".join(words), normalized=True)
                content = [t for t in terms if t not in self.common] or terms
                key = " ".join(sorted(set(content)))
            self.cache[text] = key
        return key

    def _by_word(self, words: list[str]) -> str:
        content = self.content
        for word in words:
            if word not in content:
                found = self.vocabulary.terms(word, normalized=True)
                term = found[0] if found else None
                self.term[word] = term
                content[word] = term if term not in self.common else None
        kept = {content[w] for w in words}
        kept.discard(None)
        if not kept:  # only everyday words: keep them
            kept = {self.term[w] for w in words}
            kept.discard(None)
        return " ".join(sorted(kept))  # type: ignore[arg-type]


def cluster_questions(
    texts: Sequence[str],
    *,
    vocabulary: Vocabulary | None = None,
    threshold: float = THRESHOLD,
) -> list[list[int]]:
    """Group similar questions; each group lists indexes into ``texts``, biggest group first.

    Questions with no words left after normalising (``"hi!"``, an emoji) are in no group.

    Args:
        vocabulary: the knowledge's (``kb.index.vocabulary``), to fold its synonyms.
        threshold: rapidfuzz ``token_set_ratio`` (0-100) a question needs with a group's leader.
    """
    return _cluster(texts, _Keys(vocabulary), threshold)


def _cluster(texts: Sequence[str], keys: _Keys, threshold: float) -> list[list[int]]:
    # grouping makes some 10^5 small lists and tuples (no cycles): the collector's passes
    # over them and over everything else alive (the rows) took a third of the time
    with collector_paused():
        return _cluster_keys(texts, keys, threshold)


def _cluster_keys(texts: Sequence[str], keys: _Keys, threshold: float) -> list[list[int]]:
    # each distinct text is keyed once (the same questions come back again and again)
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        by_text[text].append(i)
    by_key: dict[str, list[int]] = defaultdict(list)
    for text, members in by_text.items():
        key = keys(text)
        if key:
            by_key[key].extend(members)
    order = sorted(by_key, key=lambda k: (-len(by_key[k]), len(k), k))
    groups = _group_keys(order, threshold)
    result = []
    for group in groups:
        members = by_key[group[0]] if len(group) == 1 else [
            i for key in group for i in by_key[key]
        ]
        members.sort()
        result.append(members)
    result.sort(key=lambda g: (-len(g), g[0]))
    return result


def _group_keys(order: Sequence[str], threshold: float) -> list[list[str]]:
    """Greedy grouping of distinct keys, most frequent first (see the module docstring).

    A key is compared with the leaders that share two of its words, or one when either has
    at most two words (so "api" and "api key" can meet, but two longer questions that only
    share "api" do not). Those come from inverted indexes on words (of leaders of up to four
    words) and on pairs of words (of a long key, of its ``_PAIR_WORDS`` words most common in
    the log), whose lists keep only the first ``_POSTINGS_CAP`` leaders (the biggest
    groups'). The comparisons left were a tenth of those on one shared word, and made nearly
    every match (``bench/bench_gaps.py``).
    """
    leaders: list[str] = []
    sizes: list[int] = []
    short: dict[str, list[int]] = defaultdict(list)  # word -> leaders of up to 4 words
    two: dict[str, list[int]] = defaultdict(list)  # word -> leaders of exactly 2 words
    pairs: dict[tuple[str, str], list[int]] = defaultdict(list)  # word pair -> leaders
    groups: list[list[str]] = []
    empty: list[int] = []
    extract, scorer = process.extractOne, fuzz.token_set_ratio
    split = [key.split() for key in order]  # sorted and unique
    frequency = Counter(chain.from_iterable(split))
    for key, terms in zip(order, split, strict=True):
        n = len(terms)
        paired = terms
        if n > _PAIR_WORDS:  # a pasted log: its pairs would be too many to index
            common = sorted(terms, key=lambda t: (-frequency[t], t))[:_PAIR_WORDS]
            paired = sorted(common)
        low, high = (n + 1) // 2, 2 * n  # similar word counts only
        if n <= 2:
            found = set().union(*[short.get(t, empty) for t in terms])
        else:
            found = set().union(*[pairs.get(p, empty) for p in combinations(paired, 2)])
            if low <= 2:
                found.update(*[two.get(t, empty) for t in terms])
        if found:
            # the biggest groups first: of equal scores, the first is taken
            ids = [lid for lid in sorted(found) if low <= sizes[lid] <= high]
            if ids:
                best = extract(key, [leaders[lid] for lid in ids], scorer=scorer,
                               processor=None, score_cutoff=threshold)
                if best is not None:
                    groups[ids[best[2]]].append(key)
                    continue
        lid = len(leaders)
        leaders.append(key)
        sizes.append(n)
        groups.append([key])
        lists = [pairs[p] for p in combinations(paired, 2)]
        if n <= 4:
            lists += [short[t] for t in terms]
            if n == 2:
                lists += [two[t] for t in terms]
        for postings in lists:
            if len(postings) < _POSTINGS_CAP:
                postings.append(lid)
    return groups


def _central_texts(texts: Sequence[str], members: list[int], keys: _Keys) -> list[str]:
    """The group's distinct question texts, the most typical first.

    A key's centrality is its similarity to the group's other (frequent) keys, weighted by how
    often each was asked; a key's text is the one asked most often in that form.
    """
    by_key: dict[str, Counter[str]] = defaultdict(Counter)
    for raw, n in Counter(texts[i] for i in members).items():
        by_key[keys(raw)][" ".join(raw.split())] += n
    frequent = sorted(by_key, key=lambda k: -sum(by_key[k].values()))[:_CENTRAL_KEYS]
    weight = {k: sum(by_key[k].values()) for k in frequent}
    centrality = {
        k: sum(weight[o] * (100.0 if o == k else fuzz.token_set_ratio(k, o)) for o in frequent)
        for k in frequent
    }
    ranked = sorted(frequent, key=lambda k: (-centrality[k], k))
    out: list[str] = []
    seen: set[str] = set()
    # first the best text of each key, then the other texts of the keys, most central first
    for rounds in range(2):
        for key in ranked:
            variants = [t for t, _ in by_key[key].most_common()]
            for text in variants[:1] if rounds == 0 else variants[1:]:
                folded = normalize(text)
                if folded not in seen:
                    seen.add(folded)
                    out.append(text)
    return out


# --------------------------------------------------------------------------- gaps


@dataclass(frozen=True)
class Cluster:
    """Questions asked in nearly the same words."""

    count: int
    texts: tuple[str, ...]  # distinct texts (up to 10), the most typical first
    ids: tuple[int, ...]
    first_at: datetime | None
    last_at: datetime | None
    not_helpful: int  # how many got "Not helpful" feedback (the rest became tickets)

    @property
    def examples(self) -> tuple[str, ...]:
        return self.texts[:EXAMPLES]


@dataclass(frozen=True)
class Suggestion:
    """What to change in the knowledge: phrasings for an entry, or a new entry."""

    kind: Kind
    entry: str | None  # the existing entry concerned
    score: float | None  # the median score the knowledge gives the group's questions now
    note: str  # one line for people
    yaml: str  # the snippet to paste (comments included)
    new_id: str | None = None  # the id drafted for a new entry


@dataclass(frozen=True)
class Gap:
    cluster: Cluster
    suggestion: Suggestion

    def to_json(self) -> dict[str, Any]:
        c, s = self.cluster, self.suggestion
        return {
            "count": c.count,
            "not_helpful": c.not_helpful,
            "examples": list(c.examples),
            "first_at": c.first_at.isoformat() if c.first_at else None,
            "last_at": c.last_at.isoformat() if c.last_at else None,
            "suggestion": s.kind,
            "entry": s.entry,
            "score": round(s.score, 1) if s.score is not None else None,
            "note": s.note,
            "yaml": s.yaml,
        }


@dataclass(frozen=True)
class GapReport:
    questions: int  # logged questions considered
    unanswered: int  # of which gaps (tickets or "not helpful")
    groups: int  # groups found among them
    gaps: tuple[Gap, ...]  # shown: at least min_count questions, knowledge does not answer them
    answered: int = 0  # groups (among those big enough) the current knowledge now answers
    ungrouped: int = 0  # gap questions with no words to group by
    hidden: int = 0  # groups big enough but beyond the limit
    # entries picked from "Did you mean…" for questions they have no phrasing like
    picked: tuple[Gap, ...] = ()


def find_gaps(
    rows: Iterable[Mapping[str, Any]],
    kb: Matcher,
    *,
    threshold: float = THRESHOLD,
    min_count: int = 2,
    limit: int | None = 20,
    floor: float | None = None,
) -> GapReport:
    """Group the unanswered questions in ``rows`` and suggest an edit for each big group.

    Args:
        rows: logged questions as :meth:`bot.tickets.TicketStore.questions` returns them.
        kb: the knowledge in service (suggestions are made against it).
        threshold: similarity (0-100) a question needs to join a group.
        min_count: smaller groups are not reported.
        limit: at most this many groups, most frequent first (None: all).
        floor: the lowest score that still counts as "points to an entry"; default
            ``0.7 * thresholds.clarify``.
    """
    rows = list(rows)
    wanted = [  # is_gap, inlined
        r for r in rows
        if (r.get("feedback") == NOT_HELPFUL
            or (r.get("action") == "ticket" and r.get("reason") not in NOT_GAPS))
        and isinstance(r.get("question"), str)
    ]
    texts = [r["question"] for r in wanted]
    keys = _Keys(kb.index.vocabulary)
    groups = _cluster(texts, keys, threshold)
    grouped = sum(len(g) for g in groups)
    taken = {e.id for e in kb}
    known = _known_phrasings(kb)
    gaps: list[Gap] = []
    answered = hidden = 0
    for members in groups:
        if len(members) < min_count:
            break  # biggest first: the rest are smaller
        if limit is not None and len(gaps) >= limit:
            hidden += 1
            continue
        ats = [r["at"] for r in (wanted[i] for i in members) if r.get("at") is not None]
        cluster = Cluster(
            count=len(members),
            texts=tuple(_central_texts(texts, members, keys)[:10]),
            ids=tuple(wanted[i]["id"] for i in members if "id" in wanted[i]),
            first_at=min(ats) if ats else None,
            last_at=max(ats) if ats else None,
            not_helpful=sum(1 for i in members if wanted[i].get("feedback") == NOT_HELPFUL),
        )
        suggestion = _suggest(cluster, kb, taken=taken, floor=floor, known=known)
        if suggestion.kind == "answered":
            answered += 1
            continue
        if suggestion.new_id:
            taken.add(suggestion.new_id)
        gaps.append(Gap(cluster, suggestion))
    picked, settled = _picked(rows, kb, min_count=min_count, known=known)
    shown = picked if limit is None else picked[:limit]
    return GapReport(
        questions=len(rows),
        unanswered=len(wanted),
        groups=len(groups),
        gaps=tuple(gaps),
        answered=answered + settled,
        ungrouped=len(wanted) - grouped,
        hidden=hidden + len(picked) - len(shown),
        picked=tuple(shown),
    )


def _picked(rows: Sequence[Mapping[str, Any]], kb: Matcher, *, min_count: int,
            known: frozenset[str]) -> tuple[list[Gap], int]:
    """Per entry picked from "Did you mean…" at least ``min_count`` times (its answer not
    marked *Not helpful*), the questions it was picked for as phrasings to add: those the
    knowledge does not answer with it now and that no entry or ``not_covered`` question has
    already. The gaps, most picks first, and how many entries need none."""
    by_entry: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        entry_id = r.get("picked")
        if (r.get("action") == "clarify" and isinstance(entry_id, str) and kb.get(entry_id)
                and isinstance(r.get("question"), str) and r.get("feedback") != NOT_HELPFUL):
            by_entry[entry_id].append(r)
    taken = known | {normalize(q) for q in kb.not_covered}
    gaps: list[Gap] = []
    settled = 0
    for entry_id, picks in sorted(by_entry.items(), key=lambda item: (-len(item[1]), item[0])):
        if len(picks) < min_count:
            continue
        asked = Counter(" ".join(strip_slack_markup(r["question"]).split()) for r in picks)
        new: list[str] = []
        seen: set[str] = set()
        for text, _ in asked.most_common():
            folded = normalize(text)
            if not folded or folded in taken or folded in seen:
                continue
            seen.add(folded)
            decision = decide(text, kb)
            if decision.action != "answer" or decision.entry is None \
                    or decision.entry.id != entry_id:
                new.append(text)
        if not new:
            settled += 1
            continue
        ats = [r["at"] for r in picks if r.get("at") is not None]
        cluster = Cluster(count=len(picks), texts=tuple(new[:10]),
                          ids=tuple(r["id"] for r in picks if "id" in r),
                          first_at=min(ats) if ats else None, last_at=max(ats) if ats else None,
                          not_helpful=0)
        entry = kb.entry(entry_id)
        note = f"picked from 'Did you mean' for {entry_id}: add as its phrasings"
        comment = (f"{_span(cluster)}; asked, then {entry_id} (line {entry.line}) picked from "
                   "\"Did you mean\". Add these phrasings:")
        gaps.append(Gap(cluster, Suggestion(
            "picked", entry_id, None, note,
            entry_yaml({"id": entry_id, "phrasings": new[:5]}, comment=comment))))
    return gaps, settled


def suggest(
    cluster: Cluster,
    kb: Matcher,
    *,
    taken: Iterable[str] = (),
    floor: float | None = None,
) -> Suggestion:
    """The edit that would let the knowledge answer ``cluster`` (see the module docstring)."""
    return _suggest(cluster, kb, taken=taken, floor=floor, known=_known_phrasings(kb))


def _suggest(
    cluster: Cluster,
    kb: Matcher,
    *,
    taken: Iterable[str],
    floor: float | None,
    known: frozenset[str],
) -> Suggestion:
    floor = 0.7 * kb.thresholds.clarify if floor is None else floor
    texts = cluster.texts[:_DECIDED]
    decisions = [decide(t, kb, explain=True) for t in texts]
    held = Counter(d.explain.not_covered.question for d in decisions
                   if d.action == "ticket" and d.explain and d.explain.not_covered)
    if held and 3 * sum(held.values()) >= 2 * len(decisions):
        # tickets on purpose: the knowledge lists these under not_covered
        question = held.most_common(1)[0][0]
        draft = _new_entry(cluster, kb, taken, known)
        comment = (f"{_span(cluster)}; held back on purpose by the not_covered question "
                   f"'{question}': a person answers them.\nIf the FAQ should answer them after "
                   "all, take that question out of not_covered and add an entry:")
        return Suggestion("not-covered", None, None, f"not_covered on purpose ('{question}')",
                          entry_yaml(draft, comment=comment), draft["id"])
    tops = [(d.candidates[0].entry_id, d.candidates[0].score) if d.candidates else (None, 0.0)
            for d in decisions]
    votes = Counter(e for e, s in tops if e is not None and s >= floor)
    when = _span(cluster)
    if votes:
        entry_id, n = votes.most_common(1)[0]
        if 3 * n >= 2 * len(tops):  # two in three point to the same entry
            entry = kb.entry(entry_id)
            score = median(s for e, s in tops if e == entry_id)
            answered = sum(1 for d in decisions if d.entry is not None and d.entry.id == entry_id)
            if 2 * answered > len(decisions):
                if 2 * cluster.not_helpful < cluster.count:
                    return Suggestion("answered", entry_id, score,
                                      f"now answered with {entry_id}", "")
                note = (f"answered with {entry_id}, but {cluster.not_helpful} said it did not "
                        "help: review its answer")
                asked = "\n".join(f"  “{t}”" for t in cluster.examples)
                comment = (f"{when}; {note}.\nEdit the answer (line {entry.line}) with what "
                           f"they asked in mind, or make a new entry for it:\n{asked}")
                return Suggestion("improve-answer", entry_id, score, note,
                                  entry_yaml({"id": entry_id, "answer": entry.answer},
                                             comment=comment))
            known = {normalize(p) for p in entry.all_phrasings}
            new = [t for t in cluster.texts if normalize(t) not in known][:5]
            if not new:  # already its phrasings: nothing to paste
                return Suggestion("answered", entry_id, score, f"already in {entry_id}", "")
            low = min(s for e, s in tops if e == entry_id)
            high = max(s for e, s in tops if e == entry_id)
            note = f"add as phrasings of {entry_id} (scores {low:.0f}-{high:.0f} now)"
            comment = (f"{when}; they look like {entry_id} (line {entry.line}). If so, add "
                       "these phrasings:")
            return Suggestion("phrasings", entry_id, score, note,
                              entry_yaml({"id": entry_id, "phrasings": new}, comment=comment))
    draft = _new_entry(cluster, kb, taken, known)
    best = max((s for _, s in tops), default=0.0)
    note = "new entry"
    comment = (f"{when}; no entry fits (best score {best:.0f}). A new entry (or, if the FAQ "
               "should not answer it,\nlist its question under not_covered: instead; "
               "knowledge/README.md):")
    return Suggestion("new-entry", None, None, note, entry_yaml(draft, comment=comment),
                      draft["id"])


def _known_phrasings(kb: Matcher) -> frozenset[str]:
    """The knowledge's phrasings, normalised."""
    return frozenset(normalize(p) for e in kb for p in e.all_phrasings)


def _new_entry(cluster: Cluster, kb: Matcher, taken: Iterable[str],
               known: frozenset[str]) -> dict[str, Any]:
    # a text the knowledge already has as a phrasing would make the file invalid when pasted
    texts = [t for t in cluster.texts if normalize(t) not in known] or list(cluster.texts)
    question = question_text(texts[0])
    phrasings = [" ".join(t.split()) for t in texts[1:6]]
    return {
        "id": unique_id(question, {*taken, *(e.id for e in kb)}),
        "question": question,
        "phrasings": phrasings,
        "answer": "TODO",
    }


def _span(cluster: Cluster) -> str:
    n = cluster.count
    text = f"{n} question{'s' if n != 1 else ''}"
    if cluster.not_helpful:
        text += f" ({cluster.not_helpful} not helpful)"
    if cluster.first_at and cluster.last_at:
        first, last = cluster.first_at.date(), cluster.last_at.date()
        text += f", {first}" if first == last else f", {first} to {last}"
    return text
