"""Latency from writing the knowledge file to the first answer that uses the new entry.

The polling thread of :class:`bot.reload.KnowledgeHolder` does the work: nothing calls
``check()`` here. Each trial writes the bundled knowledge plus one new entry (atomically, at a
random moment of the polling cycle), then asks the new entry's question in a loop until the bot
answers with it.

Usage::

    .venv/bin/python bench/bench_reload.py            # intervals 0.2 s and 2 s
    .venv/bin/python bench/bench_reload.py --trials 5 --interval 0.5
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.matching import decide  # noqa: E402
from bot.reload import KnowledgeHolder  # noqa: E402

BASE = (ROOT / "knowledge" / "faq.yaml").read_text(encoding="utf-8")


def with_entry(n: int) -> str:
    return BASE.rstrip("\n") + f"""
  - id: bench-entry-{n}
    question: "How do I recalibrate the flux capacitor number {n}?"
    phrasings: [recalibrate flux capacitor {n}, flux capacitor {n} recalibration]
    answer: "Turn it off and on again ({n})."
"""


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def trial(holder: KnowledgeHolder, path: Path, n: int, interval: float) -> float:
    time.sleep(random.uniform(0, interval))  # land anywhere in the polling cycle
    question = f"how do I recalibrate the flux capacitor number {n}"
    write_atomically(path, with_entry(n))
    start = time.perf_counter()
    while True:
        decision = decide(question, holder.current)
        if decision.entry is not None and decision.entry.id == f"bench-entry-{n}":
            return time.perf_counter() - start
        time.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, action="append",
                        help="polling interval in seconds (repeat; default 0.2 and 2)")
    parser.add_argument("--trials", type=int, default=10, help="trials per interval")
    args = parser.parse_args()
    intervals = args.interval or [0.2, 2.0]
    print(f"knowledge: {ROOT / 'knowledge' / 'faq.yaml'} plus one new entry per trial")
    print(f"{'interval':>8} {'trials':>6} {'min':>7} {'median':>7} {'p90':>7} {'max':>7}"
          f"  {'expected ~ interval/2':>22}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faq.yaml"
        for interval in intervals:
            path.write_text(BASE, encoding="utf-8")
            holder = KnowledgeHolder(path, interval=interval)
            holder.start()
            try:
                times = sorted(trial(holder, path, n, interval) for n in range(args.trials))
            finally:
                holder.stop()
            p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
            print(f"{interval:>7.1f}s {len(times):>6} {times[0]:>6.3f}s "
                  f"{statistics.median(times):>6.3f}s {p90:>6.3f}s {times[-1]:>6.3f}s"
                  f"  {interval / 2:>21.2f}s")


if __name__ == "__main__":
    main()
