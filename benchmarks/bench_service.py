"""Scoring-service benchmark: latency (p50 / p95 / p99) and throughput on loopback, under a
bounded load (a fixed number of requests from a few concurrent keep-alive clients).

    python benchmarks/bench_service.py [--events 60000] [--data-dir DIR]
        [--lookups 2000] [--scorings 600] [--concurrency 4] [--cpu-profile N]

Without --data-dir it builds a fresh sample in a temporary folder (generate, load, gate, dbt
build, train and score next_action, segmentation and churn, publish). The service runs as
`uba serve` in its own process, as in production; the clients are threads of this one.
Targets (issue 17, 2-core machine): p99 < 50 ms for a stored-score lookup, < 100 ms for
scoring posted events. The machine is shared: the load average is printed with the figures,
and so are the service's resident memory and what it loaded from the publication (GET /health).
Latency on a shared machine measures the neighbours too; --cpu-profile N also scores N requests
in this process, one at a time, and prints the CPU time (thread time) each took, whole and its
sequence-feature part: the figure that decides how many concurrent scorers 2 cores can serve.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

TARGET_P99_MS = {"lookup": 50.0, "score": 100.0}
MODELS = ("next_action", "segmentation", "churn")


def build_sample(work: Path, events: int) -> None:
    from expectations.gate import run_gate
    from python_models.dbt_runner import run_dbt
    from python_models.ingest import load_path
    from python_models.lifecycle import score_model, train_model
    from python_models.publish import publish_warehouse
    from python_models.synthetic import generate
    from python_models.warehouse import connect

    print(f"building a {events:,}-event sample in {work} ...", flush=True)
    sample = generate(out_dir=work / "sample", n_events=events, seed=7)
    settings_path = Path(os.environ["UBA_DUCKDB_PATH"])
    con = connect(settings_path)
    load_path(con, sample.events_dir)
    run_gate(con)
    con.close()
    run_dbt(["build"], quiet=True)
    con = connect(settings_path)
    for name in MODELS:
        train_model(con, name)
        score_model(con, name)
    publish_warehouse(con, work / "data" / "published")
    con.close()


def sample_users(published: Path, n: int, seed: int) -> list[tuple[str, object]]:
    import duckdb

    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute(
            "select user_id, max(event_ts) from marts.fct_events group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    return random.Random(seed).choices(rows, k=n)


def wait_for(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"uba serve exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the service did not become healthy in time")


def memory(pid: int) -> str:
    """The service process's resident memory now and at its peak (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "unknown"
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    mb = {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM") if k in fields}
    return f"RSS {mb.get('VmRSS', 0):.0f} MB (peak {mb.get('VmHWM', 0):.0f} MB)"


def loaded(port: int) -> dict:
    """What the service loaded from the publication at pickup (GET /health)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read()).get("loaded", {})


def run_load(port: int, requests: list[tuple[str, str, bytes | None]], concurrency: int):
    """Send `requests` from `concurrency` keep-alive clients; (latencies ms, errors, seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    chunks = [requests[i::concurrency] for i in range(concurrency)]

    def client(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], []
        for method, path, body in chunk:
            headers = {"Content-Type": "application/json"} if body else {}
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                bad.append(f"{response.status} {payload[:120]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return np.array(latencies), errors, time.perf_counter() - started


def lookup_requests(users, n: int):
    return [("GET", f"/users/{user_id}", None) for user_id, _ in users[:n]]


def score_requests(users, n: int, seed: int):
    rng = random.Random(seed)
    names = ["page_view", "click", "search", "add_to_cart", "feature_use"]
    out = []
    for user_id, last_ts in users[:n]:
        start = last_ts + timedelta(minutes=rng.randint(1, 600))
        events = [
            {
                "event_name": rng.choice(names),
                "event_ts": (start + timedelta(seconds=30 * i)).isoformat() + "Z",
            }
            for i in range(rng.randint(1, 5))
        ]
        out.append(("POST", "/score", json.dumps({"user_id": user_id, "events": events}).encode()))
    return out


def cpu_profile(requests: list[tuple[str, str, bytes | None]]) -> None:
    """CPU ms per scoring in this process (the service's code without HTTP), and the share
    of it spent on the sequence features."""
    from python_models.service.app import ScoreRequest, build_service

    service = build_service()
    compute = service.features.rows
    spent: list[float] = []

    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return compute(*args, **kwargs)
        finally:
            spent.append((time.thread_time() - started) * 1000)

    service.features.rows = timed  # type: ignore[method-assign]
    parsed = [ScoreRequest.model_validate_json(body) for _, _, body in requests if body]
    for request in parsed[:20]:  # warm up: the champion, caches
        service.score(request)
    spent.clear()
    whole = []
    for request in parsed:
        started = time.thread_time()
        service.score(request)
        whole.append((time.thread_time() - started) * 1000)
    whole_ms, features_ms = np.array(whole), np.array(spent)
    print(
        f"  CPU per scoring, in process ({len(whole)} requests, one at a time): "
        f"mean {whole_ms.mean():.2f} ms, p50 {np.percentile(whole_ms, 50):.2f}, "
        f"p99 {np.percentile(whole_ms, 99):.2f}; sequence features mean {features_ms.mean():.2f} "
        f"ms, p99 {np.percentile(features_ms, 99):.2f}"
    )


def report(kind: str, latencies: np.ndarray, errors: list[str], seconds: float) -> bool:
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    target = TARGET_P99_MS[kind]
    verdict = "meets" if p99 < target else "MISSES"
    print(
        f"  {kind:<7} {len(latencies):>6} requests  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
        f"p99 {p99:7.1f} ms  max {latencies.max():7.1f} ms  {len(latencies) / seconds:7.1f} req/s"
        f"  errors {len(errors)}   ({verdict} p99 < {target:.0f} ms)"
    )
    for error in errors[:3]:
        print(f"    error: {error}")
    return p99 < target and not errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="sample size when building")
    parser.add_argument("--data-dir", type=Path, help="use this data dir's publication")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--scorings", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--cpu-profile", type=int, default=0, metavar="N", help="also profile N scorings in process"
    )
    args = parser.parse_args()

    work = None
    if args.data_dir is None:
        work = Path(tempfile.mkdtemp(prefix="uba-bench-service-"))
        os.environ["UBA_DATA_DIR"] = str(work / "data")
        os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    else:
        os.environ["UBA_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    from python_models.config import reload_settings

    settings = reload_settings()
    if work is not None:
        build_sample(work, args.events)
    published = settings.published_dir / "warehouse.duckdb"
    if not published.exists():
        raise SystemExit(f"no publication at {published}")

    uba = Path(sys.executable).parent / "uba"
    process = subprocess.Popen(
        [str(uba), "serve", "--port", str(args.port), "--no-access-log"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = time.perf_counter()
        wait_for(args.port, process)
        print(f"service up in {time.perf_counter() - started:.1f} s (publication loaded)")
        users = sample_users(published, max(args.lookups, args.scorings) + 50, args.seed)
        # Warm up: first requests load the champion and open per-thread cursors.
        run_load(port=args.port, requests=lookup_requests(users[-50:], 50), concurrency=2)
        run_load(args.port, score_requests(users[-50:], 50, args.seed), 2)
        print(
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
            f"{args.concurrency} concurrent keep-alive clients"
        )
        ok = True
        for kind, requests in (
            ("lookup", lookup_requests(users, args.lookups)),
            ("score", score_requests(users, args.scorings, args.seed + 1)),
        ):
            ok &= report(kind, *run_load(args.port, requests, args.concurrency))
        print(f"load average after {os.getloadavg()[0]:.1f}")
        print(f"service memory: {memory(process.pid)}; publication loaded: {loaded(args.port)}")
        if args.cpu_profile:
            cpu_profile(score_requests(users, args.cpu_profile, args.seed + 2))
    finally:
        process.terminate()
        process.wait(timeout=20)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
