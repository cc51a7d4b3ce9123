"""The schedule of a run of :meth:`solvers.base.PseudoSpectralSolver.run`: :class:`Every`, a
periodic call (records, restarts, any callback), and :class:`ProgressBar`, the run's tqdm bar.
:class:`Every` is re-exported from :mod:`solvers.base` and :mod:`solvers`."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from .validate import number, positive_number

__all__ = ["Every", "ProgressBar"]


class Every:
    """A periodic call of :meth:`PseudoSpectralSolver.run`: ``call(solver)`` at the first step on
    or after each of the times ``origin + every``, ``origin + 2·every``, … (summed one by one;
    ``origin`` defaults to the time the run starts; ``every=None``: no periodic calls), at the
    start of the run if ``start``, and at its end if ``end``; never twice at one step.
    ``last_step``: the step of a call made before the run (e.g. the record a continued trajectory
    already holds), which the start and the end then do not repeat. ``last_step`` is updated at
    every call; ``calls`` counts the calls of the run."""

    def __init__(self, every: float | None, call: Callable[["PseudoSpectralSolver"], Any], *,
                 origin: float | None = None, start: bool = True, end: bool = False,
                 last_step: int | None = None):
        self.every = positive_number("every", every, allow_none=True)
        if not callable(call):
            raise ValueError(f"call must be callable, got {call!r}")
        self.call = call
        self.origin = number("origin", origin, allow_none=True)
        self.start, self.end_call = bool(start), bool(end)
        self.last_step = last_step
        self.calls = 0
        self.next = None

    def _fire(self, solver) -> None:
        self.last_step = solver.step_count
        self.call(solver)
        self.calls += 1

    def begin(self, solver) -> None:
        """The start of a run: the first periodic time after the current one (a time within half
        a step of it is the current step's: a continued run's t, summed step by step, can fall a
        little short of a time its earlier part was called at); the start call."""
        e = self.every
        if e is not None:
            nxt = (solver.t if self.origin is None else self.origin) + e
            now = solver.t + max(1e-9 * e, 0.5 * getattr(solver, "dt", 0.0))
            while nxt <= now:
                nxt += e
            self.next = nxt
            self._t0, self._step0 = solver.t, solver.step_count
        if self.start and self.last_step != solver.step_count:
            self._fire(solver)

    def _due(self, solver) -> bool:
        """Is the current step the first on or after ``next``? With a fixed dt the step is counted
        from the run's start, (next − t0)/dt steps rounded up: the sum of many steps in ``t`` drifts
        by round-off (after 10⁵ steps enough to put a call one step late), a step count does not.
        A CFL-chosen dt compares times."""
        if solver.fixed_dt:
            steps = math.ceil((self.next - self._t0) / solver.dt - 1e-6)
            return solver.step_count - self._step0 >= steps
        return solver.t >= self.next - 1e-9 * self.every

    def after_step(self, solver) -> None:
        if self.every is not None and self._due(solver):
            self._fire(solver)
            while self._due(solver):
                self.next += self.every

    def end(self, solver) -> None:
        if self.end_call and self.last_step != solver.step_count:
            self._fire(solver)

    def __repr__(self) -> str:
        return f"Every({self.every!r}, {self.call!r}, origin={self.origin!r})"


class ProgressBar:
    """The tqdm bar of a run: simulated time, steps per second and the closure's share of the
    wall time, redrawn at most every 0.2 s."""

    def __init__(self, solver, t_end: float):
        from tqdm.auto import tqdm
        self.s = solver
        self.t0, self.step0 = solver.t, solver.step_count
        self.clo0 = solver.timers["closure"]
        self.wall0 = self.last = time.perf_counter()
        self.bar = tqdm(total=round(t_end - solver.t, 10), unit="t.u.", dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.3g}/{total:.3g} [{elapsed}<{remaining}"
                                   "{postfix}]")

    def draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last <= 0.2:
            return
        self.last = now
        s, elapsed = self.s, max(now - self.wall0, 1e-9)
        post = f"t={s.t:.4g}, {(s.step_count - self.step0) / elapsed:.1f} steps/s"
        if s.closure is not None:
            post += f", closure {100 * (s.timers['closure'] - self.clo0) / elapsed:.0f}%"
        self.bar.n = min(self.bar.total, round(s.t - self.t0, 10))
        self.bar.set_postfix_str(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
