"""Shared fixtures."""
import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny networks run fastest on one torch thread; with two, the pool spins badly when both
    cores are busy (measured: 1.5 s instead of 0.04 s per closure refresh)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Zonal-mean records of two tiny beta-plane runs at β = 2 and 6: 2 members, 16 saves of 16
    points each (one save per time unit, kf = 4, μ = 4e-4); the first a file, the second in a
    run folder (trajectory.nc)."""
    from solvers import BetaPlane
    from solvers.io import TrajectoryWriter
    base = tmp_path_factory.mktemp("runs")
    paths = []
    for beta, path in ((2.0, base / "b2.nc"), (6.0, base / "b6" / "trajectory.nc")):
        path.parent.mkdir(exist_ok=True)
        s = BetaPlane(n=16, members=2, seed=0, dt=0.5, epsilon=1e-3, kf=4, kf_width=1.0,
                      beta=beta)
        with TrajectoryWriter(path, s, record="zonal-mean") as w:
            for _ in range(16):
                s.step(2)
                w.write()
        paths.append(path)
    return paths[0], paths[1].parent
