"""The bench says how much CPU other processes used while it ran (benchmarks/bench_pipeline.py
OtherCpu): a run beside other work measures that work too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pipeline.py"
BURN = """
import sys, time
while time.process_time() < {seconds}:
    pass
open(sys.argv[1], "w").close()
"""


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _burn(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_cpu_of_a_process_outside_the_bench_counts_as_other_and_its_own_does_not(tmp_path):
    other_cpu = _bench().OtherCpu()
    done = tmp_path / "done"
    # 1.5 CPU-s in a process that is not this one's descendant (its shell exits at once)
    program = BURN.format(seconds=1.5)
    subprocess.run(
        ["sh", "-c", '("$0" -c "$1" "$2" &)', sys.executable, program, str(done)], check=True
    )
    _burn(1.0)  # this process's own, while it runs
    deadline = time.monotonic() + 60
    while not done.exists():
        assert time.monotonic() < deadline, "the busy process did not finish"
        time.sleep(0.05)
    time.sleep(0.1)  # its last ticks into /proc/stat
    others, own, stolen = other_cpu.seconds()
    assert own >= 1.0
    assert others >= 1.2  # the outside process's 1.5 s, less the ticks' rounding
    assert stolen >= 0
    assert "other processes used" in _bench().OtherCpu().line()
