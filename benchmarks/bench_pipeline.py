"""End-to-end benchmark: the project's first build against the hand-written reference on the
same files, stage by stage, then a daily increment and a run with no new data.

    python benchmarks/bench_pipeline.py --events 1000000 [--sample DIR] [--keep DIR]
        [--models churn,ltv,...] [--reference ../shared/bench/ref_pipeline.py]

1. The sample (generated, or --sample: a `uba generate` output folder) is split by arrival:
   the rows received on its last day and on the day before become two daily files, the rest
   the history.
2. First build of the history, in this process, each stage timed: load, gate, dbt build
   (models and data tests; dbt's unit tests run in CI, not here), train and score (each
   model), publish. Peak RSS is this process's or its children's (dbt). As the first
   `uba refresh` of a warehouse does, dbt imports and parses the project beside the load and
   the gate (a WarmDbt started first), so the dbt row holds only what the parse did not hide.
3. The reference (../shared/bench/ref_pipeline.py --weekly, a child process) on the same
   history files; its stages are matched to the project's: dbt build = its stage + stitch +
   sessionize + features + labels; train / score = churn (the only model it has).
   The full dbt build does more than the reference (funnels, paths, reports, every mart and
   their data tests), so a second row times the same work: `dbt build` of churn's inputs and
   what they are built from (its ModelSpec.inputs with `+`), with their data tests run from
   their compiled SQL as the full build's are, on a copy of the gated warehouse
   (`--no-lineage` skips it). Its dbt gets the same head start: started, then given the
   load's and gate's wall seconds before its command (the full build's dbt is paused while
   the lineage runs, so neither parses for free).
4. `uba refresh DAYFILE` as its own process (imports included) on the day before the last
   (the first refresh after a build: it also saves the data tests' compiled SQL), then on the
   last day (what a day costs from then on), then again with nothing new. Each prints its
   dbt build's slowest nodes (dbt's run_results.json).

`--same-work` builds only what the reference does (load, gate, churn's lineage with its data
tests, train and score churn: no other model, no publish, no daily runs; the split files go
once loaded), for sizes where the whole build's tables and two published copies do not fit the
disk (100M events: ~170 GB);
`--ref-memory-limit 6GB` runs the reference within a DuckDB memory limit (it spills beyond;
unlimited, it peaked at 13.4 GB of RSS at 10M). `--no-reference` leaves it out, for sizes it
cannot run at on the machine (100M events within 4 GB: its temporary tables spilled over 50 GB
during its load and gate); a reference that fails is reported in one line and the project runs
without it. Set UBA_DUCKDB_MEMORY_LIMIT for the project.

Figures only: no pass/fail. Compare ratios, not seconds (the machine is shared); run it when
`uptime` shows a quiet machine. Results go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "bench" / "ref_pipeline.py"
REFERENCE_MODEL = "churn"  # the one model the reference trains and scores
# The project's stage -> the reference's stages doing the same work.
MATCHED = {
    "load": ("load",),
    "gate": ("gate",),
    "dbt build": ("stage", "stitch", "sessionize", "features", "labels"),
    f"train {REFERENCE_MODEL}": ("train",),
    f"score {REFERENCE_MODEL}": ("score",),
}
LINEAGE = f"dbt build, {REFERENCE_MODEL}'s lineage"  # the same work as the reference's dbt stages
HEAD_START = "UBA_BENCH_DBT_HEAD_START"  # seconds the lineage's dbt parses before its command


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _rss_now_mb() -> float:
    """This process's resident memory now (the peak above is the largest so far)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class OtherCpu:
    """CPU seconds the rest of the machine used since this was made: /proc/stat's busy time
    less this process tree's own (itself and its waited-for children), and what the host's
    hypervisor stole. A bench beside other work measures that work too: a test run beside a
    10M bench slowed its gate by a quarter and its lineage by 40% (docs/performance-log.md,
    "dbt's nodes by their longest chain")."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):  # not Linux: nothing to say
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = sum(ticks[i] for i in (0, 1, 2, 5, 6)) / hz  # user nice system irq softirq
        stolen = ticks[7] / hz if len(ticks) > 7 else 0.0
        own = sum(
            usage.ru_utime + usage.ru_stime
            for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        )
        return busy, stolen, own

    def seconds(self) -> tuple[float, float, float] | None:
        """(CPU-s of other processes, of this process tree, stolen by the host) so far."""
        now = self._read()
        if now is None or self._start is None:
            return None
        busy, stolen, own = (a - b for a, b in zip(now, self._start, strict=True))
        return max(0.0, busy - own), own, max(0.0, stolen)

    def line(self) -> str:
        figures = self.seconds()
        if figures is None:
            return "other processes' CPU: not measured (no /proc/stat)"
        others, own, stolen = figures
        return (
            f"other processes used {others:.0f} CPU-s meanwhile (the bench {own:.0f}), "
            f"the host stole {stolen:.0f}"
        )


class ChildFailed(SystemExit):
    """A child process that exited non-zero (ends the bench unless caught)."""

    def __init__(self, cmd: list[str], returncode: int, output: str):
        super().__init__(f"{' '.join(cmd)} exited {returncode}:\n{output[-2000:]}")
        self.returncode, self.output = returncode, output


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, the child's own peak RSS in MB, its stdout) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise ChildFailed(cmd, proc.returncode, out)
    return seconds, usage.ru_maxrss / 1024, out


def split_last_day(events_dir: Path, manifest: dict, out: Path) -> dict:
    """The rows received (in UTC) on the sample's last day become the daily file and those of
    the day before a first daily file, like daily exports; the rest (received earlier, or
    unreadable) is the history. The first refresh after a first build also saves the data
    tests' compiled SQL (python_models/dbt_daily_tests.py), so the last day is the one that
    shows what a day costs from then on."""
    import duckdb

    last_day = date.fromisoformat(manifest["end_date_exclusive"]) - timedelta(days=1)
    days = {"day_before": last_day - timedelta(days=1), "day": last_day}
    folders = {name: out / name for name in ("history", *days)}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    received = "cast(try_cast(trim(received_at) as timestamptz) as timestamp)"

    def arrived(start: date, end: date | None = None) -> str:
        until = f" and {received} < timestamp '{end}'" if end else ""
        return f"coalesce({received} >= timestamp '{start}'{until}, false)"

    parts = {
        "history": f"not {arrived(days['day_before'])}",
        "day_before": arrived(days["day_before"], last_day),
        "day": arrived(last_day),
    }
    source = f"read_parquet('{events_dir}/*.parquet')"
    counts = {}
    for name, where in parts.items():
        file = f"day-{days[name]}.parquet" if name in days else "part-00000.parquet"
        target = folders[name] / file
        con.execute(f"copy (select * from {source} where {where}) to '{target}' (format parquet)")
        counts[name] = con.execute(f"select count(*) from {source} where {where}").fetchone()[0]
    return {
        **{name: str(folder) for name, folder in folders.items()},
        "rows": sum(counts.values()),
        "day_rows": counts["day"],
        "day_before_rows": counts["day_before"],
    }


def lineage_nodes(scored: bool = False) -> list[str]:
    """dbt selectors of what REFERENCE_MODEL reads: its inputs and every model they are built
    from (their data tests: those whose every parent is among them).
    `scored`: also what its scoring joins, the holdout groups each score row carries (the
    same-work row times the build alone; --same-work scores on what it built)."""
    from python_models.impact.holdout import HOLDOUT_TABLE
    from python_models.models import get_spec

    tables = [*get_spec(REFERENCE_MODEL).inputs, *([HOLDOUT_TABLE] if scored else [])]
    return [f"+{table.split('.')[-1]}" for table in tables]


def lineage_build() -> dict:
    """Time `dbt build` of churn's lineage alone, its data tests from their compiled SQL as the
    first build's (run in a child process whose environment points at a copy of the gated
    warehouse and its own dbt target folder)."""
    from python_models.dbt_daily_tests import DATA_BUILD, build_and_test
    from python_models.dbt_runner import WarmDbt, warehouse_build_threads

    warm = WarmDbt()
    try:
        time.sleep(float(os.environ[HEAD_START]))
        started = time.perf_counter()
        _, tests = build_and_test(
            [*DATA_BUILD, *warehouse_build_threads()],
            warn=lambda line: None,
            select=lineage_nodes(),
            quiet=True,
            warm=warm,
        )
    finally:
        warm.close()
    return {
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "tests": tests.describe(),
    }


def time_lineage(work: Path, head_start: float) -> tuple[float, float]:
    """The same-work row: churn's lineage built on a copy of the gated warehouse, in a child
    process (its own dbt target, so the full build's partial-parse state is untouched) whose
    dbt starts `head_start` seconds (the load's and gate's) before its command is sent."""
    scratch = work / "lineage"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "data").mkdir(parents=True)
    shutil.copyfile(os.environ["UBA_DUCKDB_PATH"], scratch / "data" / "warehouse.duckdb")
    # The child's work directory is the scratch folder: main() points UBA_DATA_DIR,
    # UBA_DUCKDB_PATH and DBT_TARGET_PATH into --keep, so with the bench's own folder the
    # lineage would be built into the warehouse and target the full build then uses.
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {**os.environ, HEAD_START: f"{head_start:.3f}"}
    _, _, out = _child([*me, "--part", "lineage", "--keep", str(scratch)], env)
    figures = json.loads(out.strip().splitlines()[-1])
    print(
        f"  {'(dbt: lineage only)':<24} {figures['seconds']:8.1f} s   "
        f"peak RSS {figures['peak_rss_mb']:6.0f} MB  (not counted in the total)"
    )
    print_dbt_timings(scratch / "dbt-target" / "run_results.json", top=5, tests=figures["tests"])
    shutil.rmtree(scratch, ignore_errors=True)
    return figures["seconds"], figures["peak_rss_mb"]


def first_build(
    history_dir: Path, names: list[str] | None, lineage: bool = True, same_work: bool = False
) -> dict:
    """The project's first build of the history, each stage timed (run in a child process).
    With `lineage`, churn's lineage alone is first built on a copy of the gated warehouse
    (recorded as LINEAGE, outside the total). `same_work`: only the reference's work (the dbt
    step builds churn's lineage, churn alone is trained and scored, nothing is published)."""
    from expectations.gate import run_gate
    from expectations.preload import start_suites_import
    from python_models.commands.refresh import record_build
    from python_models.common import registry
    from python_models.config import dbt_target_dir, get_settings
    from python_models.dbt_runner import WarmDbt, build_threads, dbt_env, saved_parse_for
    from python_models.ingest import load_path
    from python_models.lifecycle import score_each, score_model, train_each, train_model
    from python_models.models import model_names
    from python_models.publish import publish_warehouse
    from python_models.warehouse import connect

    timings: dict[str, tuple[float, float]] = {}

    def step(name, fn):
        started = time.perf_counter()
        out = fn()
        timings[name] = (time.perf_counter() - started, _peak_rss_mb())
        print(
            f"  {name:<24} {timings[name][0]:8.1f} s   peak RSS {timings[name][1]:6.0f} MB"
            f"   (after it {_rss_now_mb():6.0f} MB)"
        )
        sys.stdout.flush()
        return out

    saved = saved_parse_for(dbt_env(), None)
    if saved is not None and saved.cached.exists() and not saved.own.exists():
        print("  (dbt starts from the parse saved at install: `uba build --save-parse`)")
    else:
        print("  (dbt parses the project in full: no parse saved at install)")
    warm = WarmDbt()  # as a warehouse's first `uba refresh`: dbt's start-up beside load and gate
    try:
        con = connect()
        # as `uba refresh` loads: a new file means a gate, whose GX import starts beside it
        step(
            "load",
            lambda: load_path(con, history_dir, progress=False, on_new_file=start_suites_import),
        )
        step("gate", lambda: run_gate(con))
        threads = build_threads(con)  # as `uba refresh` and `uba build` choose them
        con.close()
        if same_work:
            # Loaded, and no day runs after it: the split files (6.1 GB at 100M events) leave
            # the disk to the build's spills (the next bench splits the sample again).
            shutil.rmtree(history_dir.parent, ignore_errors=True)
        if lineage:
            head_start = timings["load"][0] + timings["gate"][0]
            os.kill(warm.proc.pid, signal.SIGSTOP)  # it parses only in the build's own time
            try:
                timings[LINEAGE] = time_lineage(Path(os.environ["UBA_DATA_DIR"]).parent, head_start)
            finally:
                os.kill(warm.proc.pid, signal.SIGCONT)
        # As a deployment builds (`uba refresh`): dbt's unit tests check the SQL on fixed inputs
        # and run in CI (tests/conftest.py builds with them), not on each build of the data; the
        # data tests run from their compiled SQL after the models. As `uba build` does, nodes
        # that ran out of DuckDB memory are retried once (a line says so).
        # and, as `uba refresh` does, the model libraries are imported beside it
        # (python_models.model_libraries), joined inside the step
        select = lineage_nodes(scored=True) if same_work else ()
        tests = step("dbt build", lambda: _build_beside_model_libraries(warm, select, threads))
        print_dbt_timings(dbt_target_dir() / "run_results.json", top=8, tests=tests.describe())
    finally:
        warm.close()
    con = connect()
    record_build(con)
    names = [REFERENCE_MODEL] if same_work else names or model_names()
    # As `uba train` trains them (lifecycle.train_each): churn's fit of two threads alone
    # (first, and timed on its own against the reference's), then the others side by side
    # where their threads fit.
    if REFERENCE_MODEL in names:
        step(f"train {REFERENCE_MODEL}", lambda: train_model(con, REFERENCE_MODEL))
    others = [name for name in names if name != REFERENCE_MODEL]
    if others:
        step(f"train {len(others)} others", lambda: _done(train_each(con, others), "training"))
    # Scored as `uba train` scores them (lifecycle.score_each): churn alone (timed against the
    # reference's), then the others side by side.
    served = []
    for name in names:
        if registry.get_champion(con, name) is None:  # rejected: did not beat its baselines
            print(f"  score {name:<18} skipped: no champion (the model was not served)")
        else:
            served.append(name)
    if REFERENCE_MODEL in served:
        step(f"score {REFERENCE_MODEL}", lambda: score_model(con, REFERENCE_MODEL))
    others = [name for name in served if name != REFERENCE_MODEL]
    if others:
        step(f"score {len(others)} others", lambda: _done(score_each(con, others), "scoring"))
    if not same_work:
        step("publish", lambda: publish_warehouse(con, get_settings().published_dir))
    con.close()
    return {name: list(values) for name, values in timings.items()}


def _done(outcomes: list, what: str) -> list:
    """train_each's or score_each's outcomes, raising the first failure (a bench stops on one,
    as train_model's and score_model's steps do)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError(f"{what} {failed[0].model_name} failed: {failed[0].reason}")
    return outcomes


def _build_beside_model_libraries(
    warm, select: list[str] | tuple = (), threads: list[str] | tuple = ()
):
    """The first build's dbt step; returns its data tests' outcome (TestsOutcome)."""
    from python_models.dbt_daily_tests import DATA_BUILD, build_and_test
    from python_models.model_libraries import ModelLibraries

    libraries = ModelLibraries()
    try:
        return build_and_test(
            [*DATA_BUILD, *threads], warn=print, select=select, quiet=True, warm=warm
        )[1]
    finally:
        libraries.join()


def _part(cmd: list[str], env: dict[str, str], echo: bool = False) -> tuple[float, float, str]:
    """Run a child and relay its output lines that are figures."""
    seconds, peak, out = _child(cmd, env)
    if echo:
        for line in out.splitlines():
            if not line.startswith("{"):
                print(line)
    return seconds, peak, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sample", type=Path, help="reuse a `uba generate` output folder")
    parser.add_argument(
        "--keep",
        default=None,
        help="work directory to keep (default: a temporary one, removed at the end)",
    )
    parser.add_argument("--models", default=None, help="comma-separated (default: every model)")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--ref-threads", type=int, default=2)
    parser.add_argument(
        "--no-lineage",
        action="store_true",
        help=f"skip the same-work row ({REFERENCE_MODEL}'s lineage)",
    )
    parser.add_argument(
        "--same-work",
        action="store_true",
        help=f"build only what the reference does ({REFERENCE_MODEL}'s lineage, {REFERENCE_MODEL}; "
        "no publish, no days)",
    )
    parser.add_argument(
        "--ref-memory-limit", default=None, help="the reference's DuckDB memory_limit (e.g. 6GB)"
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="leave the reference out (sizes it cannot run at on this machine)",
    )
    parser.add_argument("--part", choices=["split", "build", "lineage"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.same_work and args.models:
        parser.error("--same-work trains the reference's model only: leave out --models")

    work = Path(args.keep or tempfile.mkdtemp(prefix="uba-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)  # --keep may name a folder not made yet
    if args.keep is None:  # a temporary work directory (~17 GB at 10M) goes when the bench ends
        atexit.register(shutil.rmtree, work, True)
    os.environ["UBA_DATA_DIR"] = str(work / "data")
    os.environ["UBA_DUCKDB_PATH"] = str(work / "data" / "warehouse.duckdb")
    os.environ.setdefault("UBA_ALLOW_DEV_SALT", "1")  # a benchmark, not real data
    os.environ.setdefault("UBA_QUIET_SALT", "1")
    # dbt's artifacts in the work directory: the daily run re-parses only what changed since
    # the first build (partial parsing), as a deployment keeping its target/ folder does.
    os.environ["DBT_TARGET_PATH"] = str(work / "dbt-target")
    sample_dir = (args.sample or work / "sample").resolve()
    # Each part runs in its own process, started from this small one: a child's peak RSS
    # counts its parent's RSS at the fork, so a big parent would inflate every child's figure.
    if args.part == "split":
        if not (sample_dir / "truth" / "manifest.json").exists():
            from python_models.synthetic import generate

            print(f"generating {args.events:,} events (seed {args.seed}) ...", flush=True)
            generate(sample_dir, n_events=args.events, seed=args.seed)
        manifest = json.loads((sample_dir / "truth" / "manifest.json").read_text())
        print(json.dumps(split_last_day(sample_dir / "events", manifest, work / "split")))
        return 0
    if args.part == "build":
        names = args.models.split(",") if args.models else None
        lineage = not (args.no_lineage or args.same_work)
        print(json.dumps(first_build(work / "split" / "history", names, lineage, args.same_work)))
        return 0
    if args.part == "lineage":
        print(json.dumps(lineage_build()))
        return 0

    env = dict(os.environ)
    me = [sys.executable, str(Path(__file__).resolve()), "--keep", str(work)]
    me += ["--events", str(args.events), "--seed", str(args.seed)]
    me += ["--sample", str(sample_dir)] + (["--models", args.models] if args.models else [])
    me += ["--no-lineage"] if args.no_lineage else []
    me += ["--same-work"] if args.same_work else []
    kept = "kept" if args.keep else "removed at the end; --keep DIR keeps it"
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    # The disk is what runs out first at 100M (the build's spills, the reference's temp tables).
    free = f"{shutil.disk_usage(work).free / 1e9:.0f} GB free on its disk"
    print(f"benchmark in {work} ({kept}); {load}; {free}")
    other_cpu = OtherCpu()
    _, _, out = _part([*me, "--part", "split"], env, echo=True)
    split = json.loads(out.strip().splitlines()[-1])
    history_dir, day_dir = Path(split["history"]), Path(split["day"])
    rows, day_rows, before_rows = split["rows"], split["day_rows"], split["day_before_rows"]
    print(
        f"{rows:,} rows: {rows - day_rows - before_rows:,} history, {before_rows:,} received "
        f"the day before the last, {day_rows:,} on the last day"
    )

    print(f"\nreference ({args.reference.name} --weekly, {args.ref_threads} threads), history:")
    reference, ref_peak = run_reference(args, history_dir, work, env)

    what = (
        f" (--same-work: {REFERENCE_MODEL}'s lineage, {REFERENCE_MODEL}; "
        "no other model, no publish)"
    )
    print(f"\nproject, first build of the history{what if args.same_work else ''}:")
    _, project_peak, out = _part([*me, "--part", "build"], env, echo=True)
    timings = {name: tuple(v) for name, v in json.loads(out.strip().splitlines()[-1]).items()}
    lineage = timings.pop(LINEAGE, None)
    project_total = sum(seconds for seconds, _ in timings.values())

    print(f"\nload average {os.getloadavg()[0]:.1f}; {other_cpu.line()}")
    print("stage                  project s  reference s   ratio")
    for stage, parts in MATCHED.items():
        if stage in timings:
            print(_row(stage, timings[stage][0], _reference_seconds(reference, parts)))
    others = sum(s for name, (s, _) in timings.items() if name not in MATCHED)
    print(_row("(not in reference)", others, None))
    print(_row("total", project_total, reference and reference["total"]))
    print(_row("peak RSS MB", project_peak, ref_peak, digits=0))
    if lineage is not None:
        # The same work as the reference: churn's lineage instead of the full dbt build, and
        # only the stages the reference has (no other models, no publish).
        same = {stage: timings[stage][0] for stage in MATCHED if stage in timings}
        same["dbt build"] = lineage[0]
        print(
            f"same work as the reference (dbt: {REFERENCE_MODEL}'s lineage only; "
            "no other model, publish):"
        )
        print(_row("dbt build", lineage[0], _reference_seconds(reference, MATCHED["dbt build"])))
        every_part = [part for parts in MATCHED.values() for part in parts]
        print(_row("total", sum(same.values()), _reference_seconds(reference, every_part)))

    if args.same_work:
        print("\ndaily increments: not run (--same-work)")
        return 0
    print(
        f"\ndaily increments: `uba refresh` on {before_rows:,} then {day_rows:,} new rows, "
        "each as its own process (the first after a build also saves the data tests' SQL):"
    )
    from python_models.config import dbt_target_dir

    run_results = dbt_target_dir() / "run_results.json"  # main() points it into the work folder
    runs = [
        ("first day after build", Path(split["day_before"])),
        ("one new day", day_dir),
        ("no new data", day_dir),
    ]
    for label, folder in runs:
        uba = [sys.executable, "-m", "python_models.cli", "refresh", str(folder), "--no-docs"]
        before = run_results.stat().st_mtime if run_results.exists() else None
        seconds, peak, out = _child(uba, env)
        for line in out.splitlines():
            if line.startswith(("[refresh]", "           ")):
                print(f"    {line}")
        print(f"  {label:<22} {seconds:8.1f} s   peak RSS {peak:6.0f} MB")
        if run_results.exists() and run_results.stat().st_mtime != before:
            print_dbt_timings(run_results)
    print(f"\nwhole bench: {other_cpu.line()}")
    return 0


def run_reference(
    args: argparse.Namespace, history_dir: Path, work: Path, env: dict[str, str]
) -> tuple[dict | None, float | None]:
    """The reference's stage seconds and peak RSS on the history, or (None, None) when it is
    left out (--no-reference) or fails (said in one line: the project still runs)."""
    if args.no_reference:
        print("  not run (--no-reference)")
        return None, None
    ref_cmd = [sys.executable, str(args.reference), "--weekly", "--events-dir", str(history_dir)]
    ref_cmd += ["--db", str(work / "ref.duckdb"), "--threads", str(args.ref_threads)]
    ref_cmd += ["--memory-limit", args.ref_memory_limit] if args.ref_memory_limit else []
    started = time.perf_counter()
    try:
        (work / "ref.duckdb").unlink(missing_ok=True)
        _, peak, out = _child(ref_cmd, env)
        reference = json.loads(out.strip().splitlines()[-1])
    except (ChildFailed, ValueError, IndexError) as failure:
        if isinstance(failure, ChildFailed):
            why = f"exit status {failure.returncode}"
        else:
            why = f"no result line: {failure}"
        print(f"  failed after {time.perf_counter() - started:.0f} s ({why}; its errors above); "
              "the project runs without it")  # fmt: skip
        return None, None
    finally:
        # Its file is scratch (1.7 GB at 10M events): not kept on the disk the build needs.
        (work / "ref.duckdb").unlink(missing_ok=True)
        shutil.rmtree(work / "ref.duckdb.tmp", ignore_errors=True)
    print(f"  {json.dumps(reference)}")
    return reference, peak


def _reference_seconds(reference: dict | None, parts: list[str]) -> float | None:
    return None if reference is None else sum(reference.get(part, 0.0) for part in parts)


def _row(label: str, ours: float, theirs: float | None, digits: int = 1) -> str:
    """One line of the comparison: the project's figure, the reference's and the ratio
    (dashes where the reference has none)."""
    if theirs is None:
        return f"  {label:<20} {ours:10.{digits}f} {'-':>12} {'-':>8}"
    ratio = ours / max(theirs, 1e-9)
    return f"  {label:<20} {ours:10.{digits}f} {theirs:12.{digits}f} {ratio:7.1f}x"


def print_dbt_timings(run_results: Path, top: int = 10, tests: str | None = None) -> None:
    """Where a `dbt build` spent its time (the first build's, the lineage's, a refresh's):
    models and tests in total, and the slowest nodes (dbt's own run_results.json). A build whose
    data tests ran from their compiled SQL has no test nodes there: `tests`, their outcome's
    line, is printed with dbt's own seconds for the build and for the tests' compile."""
    if not run_results.exists():
        return
    build = json.loads(run_results.read_text())
    results = build["results"]
    if tests:
        from python_models.dbt_daily_tests import compiled_tests_dir

        compiled = compiled_tests_dir(run_results.parent) / "run_results.json"
        compile_seconds = (
            json.loads(compiled.read_text())["elapsed_time"] if compiled.exists() else float("nan")
        )
        print(
            f"    dbt's build command {build['elapsed_time']:.1f} s, the data tests' compile "
            f"{compile_seconds:.1f} s; {tests}"
        )
    by_kind: dict[str, float] = {}
    for result in results:
        kind = result["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + result["execution_time"]
    totals = ", ".join(f"{kind}s {seconds:.1f} s" for kind, seconds in sorted(by_kind.items()))
    print(f"    dbt: {len(results)} nodes; {totals} (summed, threads overlap)")
    for kind in ("model", "test"):
        nodes = [r for r in results if r["unique_id"].startswith(kind + ".")]
        slowest = sorted(nodes, key=lambda r: r["execution_time"], reverse=True)[:top]
        if not slowest:
            continue
        print(f"    slowest {kind}s:")
        for result in slowest:
            name = result["unique_id"].split(".", 2)[-1]
            print(f"      {result['execution_time']:7.2f} s  {name[:70]}")


if __name__ == "__main__":
    sys.exit(main())
