"""The atheris harnesses (fuzz/) still run: each one for a few hundred inputs.

Not fuzzing (``make fuzz`` does that); this catches a harness broken by a change to
the code it drives (an import, a signature, a seed that no longer builds), and runs
each seed through the harness's contract. Skipped where atheris is not installed (it
has wheels for x86-64 Linux only).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

ROOT = Path(__file__).resolve().parents[1]
RUNS = 300


@pytest.mark.parametrize("name", ["manifest", "config", "cap"])
def test_harness_runs_its_seeds_and_a_few_hundred_inputs(name: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    r = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / f"fuzz_{name}.py"), str(corpus),
         f"-runs={RUNS}", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert f"Done {RUNS} runs" in r.stderr, r.stderr[-4000:]
    assert list(corpus.glob("seed-*")), "the harness wrote no seeds"
    assert not [p for p in tmp_path.iterdir() if p.name != "corpus"], "an artifact was written"
