"""Benchmark ticket creation + triage post against the fake Slack Web API (127.0.0.1 only).

Each of 8 concurrent senders opens tickets the way the Slack app does
(``service.answer_delivery`` on an unanswerable question: the delivery's claim, the question
log and the ticket in one transaction; then ``Triage.post``: claim, permalink,
``chat.postMessage``, mark posted). As in ``faqbot run``, Triage knows the workspace URL from
``auth.test`` (called once at start), so the permalink is built rather than fetched with
``chat.getPermalink``, and the messages' timestamps look like Slack's (digits). Afterwards it
counts, in the store and in the fake's recorded posts, that no ticket was lost or duplicated.
Prints a table per store.

Usage::

    .venv/bin/python bench/bench_tickets.py                       # SQLite (a temp file)
    .venv/bin/python bench/bench_tickets.py --postgres postgresql://postgres@127.0.0.1:5432/test

Target (support-tickets issue): ≥ 100 tickets/s on SQLite and on PostgreSQL, zero lost, zero
duplicated.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.service import answer_delivery  # noqa: E402
from bot.slack.app import make_client  # noqa: E402
from bot.slack.triage import Triage  # noqa: E402
from bot.tickets import Origin, SqlTicketStore  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402

SENDERS = 8
SUPPORT = "CSUPPORT"


def run(url: str, total: int, kb, fake: FakeSlack) -> dict:
    store = SqlTicketStore(url)
    client = make_client(Settings(slack_bot_token="xoxb-bench", slack_api_url=fake.api_url))
    # As the app: `faqbot run` calls auth.test at start and hands its result to build_app,
    # which gives Triage the workspace URL (permalinks are built, not fetched per ticket).
    triage = Triage(client, store, SUPPORT, workspace_url=client.auth_test()["url"])
    # Slack's timestamps are digits ("1712345678.000042"); this run's are "<run_id>.<n>".
    run_id = str(1_000_000_000 + uuid.uuid4().int % 9_000_000_000)
    fake.reset()
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def sender() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            started = time.perf_counter()
            ts = f"{run_id}.{n:06d}"
            reply = answer_delivery(
                [f"event:{run_id}:{n}", f"msg:C111:{ts}"],
                f"what is the weather like on mars today, run {run_id} #{n}", kb, store,
                Origin("W222", channel="C111", thread_ts=ts, message_ts=ts),
                dedupe_key=f"msg:C111:{ts}",
            )
            assert reply is not None and reply.ticket is not None and reply.ticket_created, reply
            triage.post(reply.ticket)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started

    posts = [c for c in fake.calls("chat.postMessage") if c.params.get("channel") == SUPPORT]
    posted_ids = Counter()
    for call in posts:
        for word in str(call.params.get("text", "")).replace("*", " ").split():
            if word.startswith("FAQ-"):
                posted_ids[word.rstrip(".,:;")] += 1
                break
    mine = [t for t in store.list(limit=total * 4) if (t.thread_ts or "").startswith(run_id)]
    lost = total - len(mine)
    unposted = sum(1 for t in mine if not t.posted)
    duplicated = sum(n - 1 for n in posted_ids.values() if n > 1)
    store.close()
    latencies.sort()
    return {
        "tickets": total,
        "per_s": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "stored": len(mine),
        "posted": len(posts),
        "lost": lost,
        "unposted": unposted,
        "duplicated": duplicated,
        "distinct_posted": len(posted_ids),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL")
    args = parser.parse_args()
    kb = load_knowledge(ROOT / "knowledge" / "faq.yaml")
    fake = FakeSlack().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores = [("SQLite", f"sqlite:///{tmp}/bench.sqlite3")]
            if args.postgres:
                stores.append(("PostgreSQL", args.postgres))
            for name, url in stores:
                run(url, 50, kb, fake)  # warm up
                rows.append((name, run(url, args.tickets, kb, fake)))
    finally:
        fake.stop()
    print(f"\n{SENDERS} senders; each ticket: decide, store, claim, permalink, post, mark posted\n")
    print("| store | tickets | tickets/s | p50 ms | p99 ms | stored | posted | lost | unposted "
          "| duplicated | distinct ids posted |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for name, r in rows:
        print(f"| {name} | {r['tickets']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['stored']} | {r['posted']} | {r['lost']} | "
              f"{r['unposted']} | {r['duplicated']} | {r['distinct_posted']} |")
        ok &= r["lost"] == r["unposted"] == r["duplicated"] == 0 and r["per_s"] >= 100
        ok &= r["distinct_posted"] == r["tickets"]
    print("\ntarget: >= 100 tickets/s, zero lost, zero duplicated:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
