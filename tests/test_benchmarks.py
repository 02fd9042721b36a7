"""The benchmarks run (``pytest -m benchmark``): each prints its table; nothing here asserts a time.

They take a minute or more each on a busy 2-core machine, so they sit behind the marker.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark
ROOT = Path(__file__).resolve().parents[1]
ENV_1 = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(*args, timeout=900):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=ENV_1)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_gpu_benchmark_dry_run_on_cpu_says_it_is_not_a_gpu_measurement():
    out = run("benchmarks/gpu.py", "--dry-run")
    assert "DRY RUN ON CPU" in out and "dry run OK" in out
    assert "grid64" in out and "lines" in out


def test_decode_benchmark_reports_cached_and_uncached_rates():
    out = run("-m", "benchmarks.learning", "decode", "--tasks", "16", "--samples", "2", "--repeats", "1",
              "--configs", "grid64:nano,lines:nano")
    assert "cached t/s" in out and "speed-up" in out
    assert out.count("nano") == 2


def test_train_benchmark_reports_loader_and_model_throughput():
    out = run("-m", "benchmarks.train", "--sizes", "nano", "--seconds", "1", "--threads", "1")
    assert "loader / nano training" in out
