"""Time ``faqbot kb gaps`` on a large synthetic question log (target: 100,000 in <= 10 s).

The log is made up: 2,000 "topics" (2-4 made-up content words each, a few words shared by
many topics, as "api" is) asked through varied templates, with words dropped, shuffled, added
and mistyped, topic popularity following Zipf's law; plus made-up one-off questions. By default
every question is a gap (a ``no_match`` ticket): the worst case. ``--gap-share 0.3`` is closer
to a working FAQ.

It prints the time of each stage and how well the groups recover the topics:
*purity* (share of a big group's questions that come from its main topic) and *recall* (share
of a big topic's questions that land in its biggest group).

Usage::

    .venv/bin/python bench/bench_gaps.py                    # 100,000 questions, in memory
    .venv/bin/python bench/bench_gaps.py --sqlite           # also through a SQLite store
    .venv/bin/python bench/bench_gaps.py -n 20000 --gap-share 0.3
    .venv/bin/python bench/bench_gaps.py --profile          # where find_gaps spends its time
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import gaps  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402

SYLLABLES = ("ka ro mi tel van sor plu dex bri nok sha vel tor mu zen quo fa gri len "
             "pax dro sil mek yo bun cra fen lo tri").split()
TEMPLATES = (
    "how do I {w}?", "{w}", "is it possible to {w}", "{w} not working", "any update on {w}?",
    "can someone help with {w}", "question about {w}", "why does {w} fail", "hi, {w} please",
    "{w}??", "what is the deal with {w}", "our team needs {w}", "{w} - what should we do",
)


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))))
    return sorted(words)


def typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def synthetic_log(n: int, *, topics: int = 2000, noise: float = 0.2, gap_share: float = 1.0,
                  seed: int = 7) -> tuple[list[dict], list[int]]:
    """``n`` logged questions and, for each, its topic (-1 for one-off questions)."""
    rng = random.Random(seed)
    vocab = make_vocabulary(rng, 3000)
    word_weights = [1 / (r + 1) ** 0.8 for r in range(len(vocab))]
    intents = [rng.choices(vocab, weights=word_weights, k=rng.choice((2, 3, 3, 4)))
               for _ in range(topics)]
    topic_weights = [1 / (r + 1) ** 1.1 for r in range(topics)]
    start = datetime(2026, 8, 1, tzinfo=UTC)
    rows, labels = [], []
    chosen = rng.choices(range(topics), weights=topic_weights, k=n)
    for i in range(n):
        if rng.random() < noise:
            words = rng.sample(vocab, rng.randint(3, 6))
            label = -1
        else:
            label = chosen[i]
            words = list(dict.fromkeys(intents[label]))
            if len(words) >= 3 and rng.random() < 0.25:
                words.pop(rng.randrange(len(words)))
            if rng.random() < 0.3:
                rng.shuffle(words)
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words) + 1), rng.choice(vocab))
            if rng.random() < 0.1:
                j = rng.randrange(len(words))
                words[j] = typo(rng, words[j])
        text = rng.choice(TEMPLATES).format(w=" ".join(words))
        gap = rng.random() < gap_share
        rows.append({
            "id": i + 1,
            "at": start + timedelta(seconds=rng.randrange(90 * 86400)),
            "requester": f"U{rng.randrange(5000)}",
            "channel": "C1",
            "question": text,
            "action": "ticket" if gap else "answer",
            "entry": None if gap else "review-time",
            "score": 20.0 if gap else 80.0,
            "reason": "no_match" if gap else None,
            "feedback": None,
        })
        labels.append(label)
    return rows, labels


class Clock:
    """Prints wall-clock and CPU seconds per stage (CPU time is what other load cannot skew)."""

    def __init__(self) -> None:
        self.start = self.last = (time.perf_counter(), time.process_time())
        print(f"{'stage':<34}{'wall s':>8}{'cpu s':>8}")

    def lap(self, label: str) -> None:
        now = (time.perf_counter(), time.process_time())
        print(f"{label:<34}{now[0] - self.last[0]:>8.2f}{now[1] - self.last[1]:>8.2f}")
        self.last = now

    def total(self, label: str) -> None:
        print(f"{label:<34}{self.last[0] - self.start[0]:>8.2f}{self.last[1] - self.start[1]:>8.2f}")


def quality(groups: list[list[int]], labels: list[int], top: int = 50) -> tuple[float, float]:
    purity = []
    for members in groups[:top]:
        counts = Counter(labels[i] for i in members)
        purity.append(counts.most_common(1)[0][1] / len(members))
    where: dict[int, Counter[int]] = {}
    for g, members in enumerate(groups):
        for i in members:
            where.setdefault(labels[i], Counter())[g] += 1
    sizes = Counter(x for x in labels if x >= 0)
    recall = [where[t].most_common(1)[0][1] / size for t, size in sizes.most_common(top)]
    return sum(purity) / len(purity), sum(recall) / len(recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="questions in the log")
    parser.add_argument("--gap-share", type=float, default=1.0,
                        help="share of questions that are gaps (default 1: the worst case)")
    parser.add_argument("--sqlite", action="store_true",
                        help="also time reading the log back from a SQLite store")
    parser.add_argument("--profile", action="store_true",
                        help="then profile find_gaps (cProfile, the 25 costliest functions)")
    args = parser.parse_args()
    kb = load_knowledge(ROOT / "knowledge" / "faq.yaml")
    rows, labels = synthetic_log(args.n, gap_share=args.gap_share)
    print(f"{args.n:,} logged questions, {sum(gaps.is_gap(r) for r in rows):,} gaps, "
          f"{len(set(r['question'] for r in rows)):,} distinct texts")

    clock = Clock()
    wanted = [r for r in rows if gaps.is_gap(r)]
    texts = [r["question"] for r in wanted]
    groups = gaps.cluster_questions(texts, vocabulary=kb.index.vocabulary)
    clock.lap("cluster_questions (keys + groups)")
    report = gaps.find_gaps(rows, kb, limit=20)
    clock.lap("find_gaps (all, 20 suggestions)")
    purity, recall = quality(groups, [labels[r["id"] - 1] for r in wanted])
    print(f"groups: {len(groups):,} ({sum(1 for g in groups if len(g) >= 2):,} of 2+); "
          f"top-50 purity {purity:.1%}, top-50 topic recall {recall:.1%}")
    print(f"shown: {len(report.gaps)}; biggest: {report.gaps[0].cluster.count} × "
          f"{report.gaps[0].cluster.examples[0]!r}")

    if args.sqlite:
        import sqlalchemy as sa

        from bot.tickets import SqlTicketStore, _questions  # bench only: bulk insert

        with tempfile.TemporaryDirectory() as tmp:
            store = SqlTicketStore(f"sqlite:///{tmp}/bench.sqlite3")
            with store._engine.begin() as conn:  # noqa: SLF001 - 100,000 single commits are slow
                conn.execute(sa.insert(_questions), [{k: v for k, v in r.items() if k != "id"}
                                                     for r in rows])
            clock = Clock()
            logged = store.questions(datetime(2026, 1, 1, tzinfo=UTC))
            clock.lap("store.questions (SQLite)")
            gaps.find_gaps(logged, kb, limit=20)
            clock.lap("find_gaps on them")
            clock.total("total, as faqbot kb gaps does")
            store.close()

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(gaps.find_gaps, rows, kb, limit=20)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
