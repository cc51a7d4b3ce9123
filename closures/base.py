"""The closure base class: what every closure model implements for the solver's hook.

The hook protocol lives in :mod:`solvers.base` (``ClosureProtocol``). A closure has

* ``every`` — the refresh period in steps: the solver calls the closure at the start of every
  ``every``-th step and holds the returned term fixed, as an additive vorticity source C, across
  all stages of the next ``every`` steps;
* ``reset(grid, members, params, seed)`` — called by ``solver.set_closure`` before a run;
* ``__call__(state) -> np.ndarray`` — the physical tendency C, shape ``(members, n, n)``, real,
  finite, added to ∂t ζ (so its energy input is −⟨ψ C⟩ and its enstrophy input ⟨ζ C⟩).

:class:`Closure` adds what the solver does not need but users and restarts do: per-member random
generators for stochastic closures, ``get_state``/``set_state`` (JSON-able, for bit-exact
restarts), ``check_grid`` for closures built or trained for one grid, ``config()`` (class, every
constructor argument, a hash of the weights: what a restart checks before it continues) and
``network_calls``, the member-aligned batches of a network closure.

Seeding. ``reset`` gives member m the generator ``PCG64`` seeded with child ``first_member + m`` of
``SeedSequence([seed, CLOSURE_STREAM])``, where ``first_member = params.get('first_member', 0)``.
As in the solver (whose noise uses the children of ``SeedSequence(seed)``) and in
``solvers.initial`` (``SeedSequence([seed, 1])``), a member's stream depends only on the seed and
the member's index in the whole ensemble, so members m0 … m0+M−1 run as a sub-batch draw exactly
what they draw in the full batch; the extra entropy word ``CLOSURE_STREAM = 2`` keeps the closure's
draws independent of the solver's forcing noise and of the initial conditions drawn with the same
seed. ``seed=None`` draws fresh OS entropy (not reproducible, but ``get_state`` still captures it).
"""
from __future__ import annotations

import hashlib
import inspect
import os
from typing import Any

import numpy as np

from solvers.base import ClosureState
from solvers.grid import Grid
from solvers.initial import member_generators
from solvers.validate import integer

CLOSURE_STREAM = 2      # entropy word separating closure streams from solver noise (0) and ICs (1)

# What a model's training target (``hybrid generate --target``, recorded on its card as
# data.generation.target) asks of the solver it runs in, and why.
TARGET_SOLVER_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "subgrid": ({"advection": True},
                "it models the subgrid term Π, which adds to the solver's own advection"),
    "missing-physics": ({"advection": False},
                        "it models the whole advection term H = −u·∇ω, which replaces the "
                        "solver's own advection"),
}


def closure_generators(seed: int | None, members: int,
                       first_member: int = 0) -> list[np.random.Generator]:
    """The closure's generators, one per member: :func:`solvers.initial.member_generators` of
    stream :data:`CLOSURE_STREAM` (see the module docstring)."""
    return member_generators(seed, members, first_member, CLOSURE_STREAM)


def online_setting(card: dict | None, name: str, given, default):
    """An online setting of a trained model (a closure's or an emulator's: noise memory, spread
    or residual gain, …): ``given`` unless it is None, else the value ``name`` of the model
    card's ``online`` section (settings chosen on validation runs and written to the card), else
    ``default``. The caller validates it."""
    if given is not None:
        return given
    return ((card or {}).get("online") or {}).get(name, default)


def same_grid(a: Grid, b: Grid) -> bool:
    """Whether two grids have the same n and (to 1e-12 relative) the same box side L."""
    return a is b or (a.n == b.n and bool(np.isclose(a.L, b.L, rtol=1e-12, atol=0.0)))


def closure_state(grid: Grid, zeta_hat: np.ndarray, t: float = 0.0, step: int = 0,
                  dt: float = 0.0, params: dict | None = None) -> ClosureState:
    """A :class:`~solvers.base.ClosureState` built from a spectral vorticity (members, n, n//2+1)
    or (n, n//2+1) — for calling a closure offline, without a solver."""
    zh = np.asarray(zeta_hat)
    if zh.ndim == 2:
        zh = zh[None]
    if zh.ndim != 3 or zh.shape[1:] != grid.spectral_shape:
        raise ValueError(f"zeta_hat must have shape (members, {grid.n}, {grid.nk}) for {grid!r}, "
                         f"got {np.shape(zeta_hat)}")
    return ClosureState(t=float(t), step=int(step), dt=float(dt), grid=grid,
                        params=dict(params or {}),
                        vorticity=np.fft.irfft2(zh, s=grid.shape), vorticity_hat=zh)


class Closure:
    """Base class of closure models (see the module docstring).

    Subclasses implement :meth:`compute` (``state -> (members, n, n)`` real array); stateful
    closures extend :meth:`reset`, :meth:`get_state` and :meth:`set_state`. A closure built or
    trained for one grid sets ``self.built_for = (n, L)`` (L may be None: only n is checked), and
    :meth:`reset` refuses any other grid.

    Attributes after ``reset``: ``grid``, ``members``, ``params``, ``seed``, ``first_member`` and
    ``rng``, a list of one ``numpy.random.Generator`` per member.
    """

    every: int = 5
    name: str = "closure"
    # defaults, so that a subclass that forgets super().__init__() still fails clearly
    grid: Grid | None = None
    members: int | None = None
    seed: int | None = None
    first_member: int = 0
    rng: list[np.random.Generator] | None = None
    built_for: tuple[int, float | None] | None = None
    target: str | None = None       # the training data's target (TARGET_SOLVER_SETTINGS), if any

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._arguments = _bound_arguments(cls, args, kwargs)
        return self

    def __init__(self, every: int | None = None):
        if every is not None:
            integer(f"every of closure {type(self).__name__}", every, 1)
            self.every = int(every)
        self.grid: Grid | None = None
        self.members: int | None = None
        self.params: dict = {}
        self.seed: int | None = None
        self.first_member: int = 0
        self.rng: list[np.random.Generator] | None = None
        self.built_for: tuple[int, float | None] | None = None

    # ------------------------------------------------------------------ hook protocol
    def reset(self, grid: Grid, members: int, params: dict, seed: int | None) -> None:
        """Prepare for a run on ``grid`` with ``members`` members (called by ``set_closure``)."""
        self.check_grid(grid)
        self.check_solver_settings(params or {})
        integer("members", members, 1)
        self.grid = grid
        self.members = int(members)
        self.params = dict(params or {})
        self.seed = seed
        self.first_member = int(self.params.get("first_member", 0) or 0)
        self.rng = closure_generators(seed, self.members, self.first_member)

    def __call__(self, state: ClosureState) -> np.ndarray:
        """The tendency C (members, n, n) for ``state``; checks the state against ``reset``."""
        if self.grid is None:
            raise RuntimeError(f"closure {self.describe()} was not reset: call "
                               f"reset(grid, members, params, seed) first (solver.set_closure "
                               f"does it)")
        if not same_grid(state.grid, self.grid):
            raise ValueError(f"closure {self.describe()} was reset for n={self.grid.n}, "
                             f"L={self.grid.L:g}, but is called on n={state.grid.n}, "
                             f"L={state.grid.L:g}")
        if state.members != self.members:
            raise ValueError(f"closure {self.describe()} was reset for {self.members} members, "
                             f"but is called with {state.members}")
        return self.compute(state)

    def compute(self, state: ClosureState) -> np.ndarray:
        """The closure term; subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute(state)")

    # ------------------------------------------------------------------ helpers
    def describe(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def check_grid(self, grid: Grid, where: str = "the solver has") -> None:
        """Raise ValueError if this closure was built for a different grid than ``grid``;
        ``where`` names the grid's source in the message."""
        if self.built_for is None:
            return
        n, L = self.built_for
        if n != grid.n or (L is not None and not np.isclose(L, grid.L, rtol=1e-12, atol=0.0)):
            built = f"n={n}" + ("" if L is None else f", L={L:g}")
            raise ValueError(f"closure grid mismatch: closure {self.describe()} was built for "
                             f"{built}; {where} n={grid.n}, L={grid.L:g}")

    def solver_settings(self) -> dict[str, Any]:
        """Solver constructor settings this closure needs, from its :attr:`target`
        (:data:`TARGET_SOLVER_SETTINGS`): ``{'advection': False}`` for a model of the whole
        advection term, ``{'advection': True}`` for a model of the subgrid term, {} without a
        target. Callers that build the solver (:func:`hybrid.simulation.closure_solver_overrides`)
        apply them; :meth:`reset` checks them."""
        return dict(TARGET_SOLVER_SETTINGS.get(self.target, ({}, ""))[0])

    def check_solver_settings(self, settings: dict[str, Any],
                              where: str = "the solver has") -> None:
        """ValueError, naming the setting, unless every key of :meth:`solver_settings` that
        ``settings`` holds (not None) has the value this closure needs; ``where`` names the
        source of ``settings`` in the message. Keys it lacks are not checked."""
        for key, want in self.solver_settings().items():
            have = settings.get(key)
            if have is not None and have != want:
                why = TARGET_SOLVER_SETTINGS.get(self.target, ({}, ""))[1]
                reason = f" (trained on target {self.target!r} data: {why})" if why else ""
                raise ValueError(f"closure {self.describe()} needs {key}={want!r}{reason}; "
                                 f"{where} {key}={have!r}")

    def normal(self, shape: tuple[int, ...] | int = ()) -> np.ndarray:
        """Standard normal draws (members, *shape), member m from its own generator."""
        if self.rng is None:
            raise RuntimeError(f"closure {self.describe()} has no generators: call reset first")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return np.stack([r.standard_normal(shape) for r in self.rng])

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict[str, Any]:
        """What makes this closure compute what it computes, for restart checks: ``class``,
        ``arguments`` (every constructor argument, defaults filled in, except ``every``, which
        the solver holds; arrays and networks as hashes) and ``weights`` (a hash of the weights
        of its torch modules, None without any)."""
        args = {k: _describe(v) for k, v in (self._arguments or {}).items() if k != "every"}
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}",
                "arguments": args, "weights": self.weights_hash()}

    def weights_hash(self) -> str | None:
        """SHA-256 of the state dicts of the torch modules among this closure's attributes (names,
        dtypes, shapes, bytes), or None if it has none."""
        modules = sorted((k, v) for k, v in vars(self).items() if _is_module(v))
        if not modules:
            return None
        h = hashlib.sha256()
        for name, module in modules:
            h.update(name.encode())
            h.update(_module_digest(module).encode())
        return h.hexdigest()

    # ------------------------------------------------------------------ network batches
    ensemble_members: int | None = None     # members of the whole ensemble (set by a caller
                                            # running it in parts); None: first_member + members

    def network_calls(self, chunk: int | None) -> list[tuple[slice, int, int]]:
        """The network calls of a refresh in chunks of ``chunk`` members (None: the whole
        ensemble), aligned to the members' indices in the whole ensemble: chunk k holds members
        k·chunk … k·chunk+chunk−1 (fewer for the last). One ``(members, size, offset)`` per call:
        this closure's members ``members`` (a slice of 0 … members−1) sit at positions offset …
        of a call of ``size`` entries; the other positions belong to members run elsewhere and
        are padding here. Torch's round-off depends on the call's size but not on the other
        entries, so a member's term is the same bit for bit whether the ensemble runs as one batch
        or in parts (:mod:`hybrid.ensemble`), at the cost of padded calls where a part's edge cuts
        a chunk."""
        if self.members is None:
            raise RuntimeError(f"closure {self.describe()} was not reset")
        g0, g1 = self.first_member, self.first_member + self.members
        total = max(int(self.ensemble_members or 0), g1)
        size = total if chunk is None else int(chunk)
        calls = []
        for k in range(g0 // size, (g1 - 1) // size + 1):
            a, b = max(k * size, g0), min((k + 1) * size, g1)
            calls.append((slice(a - g0, b - g0), min(size, total - k * size), a - k * size))
        return calls

    def batched(self, fn, x, chunk: int | None, generators=None):
        """``fn(inputs, generators)`` over :meth:`network_calls`: ``x`` (members, …) torch inputs,
        or a tuple of such tensors (``fn`` then gets the tuple), and the members' ``generators``
        (or None) padded to each call's size (zeros, and generators seeded 0); the outputs of
        this closure's members concatenated (a tuple of tensors where ``fn`` returns one)."""
        import torch
        single = torch.is_tensor(x)
        xs = (x,) if single else tuple(x)
        outs = []
        for members, size, offset in self.network_calls(chunk):
            parts = [t[members] for t in xs]
            count = members.stop - members.start
            gb = None if generators is None else list(generators[members])
            if count != size:
                padded = []
                for t in parts:
                    pad = t.new_zeros((size,) + tuple(t.shape[1:]))
                    pad[offset:offset + count] = t
                    padded.append(pad)
                parts = padded
                if gb is not None:
                    filler = [torch.Generator(device=xs[0].device).manual_seed(0)
                              for _ in range(size - len(gb))]
                    gb = filler[:offset] + gb + filler[offset:]
            out = fn(parts[0] if single else tuple(parts), gb)
            keep = slice(offset, offset + count)
            outs.append(out[keep] if torch.is_tensor(out) else tuple(o[keep] for o in out))
        if torch.is_tensor(outs[0]):
            return torch.cat(outs)
        return tuple(torch.cat(o) for o in zip(*outs))

    # ------------------------------------------------------------------ restarts
    def get_state(self) -> dict[str, Any]:
        """JSON-able state for restarts: class, every and each member generator's state."""
        return {"class": type(self).__name__, "every": int(self.every),
                "rng": None if self.rng is None else [r.bit_generator.state for r in self.rng]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`get_state` (call after ``reset``, as the solver does)."""
        cls = state.get("class")
        if cls is not None and cls != type(self).__name__:
            raise ValueError(f"closure state was saved by {cls}, not {type(self).__name__}")
        if "every" in state:
            self.every = int(state["every"])
        rng = state.get("rng")
        if rng is None:
            return
        if self.rng is None or len(rng) != len(self.rng):
            have = "no generators (not reset)" if self.rng is None else f"{len(self.rng)} members"
            raise ValueError(f"closure state holds {len(rng)} generator states; closure "
                             f"{self.describe()} has {have}")
        for r, s in zip(self.rng, rng):
            r.bit_generator.state = s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={self.every})"


def _bound_arguments(cls, args, kwargs) -> dict | None:
    """The constructor arguments of ``cls(*args, **kwargs)`` by name, defaults filled in and
    ``**kwargs`` flattened; None if they do not fit (``__init__`` then raises its own error)."""
    sig = inspect.signature(cls.__init__)
    try:
        bound = sig.bind(None, *args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    params = sig.parameters
    out = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue                                      # self
        kind = params[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _is_module(v) -> bool:
    return callable(getattr(v, "state_dict", None)) and callable(getattr(v, "parameters", None))


def _module_digest(module) -> str:
    import torch
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _describe(v) -> Any:
    """A constructor argument as JSON for :meth:`Closure.config`: plain values as they are,
    arrays and torch modules as hashes, other objects by their type."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (list, tuple)):
        return [_describe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _describe(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return {"array": list(a.shape), "dtype": a.dtype.str,
                "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if _is_module(v):
        return {"module": type(v).__qualname__, "sha256": _module_digest(v)}
    return {"object": f"{type(v).__module__}.{type(v).__qualname__}"}


class NoClosure(Closure):
    """C = 0: a run with it matches a run without a closure bit for bit, so it measures the cost
    of the hook itself (the state handed over, the transform of the returned term)."""

    name = "none"

    def compute(self, state: ClosureState) -> np.ndarray:
        return np.zeros(state.vorticity.shape, dtype=np.float64)
