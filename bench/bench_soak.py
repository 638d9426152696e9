"""Soak `faqbot run` (HTTP, gunicorn) on 127.0.0.1: exactly once under load, retries and two apps.

5,000 signed requests (mentions, DMs, /faq commands and button clicks; a third open tickets)
from 16 concurrent senders go to the production server (`python -m bot run`) against the fake
Web API (its own process). Then every event must have been answered exactly once, every ticket
stored once and posted to triage once. Scenarios, each on SQLite and on PostgreSQL:

- plain load;
- 10% of the events redelivered as Slack retries (``X-Slack-Retry-Num``), half of them at once
  (while the first delivery is still being processed), half a little later;
- two app processes on one PostgreSQL, requests (and retries) split between them.

Prints events/s, HTTP p50/p99, and the servers' RSS after 1,000 and 3,000 events and after all
of them (the 3k figure tells a warm-up that flattens from a leak that keeps growing).
Bounded: ``--events`` requests per scenario, ``--timeout`` seconds to wait for the answers;
``--only TEXT`` runs the scenarios whose name contains TEXT.

    .venv/bin/python bench/bench_soak.py                      # SQLite only (~2 minutes)
    .venv/bin/python bench/bench_soak.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_soak.py --events 1000 --quick
    .venv/bin/python bench/bench_soak.py --database-url postgresql://… --only "2 apps"

Targets: exactly once everywhere; HTTP p99 <= 200 ms; RSS at the end within 10% of RSS at 1k.
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_slack import Fake  # noqa: E402
from bot.slack.formatting import ACTION_SOLVED, Ref  # noqa: E402
from tests import slack_helpers as h  # noqa: E402

SENDERS = 16
SUPPORT = "CSUPPORT"


@dataclass
class Request:
    n: int
    kind: str  # mention | dm | slash | click
    ticket: bool
    raw: bytes
    headers: dict[str, str]
    key: str  # the channel (events), the user (clicks) or the trigger (slash) that identifies it
    retry: bool = False


@dataclass
class Outcome:
    scenario: str
    events: int = 0
    retries: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    rss_1k: float = 0.0
    rss_3k: float = 0.0  # after 3,000 requests (0 when there are fewer)
    rss_end: float = 0.0
    #: (requests sent, sample) at 1k, 2k, 5k, 10k, 15k, … and at the end; see :func:`memory`
    samples: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    told: int = 0  # /faq tickets whose id reached the asker by chat.postEphemeral

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")


def build_requests(count: int, seed: int = 7, first: int = 0) -> list[Request]:
    """``count`` distinct requests: kinds in turn; a third of all requests open tickets."""
    rng = random.Random(seed)
    requests = []
    for n in range(first, first + count):
        kind = ("mention", "dm", "slash", "click")[n % 4]
        ticket = kind != "click" and (n // 4) % 9 < 4  # 4/9 of the 3/4 that ask: a third
        question = f"{h.UNANSWERABLE} number {n}" if ticket else rng.choice(
            [h.ANSWERABLE, "review eta", "why was my app declined"])
        if kind == "mention":
            body = h.mention(question, channel=f"C{n:07d}", user=f"W{n:07d}")
            raw, headers = h.event_request(body)
            key = body["event"]["channel"]
        elif kind == "dm":
            body = h.direct_message(question, user=f"W{n:07d}")
            body["event"]["channel"] = f"D{n:07d}"
            raw, headers = h.event_request(body)
            key = body["event"]["channel"]
        elif kind == "slash":
            fields = h.slash(question, user=f"W{n:07d}", channel=f"C{n:07d}")
            raw, headers = h.command_request(fields)
            key = fields["trigger_id"]
        else:
            button = {"action_id": ACTION_SOLVED, "type": "button",
                      "text": {"type": "plain_text", "text": "Solved"},
                      "value": Ref(entry="review-time", question=h.ANSWERABLE,
                                   channel=f"C{n:07d}").encode()}
            raw, headers = h.action_request(h.click(button, user=f"W{n:07d}",
                                                    channel=f"C{n:07d}", ephemeral=True))
            key = f"W{n:07d}"
        requests.append(Request(n, kind, ticket, raw, headers, key))
    return requests


def with_retries(requests: list[Request], share: float, seed: int = 11) -> list[Request]:
    """Add Slack retries of ``share`` of the events: half right behind the original (processed
    concurrently by another sender), half some hundred requests later."""
    rng = random.Random(seed)
    out = list(requests)
    events = [r for r in requests if r.kind in ("mention", "dm")]
    chosen = rng.sample(events, int(len(requests) * share))
    for i, original in enumerate(chosen):
        retry = Request(original.n, original.kind, original.ticket, original.raw,
                        {**original.headers, "X-Slack-Retry-Num": "1",
                         "X-Slack-Retry-Reason": "http_timeout"}, original.key, retry=True)
        at = out.index(original) + (1 if i % 2 == 0 else rng.randint(50, 300))
        out.insert(min(at, len(out)), retry)
    return out


def send(port: int, request: Request) -> tuple[int, float, bytes]:
    headers = {**request.headers, **h.sign(request.raw)}
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/slack/events", body=request.raw, headers=headers)
        response = conn.getresponse()
        status, body = response.status, response.read()
    except OSError:
        status, body = 0, b""
    finally:
        conn.close()
    return status, time.perf_counter() - start, body


def memory(pids: list[int], db: Path | None = None) -> dict[str, float]:
    """The servers' process groups, summed: resident memory in MB (``rss`` = ``anon`` +
    ``file`` + ``shmem``, from /proc/PID/status), ``threads``, ``procs``, and ``db_fds``
    (descriptors open on ``db`` itself: one per SQLite connection); plus the sizes in MB of
    ``db`` and of its ``-wal`` file."""
    out = dict.fromkeys(("rss", "anon", "file", "shmem", "threads", "procs", "db_fds"), 0.0)
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem",
              "Threads:": "threads"}
    groups = set(pids)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            pgid = int(stat.rsplit(")", 1)[1].split()[2])
            if pgid not in groups:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                key = line.split(None, 1)[0] if line else ""
                if key in fields:
                    value = int(line.split()[1])
                    out[fields[key]] += value if key == "Threads:" else value / 1024
            out["procs"] += 1
            if db is not None:
                for fd in os.scandir(f"/proc/{entry}/fd"):
                    try:
                        out["db_fds"] += os.readlink(fd.path) == str(db)
                    except OSError:
                        pass
        except (OSError, ValueError, IndexError):
            continue
    if db is not None:
        for name, path in (("db_mb", db), ("wal_mb", Path(f"{db}-wal"))):
            out[name] = path.stat().st_size / 2**20 if path.exists() else 0.0
    return out


def sample_marks(events: int) -> list[int]:
    """Request counts at which memory is sampled: 1k, 2k, 3k, 5k, then every 5k."""
    return [n for n in (1000, 2000, 3000, *range(5000, events + 1, 5000)) if n < events]


def start_server(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = h.free_port()
    log = open(tmp / f"server-{port}.log", "wb")  # noqa: SIM115 - lives with the server
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env={**env, "PORT": str(port)},
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((tmp / f"server-{port}.log").read_text(errors="replace"))
        try:
            if h.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def run_scenario(name: str, fake: Fake, tmp: Path, database_url: str, *, events: int,
                 retries: float = 0.0, servers: int = 1, timeout: float = 180.0,
                 semantic: str = "auto") -> Outcome:
    outcome = Outcome(name)
    fake.control("reset", latency=0.0)
    env = h.server_env(fake.api_url, tmp, DATABASE_URL=database_url, FAQBOT_SEMANTIC=semantic)
    procs = [start_server(env, tmp) for _ in range(servers)]
    ports = [port for _, port in procs]
    pids = [proc.pid for proc, _ in procs]
    try:
        warm = build_requests(40, seed=99, first=9_000_000)
        for i, request in enumerate(warm):  # imports, first queries, every worker
            send(ports[i % servers], request)
        time.sleep(1.5)
        fake.control("reset")
        baseline_tickets = _ticket_count(database_url)
        requests = with_retries(build_requests(events), retries) if retries else \
            build_requests(events)
        outcome.events = events
        outcome.retries = sum(r.retry for r in requests)
        work: queue.Queue[tuple[int, Request] | None] = queue.Queue()
        for i, request in enumerate(requests):
            work.put((i, request))
        lock = threading.Lock()
        acks: dict[str, list[bytes]] = {}
        sent = [0]
        one_k = threading.Event()
        rss_at = {1000: 0.0, 3000: 0.0}
        marks = set(sample_marks(events + outcome.retries))
        db = Path(sa.make_url(database_url).database or "") if \
            database_url.startswith("sqlite") else None

        def sender() -> None:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                i, request = item
                # split between servers by request; a retry goes to the other one
                port = ports[(request.n + (1 if request.retry else 0)) % servers]
                status, seconds, body = send(port, request)
                with lock:
                    outcome.statuses[status] += 1
                    outcome.latencies.append(seconds)
                    outcome.by_kind.setdefault(request.kind, []).append(seconds)
                    if request.kind == "slash":
                        acks.setdefault(request.key, []).append(body)
                    sent[0] += 1
                    mark = sent[0] if sent[0] in marks or sent[0] in rss_at else 0
                if mark:  # measured by the sender that got there, outside the lock
                    sample = memory(pids, db)
                    outcome.samples.append((mark, sample))
                    if mark in rss_at:
                        rss_at[mark] = sample["rss"]
                    if mark == 1000:
                        one_k.set()

        threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
        for t in threads:
            t.start()
        one_k.wait(timeout)
        for t in threads:
            t.join()
        outcome.rss_1k, outcome.rss_3k = rss_at[1000], rss_at[3000]
        expected_tickets = sum(r.ticket for r in requests if not r.retry)
        deadline = time.monotonic() + timeout
        while True:
            calls = fake.calls()
            posts = [c for c in calls if c["method"] == "chat.postMessage"]
            answered = Counter(c["params"].get("channel") for c in posts)
            triage = [c for c in posts if c["params"].get("channel") == SUPPORT]
            ephemeral = Counter(c["params"].get("user") for c in calls
                                if c["method"] == "chat.postEphemeral")
            want = [r for r in requests if not r.retry]
            done = (all(answered[r.key] >= 1 for r in want if r.kind in ("mention", "dm"))
                    and all(ephemeral[r.key] >= 1 for r in want if r.kind == "click")
                    and all(ephemeral[_user(r)] >= 1 for r in want
                            if r.kind == "slash" and r.ticket)
                    and len(triage) >= expected_tickets)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        outcome.seconds = max((c["at"] for c in calls), default=0) - (
            min((c["at"] for c in calls), default=0))
        time.sleep(2.0)  # anything late (a duplicate) lands now
        calls = fake.calls()
        posts = [c for c in calls if c["method"] == "chat.postMessage"]
        answered = Counter(c["params"].get("channel") for c in posts)
        triage = [c for c in posts if c["params"].get("channel") == SUPPORT]
        ephemeral = Counter(c["params"].get("user") for c in calls
                            if c["method"] == "chat.postEphemeral")
        told = {c["params"].get("user"): c["params"].get("text") or "" for c in calls
                if c["method"] == "chat.postEphemeral"}
        end = memory(pids, db)
        outcome.rss_end = end["rss"]
        outcome.samples.append((sent[0], end))
        p = outcome.problems
        for r in want:
            if r.kind in ("mention", "dm") and answered[r.key] != 1:
                p.append(f"{r.kind} {r.n}: {answered[r.key]} replies")
            elif r.kind == "click" and ephemeral[r.key] != 1:
                p.append(f"click {r.n}: {ephemeral[r.key]} replies")
            elif r.kind == "slash":
                bodies = acks.get(r.key) or []
                if len(bodies) != 1 or b'"text"' not in bodies[0]:
                    p.append(f"slash {r.n}: {bodies[:1]!r:.80}")
                elif r.ticket:  # acked at once; the id follows, ephemeral, exactly once
                    if ephemeral[_user(r)] != 1 or "FAQ-" not in told.get(_user(r), ""):
                        p.append(f"slash {r.n}: {ephemeral[_user(r)]} ephemeral outcomes")
                    else:
                        outcome.told += 1
                elif ephemeral[_user(r)]:
                    p.append(f"slash {r.n}: an answer in the ack and an ephemeral message")
        ids = Counter(c["params"]["text"].split(" ", 1)[0] for c in triage)
        if len(triage) != expected_tickets or any(v != 1 for v in ids.values()):
            p.append(f"triage posts {len(triage)} (distinct {len(ids)}), want {expected_tickets}")
        stored = _ticket_count(database_url) - baseline_tickets
        if stored != expected_tickets:
            p.append(f"tickets stored {stored}, want {expected_tickets}")
        unposted = _unposted(database_url)
        if unposted:
            p.append(f"{unposted} tickets not marked posted")
        bad = sum(v for k, v in outcome.statuses.items() if k != 200)
        if bad:
            p.append(f"{bad} non-200 responses: {dict(outcome.statuses)}")
        return outcome
    finally:
        for proc, _ in procs:
            stop_server(proc)


def _user(request: Request) -> str:
    """The asker of a request built by :func:`build_requests`."""
    return f"W{request.n:07d}"


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed)


def _ticket_count(url: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar() or 0)
    finally:
        engine.dispose()


def _unposted(url: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM tickets WHERE triage_ts IS NULL")).scalar() or 0)
    finally:
        engine.dispose()


def pg_schema_url(base: str, name: str) -> tuple[str, Any]:
    """A fresh schema in ``base`` for one scenario; (its URL, a function dropping it)."""
    url = sa.make_url(base)
    schema = f"soak_{name}_{os.getpid()}"
    engine = _engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()

    scoped = url.set(query={**url.query, "options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="requests per scenario")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for the answers of one scenario")
    parser.add_argument("--database-url", help="PostgreSQL for the PostgreSQL scenarios")
    parser.add_argument("--quick", action="store_true", help="SQLite plain load only")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the scenarios whose name contains TEXT (e.g. '2 apps')")
    parser.add_argument("--semantic", choices=("auto", "off"), default="auto",
                        help="FAQBOT_SEMANTIC for the servers: the model when installed "
                             "(default, as `faqbot run`), or the lexical matcher alone")
    args = parser.parse_args()
    if args.database_url and sa.make_url(args.database_url).host not in ("127.0.0.1",
                                                                         "localhost"):
        parser.error("the database must be on 127.0.0.1")
    scenarios: list[tuple[str, str, dict[str, Any]]] = [("SQLite", "sqlite", {})]
    if not args.quick:
        scenarios.append(("SQLite, 10% retries", "sqlite", {"retries": 0.10}))
    if args.database_url and not args.quick:
        scenarios += [
            ("PostgreSQL", "pg", {}),
            ("PostgreSQL, 10% retries", "pg", {"retries": 0.10}),
            ("PostgreSQL, 2 apps, 10% retries", "pg", {"retries": 0.10, "servers": 2}),
        ]
    if args.only:
        scenarios = [s for s in scenarios if args.only.lower() in s[0].lower()]
        if not scenarios:
            parser.error(f"no scenario matches --only {args.only!r}")
    fake = Fake()
    outcomes = []
    try:
        for i, (name, db, options) in enumerate(scenarios):
            print(f"running {name} ({args.events} requests) …", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp_name:
                tmp = Path(tmp_name)
                drop = None
                if db == "pg":
                    url, drop = pg_schema_url(args.database_url, str(i))
                else:
                    url = f"sqlite:///{tmp / 'tickets.sqlite3'}"
                try:
                    outcomes.append(run_scenario(name, fake, tmp, url, events=args.events,
                                                 timeout=args.timeout, semantic=args.semantic,
                                                 **options))
                finally:
                    if drop:
                        drop()
    finally:
        fake.stop()

    print(f"\n{SENDERS} senders; requests: mentions, DMs, /faq, clicks in turn, a third open "
          f"tickets; FAQBOT_SEMANTIC={args.semantic}; {os.cpu_count()} CPUs\n")
    print("| scenario | requests | retries | events/s | p50 ms | p99 ms | max ms | "
          "RSS 1k MB | RSS 3k MB | RSS end MB | exactly once |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        total = o.events + o.retries
        rate = o.events / o.seconds if o.seconds else float("nan")
        print(f"| {o.scenario} | {total} | {o.retries} | {rate:.0f} | {o.pct(0.5):.1f} | "
              f"{o.pct(0.99):.1f} | {max(o.latencies) * 1000:.0f} | {o.rss_1k:.0f} | "
              f"{o.rss_3k:.0f} | {o.rss_end:.0f} | {'yes' if not o.problems else 'NO'} |")
    failed = False
    for o in outcomes:
        growth = (o.rss_end - o.rss_1k) / o.rss_1k if o.rss_1k else 0.0
        verdict = []
        if o.problems:
            verdict.append(f"{len(o.problems)} problems: " + "; ".join(o.problems[:5]))
        if o.pct(0.99) > 200:
            verdict.append(f"p99 {o.pct(0.99):.0f} ms > 200 ms")
        if growth > 0.10:
            verdict.append(f"RSS grew {growth:.0%} after 1k")
        failed |= bool(verdict)
        print(f"{o.scenario}: " + ("; ".join(verdict) if verdict else
                                   f"OK (RSS {growth:+.1%} from 1k to the end)"))
        kinds = ", ".join(f"{kind} {sorted(v)[int(0.99 * (len(v) - 1))] * 1000:.0f}"
                          for kind, v in sorted(o.by_kind.items()))
        print(f"    p99 ms by kind: {kinds}; /faq ticket ids told by ephemeral: {o.told}")
        if o.rss_1k and o.rss_3k:  # a plateau (warm-up) or a slope (a leak)?
            print(f"    RSS MB: 1k {o.rss_1k:.0f}, 3k {o.rss_3k:.0f} "
                  f"({(o.rss_3k - o.rss_1k) / o.rss_1k:+.1%}), end {o.rss_end:.0f} "
                  f"({(o.rss_end - o.rss_3k) / o.rss_3k:+.1%} from 3k)")
        for n, m in sorted(o.samples, key=lambda item: item[0]):
            db = (f", db {m['db_fds']:.0f} fds, {m['db_mb']:.1f} MB + wal {m['wal_mb']:.1f} MB"
                  if "db_mb" in m else "")
            print(f"    at {n:>6}: RSS {m['rss']:.0f} MB = anon {m['anon']:.0f} + file "
                  f"{m['file']:.0f} + shmem {m['shmem']:.1f}; {m['procs']:.0f} processes, "
                  f"{m['threads']:.0f} threads{db}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
