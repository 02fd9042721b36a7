"""GPU path (``pytest -m gpu``): training on CUDA in bf16, cached decoding on CUDA, the GPU benchmark.

Every test here needs a CUDA device and is skipped, saying so, where there is none.
"""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")]

ROOT = Path(__file__).resolve().parents[1]
GRID = tuple(itertools.product([-2 + 4 * i / 7 for i in range(8)], repeat=2))


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    from helpers import add_split, make_split_warehouse
    from gensynth.warehouse import connect

    path = make_split_warehouse(tmp_path_factory.mktemp("gpu") / "w.duckdb")
    con = connect(path)
    add_split(con, "small", roles=(("train", 20), ("val", 5), ("test_id", 10)), seed=3)
    con.close()
    return path


@pytest.mark.parametrize("arch", ["grid64", "lines"])
def test_training_on_the_gpu_in_bf16_records_the_card(wh, arch):
    import duckdb

    from gensynth.learning.config import DataSettings, ModelSpec, RunConfig, TrainSettings
    from gensynth.learning.train import train

    cfg = RunConfig(data=DataSettings(view="split_small", batch_size=64), model=ModelSpec(arch=arch, size="nano"),
                    training=TrainSettings(max_steps=30, accelerator="gpu", precision="bf16-mixed"))
    s = train(wh, cfg, quiet=True)
    assert s.status == "finished" and s.steps == 30
    con = duckdb.connect(str(wh), read_only=True)
    [(device,)] = con.execute("SELECT device FROM runs WHERE run_id = ?", [s.run_id]).fetchall()
    con.close()
    assert torch.cuda.get_device_name(0) in device


@pytest.mark.parametrize("arch", ["grid64", "lines"])
def test_cached_decoding_on_the_gpu_matches_uncached(arch):
    from models import registry

    entry = registry.get(arch)
    torch.manual_seed(0)
    cfg = entry.config("micro", vocab_size=12, n_points=64, max_len=12, **({"grid": GRID} if entry.grid_input else {}))
    model = entry.build(cfg).cuda().eval()
    values = torch.randn(64, 64, device="cuda") * 3
    shown = torch.ones_like(values, dtype=torch.bool)
    arity = torch.tensor([-1, -1, -1, 0, 0, 0, 0, 0, 2, 2, 2, 2])
    out = [model.generate(values, shown, num_samples=4, temperature=0.0, arity=arity, use_cache=c) for c in (True, False)]
    assert torch.equal(out[0][0], out[1][0])
    assert torch.allclose(out[0][1], out[1][1], atol=1e-3)


def test_the_gpu_benchmark_runs():
    r = subprocess.run([sys.executable, "benchmarks/gpu.py", "--configs", "grid64:nano,lines:nano", "--steps", "5",
                        "--warmup", "2", "--max-ops", "2", "--workers", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "MFU" in r.stdout and "lines" in r.stdout
