"""Any FAQ on day one: ``kb import``, the first load and ``decide`` on an imported FAQ.

Usage::

    .venv/bin/python bench/bench_import.py                     # a 1,000-question FAQ
    .venv/bin/python bench/bench_import.py --questions 300 --asked 500 --clock cpu

It writes a synthetic Markdown FAQ of ``--questions`` ``##`` questions with answers of 1-3
sentences (bench_matching's seeded Zipf vocabulary), then measures, in one run:

* import: ``faq_to_yaml`` of the Markdown (what ``faqbot kb import`` does);
* first load: parsing, validation and the index, with the compiled-knowledge cache off, and the
  semantic model's vectors of every entry (its phrasings and answer passage) with an empty
  vector cache;
* decide: p50 / p99 per question of ``decide`` on the imported knowledge (no ``thresholds:``:
  the calibrated blend), lexical and with the model, beside the baseline of the same file with
  ``thresholds:`` added (the tuned lexical matcher), on the same questions.

Targets (issue "Any FAQ, answered well on day one"): decide p50 ≤ 1 ms lexical; ≤ 25 ms with
the model; import + first load with the model ≤ 30 s. ``--clock cpu`` times this thread's CPU.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

import bench_matching  # noqa: E402
import yaml  # noqa: E402
from bench_matching import Corpus, percentile, time_each  # noqa: E402

from bot import semantic  # noqa: E402
from bot.importer import faq_to_yaml  # noqa: E402
from bot.knowledge import parse_knowledge  # noqa: E402
from bot.matching import decide  # noqa: E402

TARGETS = {"lexical": 1.0, "model": 25.0}  # decide p50, ms
FIRST_LOAD_TARGET_S = 30.0


def markdown_faq(corpus: Corpus, n: int) -> str:
    """A Markdown FAQ of ``n`` questions, as a team would write one."""
    lines = ["# Synthetic FAQ", ""]
    for i in range(n):
        entry = corpus.entry(i, 1)
        lines += [f"## {entry['question']}", "", entry["answer"], ""]
    return "\n".join(lines)


def seconds(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000, help="FAQ questions (default 1000)")
    parser.add_argument("--asked", type=int, default=400, help="questions decided (default 400)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args(argv)
    bench_matching.CLOCK = bench_matching.CLOCKS[args.clock]

    corpus = Corpus(args.seed)
    text = markdown_faq(corpus, args.questions)
    import_s, yaml_text = seconds(lambda: faq_to_yaml(text, filename="faq.md"))

    # the caches off and in a temporary folder: a true first load
    with bench_matching.knowledge_cache(Path(tempfile.mkdtemp(prefix="bench-import-")), on=False):
        load_s, kb = seconds(lambda: parse_knowledge(yaml_text, "faq.yaml"))
        tuned_doc = yaml.safe_load(yaml_text)
        tuned_doc["thresholds"] = {"answer": 62, "clarify": 45, "margin": 6, "candidates": 3}
        tuned = parse_knowledge(yaml.safe_dump(tuned_doc, sort_keys=False), "tuned.yaml")
        encoder_s, encoder = seconds(lambda: semantic.encoder_for("auto"))
        vectors_s, with_model = (seconds(lambda: semantic.attach(kb, encoder))
                                 if encoder is not None else (float("nan"), None))

    raw = {"entries": [{"question": e.question, "phrasings": [], "id": e.id} for e in kb.entries]}
    asked = [q for _, q, _ in corpus.questions(raw, args.asked)]
    rows = [("tuned lexical (baseline: thresholds set)", tuned, None),
            ("blend, lexical (imported, no thresholds)", kb, "lexical")]
    if with_model is not None:
        rows.append(("blend, with the model", with_model, "model"))
    print(f"# bench_import: {args.questions}-question Markdown FAQ, {len(asked)} questions, "
          f"clock {args.clock}; Python {platform.python_version()}, seed {args.seed}")
    print(f"import (faq_to_yaml): {import_s:.2f} s; first load: {load_s:.2f} s lexical, "
          f"+ model load {encoder_s:.2f} s + vectors {vectors_s:.2f} s "
          f"= {import_s + load_s + encoder_s + vectors_s:.1f} s with the model "
          f"(target ≤ {FIRST_LOAD_TARGET_S:g} s: "
          f"{'ok' if import_s + load_s + encoder_s + vectors_s <= FIRST_LOAD_TARGET_S else 'MISS'})")
    print()
    print(f"| {'decide on the imported FAQ':<42} | p50 ms | p99 ms | target p50 |")
    print(f"| {'-' * 42} | -----: | -----: | ---------- |")
    for label, knowledge, target in rows:
        for q in asked[:20]:  # warm-up
            decide(q, knowledge)
        times = time_each(lambda q, k=knowledge: decide(q, k), asked)
        p50, p99 = statistics.median(times), percentile(times, 0.99)
        goal = (f"≤ {TARGETS[target]:g} {'ok' if p50 <= TARGETS[target] else 'MISS'}"
                if target else "—")
        print(f"| {label:<42} | {p50:6.2f} | {p99:6.2f} | {goal:<10} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
