"""``compile=True`` of :class:`closures.slt.Emulator` (torch.compile of the transformer) and
``--compile``: the compiled rollout agrees with the eager one to round-off and repeats bit for
bit; without a C++ compiler the flag is refused before any work. Tiny model, one thread."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from closures.slt import Emulator, LocalSLT, check_compiler, save_slt
from closures.slt import rollout as rollout_module
from hybrid.cli import main

HAS_COMPILER = any(shutil.which(n) for n in ("g++", "clang++", "c++"))


def tiny_local():
    torch.manual_seed(0)
    return LocalSLT(16, window=3, width=8, heads=2, layers=1, hidden=16, span=5,
                    noise_channels=2, stats={"mean": 0.0, "std": 0.5})


@pytest.mark.skipif(not HAS_COMPILER, reason="torch.compile on the CPU needs a C++ compiler")
def test_a_compiled_rollout_is_the_eager_one_to_round_off_and_repeats():
    history = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    eager = Emulator(tiny_local(), threads=1).rollout(history, 20, 6, seed=1)
    em = Emulator(tiny_local(), threads=1, compile=True)
    assert em.compiled
    first = em.rollout(history, 20, 6, seed=1)
    assert np.array_equal(first, em.rollout(history, 20, 6, seed=1))    # bit for bit
    # 20 steps of a random network: the profiles differ by round-off only
    assert 0 < float(np.abs(eager).max())
    assert float(np.abs(first - eager).max()) < 1e-4 * float(np.abs(eager).max())
    other = em.rollout(history, 20, 6, seed=2)
    assert float(np.abs(other - first).max()) > 0.1 * float(np.abs(eager).std())


def test_without_a_compiler_compile_is_refused_naming_it(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(rollout_module.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="compile=True: torch.compile on the CPU builds C"):
        Emulator(tiny_local(), compile=True)
    check_compiler("meta")                                   # not the CPU: not checked here
    model = tmp_path / "local"
    save_slt(tiny_local(), model)
    init = tmp_path / "init.nc"
    assert main(["emulate", "slt", "--model", str(model), "--init", str(init), "--members",
                 "2", "--t-end", "5", "--compile", "--out", str(tmp_path / "out")]) == 2
    assert "--compile: torch.compile on the CPU builds C++" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
