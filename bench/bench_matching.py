"""Speed of loading knowledge and of ``bot.matching.decide`` on synthetic knowledge files.

Usage::

    .venv/bin/python bench/bench_matching.py                      # 1,000 / 10,000 / 100,000
    .venv/bin/python bench/bench_matching.py --sizes 1000,10000 --questions 1000
    .venv/bin/python bench/bench_matching.py --json results.json  # also dump the figures

For each size (a number of phrasings, questions included) it writes a valid knowledge file of
entries with ~10 phrasings each, built from a Zipf-distributed vocabulary of real FAQ words and
a few thousand pseudo-words, then measures:

* load: ``load_knowledge(path)`` (YAML, validation and ``Index.build``), median of 3 runs, and
  ``Index.build`` alone;
* decide: per-question latency of ``decide(question, kb)``, median and p99, over a mix of
  paraphrases (a phrasing with a word swapped, or a typo in a word) and unrelated questions;
* WRatio: the same questions through ``normalize`` + a bare
  ``rapidfuzz.process.extractOne(q, phrasings, scorer=fuzz.WRatio, processor=None)`` over the
  pre-normalised phrasings — the naive full scan, as a yardstick — and the ratio ours/WRatio.

It also times loading two files of 10,000 entries: *lean* (question and a one-sentence answer)
and *typical* (question, 3 phrasings, answer, tags, a link), cold (the compiled-knowledge cache
off), on a first load that stores them in the cache, and from the cache (a private, temporary
cache folder: the user's own is never touched). Targets (see bench/README.md) are
checked and shown in the tables. Everything is seeded: the same arguments give the same files
and questions. ``--clock cpu`` times this thread's CPU time instead of the wall clock, which a
busy machine disturbs far less.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rapidfuzz
import yaml
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from bot.knowledge import load_knowledge  # noqa: E402
from bot.matching import Index, Matcher, decide  # noqa: E402
from bot.normalize import normalize  # noqa: E402

# Targets the matcher must hit: decision p50 per size (phrasings), p99 within 3x p50,
# and the 10,000-entry file loaded within half a second.
P50_TARGET_MS = {1_000: 0.5, 10_000: 3.0}
P99_OVER_P50 = 3.0
ENTRY_FILE_LOAD_TARGET_S = 0.5
CACHE_ENV = "FAQBOT_KNOWLEDGE_CACHE"  # bot/kbcache.py; off for every load but the cached ones

# The files of ``--entries`` entries whose load time is measured against the target.
ENTRY_SHAPES = {
    "lean": "question and a one-sentence answer",
    "typical": "question, 3 phrasings, 1-3 sentence answer, 2 tags, a link",
}

# Words of real developer FAQs, most common first: they take the top ranks of the Zipf list.
REAL_WORDS = """
app review api access token user account approved login kit developer status submit time
long scope scopes permission production live support error bug video content post share
request review process days weeks approval mobile web store android ios react native test
sandbox audit private public visibility cap limit increase quota redirect uri url callback
client key secret refresh expire expiry marketing ads campaign business integration webhook
upload download rate display comment like follower profile analytics data privacy policy
terms service guideline criteria requirement reject rejected declined feedback resubmit
history revision draft pending navigation panel portal dashboard console settings sdk
library version update deprecated endpoint response request header payload json field
parameter query pagination cursor timeout retry latency region country language locale
""".split()

TEMPLATES = [
    "how do i {}", "how can i {}", "can i {}", "why is my {}", "why does my {}", "what is the {}",
    "where can i find the {}", "is it possible to {}", "when will my {}", "do you support {}",
    "{}", "{} not working", "help with {}", "question about {}", "what are the {}",
]
GREETINGS = ["", "", "", "hi team, ", "hey ", "quick question: ", "hello! "]
# Everyday words no FAQ here uses: the stuff of unrelated questions.
OFF_TOPIC = """
lunch parking vacation printer birthday weather coffee pizza holiday salary laptop charger
wifi meeting calendar flight hotel train badge gym weekend movie music dinner invoice refund
""".split()


@dataclass
class SizeResult:
    phrasings: int
    entries: int
    file_mb: float
    load_s: float
    index_s: float
    questions: int
    decide_p50_ms: float
    decide_p99_ms: float
    wratio_p50_ms: float
    wratio_p99_ms: float
    actions: dict[str, int] = field(default_factory=dict)
    paraphrases_to_source: float = 0.0

    @property
    def p99_over_p50(self) -> float:
        return self.decide_p99_ms / self.decide_p50_ms if self.decide_p50_ms else math.inf

    @property
    def ratio(self) -> float:
        return self.decide_p50_ms / self.wratio_p50_ms if self.wratio_p50_ms else math.inf

    def targets(self) -> str:
        notes = []
        target = P50_TARGET_MS.get(self.phrasings)
        if target is not None:
            ok = self.decide_p50_ms <= target
            notes.append(f"p50≤{target:g}ms {'ok' if ok else 'MISS'}")
        if self.phrasings in P50_TARGET_MS:
            ok = self.p99_over_p50 <= P99_OVER_P50
            notes.append(f"p99≤{P99_OVER_P50:g}×p50 {'ok' if ok else 'MISS'}")
        return ", ".join(notes) or "—"


# --------------------------------------------------------------------------- generator


class Corpus:
    """A seeded vocabulary with Zipf-like frequencies, and the knowledge and questions made of it.

    Ranks 0..len(REAL_WORDS) are the real FAQ words (common), then the pseudo-words. Topic
    words for entries come from the middle and tail, so entries differ by their rare words the
    way real FAQ entries do. A reserve of pseudo-words never appears in the knowledge: unrelated
    questions use them as words the matcher has never seen.
    """

    def __init__(self, seed: int, pseudo_words: int = 3_000, reserve: int = 500) -> None:
        self.rng = random.Random(seed)
        words = self._pseudo_words(pseudo_words + reserve)
        self.reserve = words[pseudo_words:]
        self.words = REAL_WORDS + words[:pseudo_words]
        weights = [1.0 / (rank + 2.7) ** 1.07 for rank in range(len(self.words))]
        self.cumulative = list(_accumulate(weights))
        self.topic_pool = self.words[60:]
        self.used: set[str] = set()  # phrasings already in the file being generated

    def _pseudo_words(self, n: int) -> list[str]:
        consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
        seen = set(REAL_WORDS) | set(OFF_TOPIC)
        out: list[str] = []
        while len(out) < n:
            syllables = self.rng.choice((2, 2, 3, 3, 4))
            word = "".join(
                self.rng.choice(consonants) + self.rng.choice(vowels) for _ in range(syllables)
            )
            if self.rng.random() < 0.4:
                word += self.rng.choice(consonants)
            if word not in seen:
                seen.add(word)
                out.append(word)
        return out

    def zipf(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def phrase(self, topic: list[str]) -> str:
        """A phrasing: a template around 1-3 topic words and 1-3 words of the Zipf list."""
        words = self.rng.sample(topic, self.rng.randint(1, min(3, len(topic))))
        words += self.zipf(self.rng.randint(1, 3))
        self.rng.shuffle(words)
        return self.rng.choice(TEMPLATES).format(" ".join(words))

    def entry(self, n: int, phrasings: int) -> dict[str, Any]:
        topic = self.rng.sample(self.topic_pool, 4)
        seen: set[str] = set()
        texts: list[str] = []
        while len(texts) < phrasings:
            text = self.phrase(topic)
            key = " ".join(text.split())
            if key not in seen and key not in self.used:
                seen.add(key)
                texts.append(text)
        self.used.update(seen)
        sentences = [
            " ".join(self.zipf(self.rng.randint(6, 14)) + self.rng.sample(topic, 1)).capitalize()
            + "."
            for _ in range(self.rng.randint(1, 3))
        ]
        return {
            "id": f"e{n}-{topic[0]}",
            "question": texts[0].capitalize() + "?",
            "answer": " ".join(sentences),
            "phrasings": texts[1:],
            "tags": [f"topic-{n % 25}"],
        }

    def knowledge(self, n_phrasings: int, per_entry: int = 10) -> dict[str, Any]:
        self.used = set()
        entries = [self.entry(n, per_entry) for n in range(max(1, n_phrasings // per_entry))]
        synonyms = []
        pool = self.rng.sample(self.topic_pool, 60)
        for i in range(0, 60, 3):
            synonyms.append(pool[i : i + 2] + [f"{pool[i + 2]} {self.rng.choice(REAL_WORDS)}"])
        return {
            "version": 1,
            "title": f"Synthetic FAQ ({n_phrasings} phrasings)",
            "thresholds": {"answer": 62, "clarify": 45, "margin": 6, "candidates": 3},
            "synonyms": synonyms,
            "handoff": ["talk to a human", "open a ticket"],
            "entries": entries,
        }

    def entry_file(self, n_entries: int, shape: str) -> dict[str, Any]:
        """A file of ``n_entries`` entries of a shape (see ``ENTRY_SHAPES``)."""
        self.used = set()
        entries = []
        for n in range(n_entries):
            if shape == "lean":
                entry = self.entry(n, 1)
                entry["answer"] = entry["answer"].split(". ")[0].rstrip(".") + "."
                del entry["phrasings"], entry["tags"]
            else:
                entry = self.entry(n, 4)
                entry["links"] = [{"title": "Docs", "url": f"https://example.com/docs/{n}"}]
                entry["tags"] = [f"topic-{n % 40}", f"area-{n % 7}"]
            entries.append(entry)
        return {"version": 1, "title": f"Synthetic FAQ ({n_entries} entries)", "entries": entries}

    def questions(self, kb: dict[str, Any], n: int) -> list[tuple[str, str, str | None]]:
        """``n`` questions as (kind, text, source entry id or None), in a seeded order.

        40% a phrasing with one word swapped for a Zipf word, 30% a phrasing with a typo in
        its longest word, 30% unrelated (everyday words plus words the knowledge never uses).
        """
        entries = kb["entries"]
        out: list[tuple[str, str, str | None]] = []
        for i in range(n):
            roll = i % 10
            greeting = self.rng.choice(GREETINGS)
            if roll < 7:
                entry = self.rng.choice(entries)
                words = self.rng.choice([entry["question"], *entry["phrasings"]]).split()
                if roll < 4:
                    kind = "swap"
                    words[self.rng.randrange(len(words))] = self.zipf(1)[0]
                else:
                    kind = "typo"
                    j = max(range(len(words)), key=lambda k: len(words[k]))
                    words[j] = _typo(words[j], self.rng)
                out.append((kind, greeting + " ".join(words), entry["id"]))
            else:
                extra = self.rng.sample(OFF_TOPIC, 2) + self.rng.sample(self.reserve, 1)
                self.rng.shuffle(extra)
                text = self.rng.choice(TEMPLATES).format(" ".join(extra))
                out.append(("unrelated", greeting + text + "?", None))
        self.rng.shuffle(out)
        return out


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word + rng.choice(string.ascii_lowercase)
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:  # swap two neighbouring letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]  # drop a letter


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def write_yaml(document: dict[str, Any], path: Path) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(document, fh, Dumper=dumper, allow_unicode=True, sort_keys=False, width=10_000)


# --------------------------------------------------------------------------- measuring


# Wall-clock time by default; "cpu" counts only this thread's CPU time, which a busy machine
# (other processes competing for the cores) disturbs far less.
CLOCKS = {
    "wall": {"s": time.perf_counter, "ns": time.perf_counter_ns},
    "cpu": {"s": time.thread_time, "ns": time.thread_time_ns},
}
CLOCK = CLOCKS["wall"]


def median_time(fn: Any, repeat: int = 3, *, no_gc: bool = False) -> tuple[float, Any]:
    """Median seconds of ``fn()`` over ``repeat`` runs, and its last result.

    ``no_gc`` times with the cyclic garbage collector off, as ``parse_knowledge`` runs
    ``Index.build``.
    """
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        if no_gc:
            gc.disable()
        try:
            start = CLOCK["s"]()
            result = fn()
            times.append(CLOCK["s"]() - start)
        finally:
            gc.enable()
    return statistics.median(times), result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def time_each(fn: Any, questions: list[str], repeat: int = 1) -> list[float]:
    """Milliseconds per call of ``fn(question)``; with ``repeat`` > 1, each question's fastest.

    The fastest of several runs filters out a busy machine's noise, but later runs find the
    matcher's caches (typo corrections, stems) warm: the default measures first answers.
    """
    out = []
    clock = CLOCK["ns"]
    for q in questions:
        best = math.inf
        for _ in range(repeat):
            start = clock()
            fn(q)
            best = min(best, (clock() - start) / 1e6)
        out.append(best)
    return out


def profile(fn: Any, title: str, top: int = 15) -> str:
    """cProfile's top functions by own time while running ``fn()``, as a text block."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    body = out.getvalue().strip().split("\n")
    start = next((i for i, line in enumerate(body) if "ncalls" in line), 0)
    return f"### {title}\n\n```\n" + "\n".join(body[start:]) + "\n```"


def bench_size(
    corpus: Corpus,
    size: int,
    n_questions: int,
    folder: Path,
    profiles: list[str] | None = None,
    repeat: int = 1,
) -> SizeResult:
    document = corpus.knowledge(size)
    path = folder / f"kb-{size}.yaml"
    write_yaml(document, path)
    load_s, kb = median_time(lambda: load_knowledge(path))
    assert isinstance(kb, Matcher)
    index_s, _ = median_time(lambda: Index.build(kb.knowledge), no_gc=True)
    phrasings = sum(len(e.all_phrasings) for e in kb)

    asked = corpus.questions(document, n_questions + 20)
    warmup, asked = asked[:20], asked[20:]
    for _, q, _ in warmup:
        decide(q, kb)
    texts = [q for _, q, _ in asked]
    ours = time_each(lambda q: decide(q, kb), texts, repeat)

    choices = [normalize(p) for e in kb for p in e.all_phrasings]
    for _, q, _ in warmup:
        process.extractOne(normalize(q), choices, scorer=fuzz.WRatio, processor=None)
    theirs = time_each(
        lambda q: process.extractOne(normalize(q), choices, scorer=fuzz.WRatio, processor=None),
        texts,
        repeat,
    )

    if profiles is not None:
        profiles.append(
            profile(lambda: [decide(q, kb) for q in texts], f"decide, {phrasings:,} phrasings")
        )
    actions: Counter[str] = Counter()
    para_right = para_total = 0
    for kind, q, source in asked:
        decision = decide(q, kb)
        actions[f"{kind}:{decision.action}"] += 1
        if source is not None:
            para_total += 1
            para_right += decision.entry is not None and decision.entry.id == source
    return SizeResult(
        phrasings=phrasings,
        entries=len(kb),
        file_mb=path.stat().st_size / 1e6,
        load_s=load_s,
        index_s=index_s,
        questions=len(texts),
        decide_p50_ms=statistics.median(ours),
        decide_p99_ms=percentile(ours, 0.99),
        wratio_p50_ms=statistics.median(theirs),
        wratio_p99_ms=percentile(theirs, 0.99),
        actions=dict(sorted(actions.items())),
        paraphrases_to_source=para_right / para_total if para_total else 0.0,
    )


def bench_entry_file(
    corpus: Corpus, n_entries: int, shape: str, folder: Path, profiles: list[str] | None = None
) -> dict[str, Any]:
    """Load times of a file of ``n_entries`` entries: cold (cache off), first load with the
    compiled-knowledge cache on (parse and store), and from the cache."""
    document = corpus.entry_file(n_entries, shape)
    path = folder / f"entries-{n_entries}-{shape}.yaml"
    write_yaml(document, path)
    load_s, kb = median_time(lambda: load_knowledge(path))  # the cache is off (see main)
    index_s, _ = median_time(lambda: Index.build(kb.knowledge), no_gc=True)
    if profiles is not None:
        profiles.append(
            profile(lambda: load_knowledge(path), f"load, {n_entries:,} {shape} entries")
        )
    with knowledge_cache(folder / f"cache-{shape}"):
        first_s, _ = median_time(lambda: load_knowledge(path), repeat=1)  # miss: parse, store
        cached_s, cached = median_time(lambda: load_knowledge(path))
    assert cached.knowledge == kb.knowledge and len(cached.index.phrasing_text) == len(kb.index.phrasing_text)
    return {
        "shape": shape,
        "entries": len(kb),
        "phrasings": sum(len(e.all_phrasings) for e in kb),
        "file_mb": path.stat().st_size / 1e6,
        "load_s": load_s,
        "index_s": index_s,
        "first_s": first_s,
        "cached_s": cached_s,
        "target_s": ENTRY_FILE_LOAD_TARGET_S,
        "ok": load_s <= ENTRY_FILE_LOAD_TARGET_S,
        "cached_ok": cached_s <= ENTRY_FILE_LOAD_TARGET_S,
    }


@contextmanager
def knowledge_cache(folder: Path, *, on: bool = True) -> Iterator[None]:
    """The compiled-knowledge cache on (or, with ``on=False``, off), in ``folder`` (empty),
    never the user's own."""
    saved = {name: os.environ.get(name) for name in (CACHE_ENV, "XDG_CACHE_HOME")}
    shutil.rmtree(folder, ignore_errors=True)
    os.environ[CACHE_ENV] = "1" if on else "0"
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- report


def render(results: list[SizeResult], entry_files: list[dict[str, Any]]) -> str:
    lines = [
        "| phrasings | entries | file MB | load s | index s | decide p50 ms | decide p99 ms "
        "| p99/p50 | WRatio p50 ms | WRatio p99 ms | ours/WRatio p50 | targets |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.phrasings:,} | {r.entries:,} | {r.file_mb:.1f} | {r.load_s:.3f} "
            f"| {r.index_s:.3f} | {r.decide_p50_ms:.3f} | {r.decide_p99_ms:.3f} "
            f"| {r.p99_over_p50:.1f} | {r.wratio_p50_ms:.3f} | {r.wratio_p99_ms:.3f} "
            f"| {r.ratio:.2f} | {r.targets()} |"
        )
    if entry_files:
        lines += [
            "",
            "| entry file | entries | phrasings | file MB | cold load s | index s | cold target "
            "| first load s (parse + store) | cached load s | cached target |",
            "|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
        ]
    for f in entry_files:
        lines.append(
            f"| {f['shape']}: {ENTRY_SHAPES[f['shape']]} | {f['entries']:,} | {f['phrasings']:,} "
            f"| {f['file_mb']:.1f} | {f['load_s']:.3f} | {f['index_s']:.3f} "
            f"| ≤{f['target_s']:g}s {'ok' if f['ok'] else 'MISS'} "
            f"| {f['first_s']:.3f} | {f['cached_s']:.3f} "
            f"| ≤{f['target_s']:g}s {'ok' if f['cached_ok'] else 'MISS'} |"
        )
    lines += [
        "",
        "Decisions on the synthetic questions (a sanity check, not a quality measure):",
        "",
    ]
    for r in results:
        mix = ", ".join(f"{k} {v}" for k, v in r.actions.items())
        lines.append(
            f"- {r.phrasings:,} phrasings: paraphrases answered with their own entry "
            f"{r.paraphrases_to_source:.0%}; {mix}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="comma-separated numbers of phrasings (default: %(default)s)")
    parser.add_argument("--questions", type=int, default=500,
                        help="timed questions per size (default: %(default)s)")
    parser.add_argument("--entries", type=int, default=10_000,
                        help="entries in the separate load-time file; 0 skips it "
                        "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", metavar="PATH",
                        help="also write the results as JSON to PATH ('-' for standard output)")
    parser.add_argument("--keep", metavar="DIR", help="write the generated files to DIR and keep them")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each question this many times and keep the fastest "
                        "(filters a busy machine's noise; caches are then warm)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this thread's CPU time (steadier on a busy machine; "
                        "default: %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's hot spots of decide and of the load")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    CLOCK.update(CLOCKS[args.clock])
    os.environ[CACHE_ENV] = "0"  # every load is a cold parse, except the cached column's

    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        profiles: list[str] | None = [] if args.profile else None
        for size in sizes:
            print(f"… {size:,} phrasings", file=sys.stderr, flush=True)
            corpus = Corpus(args.seed + size)
            results.append(
                bench_size(corpus, size, args.questions, folder, profiles, args.repeat)
            )
        entry_files = []
        for shape in ENTRY_SHAPES if args.entries else ():
            print(f"… {args.entries:,}-entry file ({shape})", file=sys.stderr, flush=True)
            entry_files.append(
                bench_entry_file(Corpus(args.seed), args.entries, shape, folder, profiles)
            )

    print(
        f"Python {platform.python_version()}, rapidfuzz {rapidfuzz.__version__}, "
        f"PyYAML {yaml.__version__} (libyaml: {hasattr(yaml, 'CSafeLoader')}), "
        f"{platform.machine()}, seed {args.seed}, {args.clock} clock, "
        f"{args.questions} questions × {args.repeat}\n"
    )
    print(render(results, entry_files))
    for block in profiles or ():
        print("\n" + block)
    if args.json:
        payload = {
            "sizes": [asdict(r) | {"p99_over_p50": r.p99_over_p50, "ratio": r.ratio}
                      for r in results],
            "entry_files": entry_files,
            "questions": args.questions,
            "repeat": args.repeat,
            "clock": args.clock,
            "seed": args.seed,
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
