"""Initial vorticity fields for ensembles: seeded Gaussian random fields and rest.

Both return physical vorticity of shape (members, n, n), ready for ``solver.set_vorticity``.

Random field. Member m is white noise η_m(x) ~ N(0, 1) from its own generator, coloured in spectral
space and rescaled:

    ζ̂_m(k) = c_m · A(|k|) · η̂_m(k),   A(k)² = k · S(k/k_p),   S(s) = s⁴ exp(−2 s²),

with k = 0 and the modes outside the 2/3 dealiasing mask set to zero. In 2D the energy in a shell of
radius k is E(k) ≈ π k ⟨|ζ̂(k)|²⟩/k² (per unit wavenumber, up to the transform normalisation), so the
expected isotropic energy spectrum is E(k) ∝ S(k/k_p) = (k/k_p)⁴ exp(−2 (k/k_p)²), which peaks at
k = k_p. The constant c_m makes the kinetic energy of the realisation exactly the one requested,

    E = ½⟨|u|²⟩ = ½ Σ_k |ζ̂(k)|²/|k|² / n⁴      (box mean; numpy's unnormalised transforms),

so every member has the same energy but its own random phases and amplitudes. The field has zero
mean and only dealiased modes, so a solver keeps it (and its energy) unchanged in ``set_vorticity``.

Seeding: member m draws from child ``first_member + m`` of ``SeedSequence([seed, 1])``. Children
of a SeedSequence depend only on their spawn index, so member m's field does not depend on how many
members are drawn, and members m0…m0+M−1 of a large ensemble can be drawn on their own (as the
solvers' ``first_member`` allows); the extra entropy word 1 keeps these streams apart from the
solvers' own noise generators, which are children of ``SeedSequence(seed)``.
"""
from __future__ import annotations

import numpy as np

from .diagnostics import energy as _energy
from .grid import Grid
from .validate import integer, number

INITIAL_STREAM = 1      # entropy word that separates initial-condition streams from solver noise


def _check_members(members) -> int:
    return integer("members", members, 1)


def member_generators(seed: int | None, members: int, first_member: int = 0,
                      stream: int | None = None) -> list[np.random.Generator]:
    """One generator per member: children ``first_member`` … ``first_member + members − 1`` of
    ``SeedSequence(seed)``, or of ``SeedSequence([seed, stream])`` with an entropy word that
    keeps a stream apart from the others (the solver's noise has none, initial conditions 1,
    closures 2). Seed None: fresh OS entropy, not reproducible. Member m draws the same numbers
    whatever batch it sits in."""
    members = _check_members(members)
    first_member = integer("first_member", first_member, 0)
    seed = integer("seed", seed, 0, allow_none=True)
    if seed is None:
        ss = np.random.SeedSequence()
    else:
        ss = np.random.SeedSequence(seed if stream is None else [seed, stream])
    children = ss.spawn(first_member + members)[first_member:]
    return [np.random.Generator(np.random.PCG64(child)) for child in children]


def initial_generators(seed: int | None, members: int,
                       first_member: int = 0) -> list[np.random.Generator]:
    """The initial conditions' generators: :func:`member_generators` of stream
    :data:`INITIAL_STREAM`."""
    return member_generators(seed, members, first_member, INITIAL_STREAM)


def spectral_shape(grid: Grid, k_peak: float) -> np.ndarray:
    """Amplitude filter A(|k|) on the rfft half plane (n, n//2+1): A² = k (k/k_p)⁴ exp(−2(k/k_p)²),
    zero at k = 0 and outside the dealiasing mask. ``k_peak`` is in units of 2π/L."""
    k0 = 2 * np.pi / grid.L
    s = grid.kmag / (k_peak * k0)
    amp2 = grid.kmag * s**4 * np.exp(-2.0 * s**2)
    amp2 = np.where(grid.dealias & (grid.k2 > 0), amp2, 0.0)
    return np.sqrt(amp2)


def random_vorticity(grid: Grid, members: int = 1, seed: int | None = 0, k_peak: float = 4.0,
                     energy: float = 0.5, first_member: int = 0) -> np.ndarray:
    """Seeded Gaussian random vorticity, physical (members, n, n), with an isotropic energy spectrum
    E(k) ∝ (k/k_p)⁴ exp(−2(k/k_p)²) peaked at ``k_peak`` (units of 2π/L) and exactly the kinetic
    energy ``energy`` = ½⟨|u|²⟩ in every member (see the module docstring for the construction).

    ``k_peak`` must lie in (0, kmax] with kmax = (n−1)//3 the largest dealiased mode number;
    ``energy`` ≥ 0 (0 gives rest). ``first_member`` offsets the members' seed streams (member m
    of the result is member ``first_member + m`` of the full ensemble).
    """
    members = _check_members(members)
    try:
        k_peak = number("k_peak", k_peak, above=0, at_most=grid.kmax_dealias)
    except ValueError as e:
        raise ValueError(f"{e} (units of 2π/L, the dealiased modes of n={grid.n})") from None
    energy = number("energy", energy, at_least=0)
    rngs = initial_generators(seed, members, first_member)
    amp = spectral_shape(grid, k_peak)
    out = np.empty((members, grid.n, grid.n))
    for m, rng in enumerate(rngs):
        white = rng.standard_normal(grid.shape)
        zh = np.fft.rfft2(white) * amp
        field = np.fft.irfft2(zh, s=grid.shape)
        e = float(_energy(grid, np.fft.rfft2(field)))
        out[m] = field * np.sqrt(energy / e) if e > 0 else 0.0
    return out


def rest(grid: Grid, members: int = 1) -> np.ndarray:
    """The fluid at rest: ζ = 0, physical (members, n, n)."""
    return np.zeros((_check_members(members), grid.n, grid.n))


INITIAL_KINDS = {"random": random_vorticity, "rest": rest}
