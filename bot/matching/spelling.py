"""Typos: which words a word may be a misspelling of, and everyday misspellings ("hw", "tak")
that carry no topic."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from bot.matching.lexicon import CACHE_LIMIT, COMMON_WORDS, FUNCTION_WORDS, _stem

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

