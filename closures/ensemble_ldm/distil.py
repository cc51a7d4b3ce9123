"""Progressive distillation of the ensemble generator's sampler: :func:`distil_ensemble_ldm`.

A generator samples each block of residuals with deterministic DDIM on S steps τ_S > … > τ_1
(then to ᾱ = 1). Progressive distillation (Salimans & Ho 2022) trains a student, started from
the teacher's weights, to do in one DDIM step what the teacher does in k: on the student's steps
τ'_i = τ_{1+(i−1)k}… (every k-th of the teacher's, from the top; S/k of them), from x at τ'_i the
student's step must land where k teacher steps land (at τ'_{i−1}, or at x̂_0 after the last).
The student's sampler is then DDIM on its own steps (the card's ``sampler.timesteps``): S/k
network passes per block instead of S. Repeating (50 → 25 → 5 → 1, say) maps noise to residual
blocks in a few passes; what is kept is the teacher's deterministic map from the noise, so the
members' spread is that of the teacher's sampler.

Loss, for a training window x_0 (the scaled residuals of a DNS member; the context and z_c as in
training), a student step i drawn uniformly and x_τ = √ᾱ_τ x_0 + √(1 − ᾱ_τ) ε at τ = τ'_i: the
teacher's k steps from x_τ give x_p at the next student step p (x̂_0 when p = 0); the x̂_0 that
takes one DDIM step from x_τ to x_p is

    x̃_0 = (x_p − (σ_p/σ_τ) x_τ) / (α_p − (σ_p/σ_τ) α_τ),   α = √ᾱ, σ = √(1 − ᾱ),

and the loss is max(ᾱ_τ/(1 − ᾱ_τ), 1)·mean (x̂_0^student − x̃_0)² ('truncated SNR' weighting),
averaged over the batch. The teacher's steps bound x̂_0 as generation does (:data:`CLIP`). The VAE,
the normalisation and the scales are the teacher's, frozen; only the denoiser trains.

Files, checkpoints, resume, logs and the card are those of :func:`train_ensemble_ldm`
(:func:`closures.fit.fit`); the card adds ``distillation`` (teacher, factor, steps) and the
sampler's ``timesteps``, and carries the teacher's ``online`` settings over.
"""
from __future__ import annotations

import copy

import torch

from solvers.validate import integer, number

from ..fit import fit, offline_evaluation, run_signature, save_trained, training_metrics
from ..nn.diffusion import ddim_timesteps
from ..train import _threads_scoped, train_paths
from .data import ResidualWindows, read_starts, split_starts
from .files import load_ensemble_ldm, save_ensemble_ldm
from .generate import SAMPLE_STEPS
from .model import CLIP, EnsembleLDM
from .train import encode_starts, offline_metrics

__all__ = ["distil_ensemble_ldm", "teacher_timesteps", "student_timesteps", "distillation_loss",
           "landing_x0"]


def teacher_timesteps(model: EnsembleLDM) -> list[int]:
    """The DDIM steps the model samples with by default: its card's ``timesteps`` (a distilled
    model), else the 'leading' steps of its card's step count (default
    :data:`~closures.ensemble_ldm.generate.SAMPLE_STEPS`)."""
    sampler = (getattr(model, "card", {}) or {}).get("sampler") or {}
    if sampler.get("method", "ddim") != "ddim":
        raise ValueError(f"the teacher samples with {sampler['method']!r}: distillation needs a "
                         f"DDIM teacher")
    if sampler.get("timesteps"):
        return model.ddpm.check_timesteps(sampler["timesteps"])
    return ddim_timesteps(model.ddpm.steps, sampler.get("steps") or SAMPLE_STEPS)


def student_timesteps(taus: list[int], factor: int) -> list[int]:
    """Every ``factor``-th of the teacher's descending steps ``taus``, from the top; ValueError
    unless ``factor`` divides their number."""
    factor = integer("factor", factor, 2)
    if len(taus) % factor:
        raise ValueError(f"factor {factor} does not divide the teacher's {len(taus)} steps")
    return taus[::factor]


def distillation_loss(ddpm, student_eps, teacher_eps, taus: list[int], factor: int,
                      x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The loss of one batch of samples x0 (B, …) of what the DDPM ``ddpm`` diffuses (module
    docstring): ``student_eps(x, t)`` and ``teacher_eps(x, t)`` the two noise predictors,
    ``taus`` the teacher's steps; the student's step and the noise drawn from ``generator`` in
    that order."""
    B, dev = x0.shape[0], x0.device
    gdev = dev if generator is None else generator.device
    i = torch.randint(0, len(taus) // factor, (B,), generator=generator, device=gdev).to(dev)
    grid = torch.tensor(list(taus) + [0], device=dev)
    tau = grid[i * factor]
    eps = torch.randn(x0.shape, generator=generator, device=gdev, dtype=x0.dtype).to(dev)
    x_tau = ddpm.q_sample(x0, tau, eps)
    with torch.no_grad():
        x = x_tau
        for j in range(factor):
            x = ddpm.ddim_rows(teacher_eps, x, grid[i * factor + j], grid[i * factor + j + 1],
                               CLIP)
    want = landing_x0(ddpm, x_tau, x, tau, grid[(i + 1) * factor])
    ab = ddpm._at(ddpm.alpha_bar, tau, x0)
    pred = (x_tau - (1 - ab).sqrt() * student_eps(x_tau, tau)) / ab.sqrt()
    weight = (ab / (1 - ab)).clamp(min=1.0).reshape(B)
    return (weight * ((pred - want) ** 2).reshape(B, -1).mean(dim=1)).mean()


def landing_x0(ddpm, x_tau: torch.Tensor, x_prev: torch.Tensor, tau: torch.Tensor,
               prev: torch.Tensor) -> torch.Tensor:
    """The x̂_0 with which one DDIM step from x_τ at steps ``tau`` (B,) lands on x_prev at steps
    ``prev`` (B,; 0: x̂_0 = x_prev): (x_p − (σ_p/σ_τ) x_τ)/(α_p − (σ_p/σ_τ) α_τ)."""
    ab, ab_p = ddpm._at(ddpm.alpha_bar, tau, x_tau), ddpm._at(ddpm.alpha_bar, prev, x_tau)
    ratio = ((1 - ab_p) / (1 - ab)).sqrt()
    return (x_prev - ratio * x_tau) / (ab_p.sqrt() - ratio * ab.sqrt())


@_threads_scoped
def distil_ensemble_ldm(teacher, data, out, *, factor: int = 2, epochs: int = 50,
                        batch: int = 200, lr: float = 1e-4, gamma: float = 1.0,
                        val_fraction: float = 0.1, seed: int = 0, threads: int | None = None,
                        resume: bool = False, progress: bool = True, checkpoint_every: int = 1,
                        stop_after: int | None = None, samples_eval: int = 8,
                        eval_starts: int = 2, command: str | None = None,
                        device: str = "cpu") -> dict:
    """Distil ``teacher`` (a name, path or :class:`EnsembleLDM` with its card) into a student
    that samples in 1/``factor`` of its DDIM steps, on the residual windows of ``data`` (as
    :func:`train_ensemble_ldm` reads it), and save it to ``out`` (module docstring). Returns
    the metrics (``epochs``, ``training_time_s``, ``final_train``, ``final_val``, ``offline``
    with the student's steps, ``paths``)."""
    if not isinstance(teacher, EnsembleLDM):
        teacher = load_ensemble_ldm(teacher)
    factor = integer("factor", factor, 2)
    epochs = integer("epochs", epochs, 1)
    batch = integer("batch", batch, 1)
    lr = number("lr", lr, above=0)
    gamma = number("gamma", gamma, above=0, at_most=1)
    val_fraction = number("val_fraction", val_fraction, at_least=0, below=1)
    seed = integer("seed", seed, 0)
    samples_eval = integer("samples_eval", samples_eval, 2)
    eval_starts = integer("eval_starts", eval_starts, 1)
    taus = teacher_timesteps(teacher)
    student_taus = student_timesteps(taus, factor)
    U, desc = read_starts(data)
    if U.shape[3] != teacher.points:
        raise ValueError(f"data: {U.shape[3]}-point profiles for a teacher of {teacher.points}")
    tr, va = split_starts(U, val_fraction)
    dev = torch.device(device)
    teacher = teacher.to(dev).eval().requires_grad_(False)
    student = copy.deepcopy(teacher)
    student.denoiser.requires_grad_(True)
    K, H = teacher.context, teacher.horizon
    windows = {k: ResidualWindows(encode_starts(teacher, teacher.normalise(u), device=dev), K, H)
               for k, u in (("train", tr), ("val", va))}
    card = getattr(teacher, "card", {}) or {}
    source = {"teacher": card.get("name"), "teacher_steps": taus, "factor": factor}
    training = dict(epochs=epochs, batch=batch, lr=lr, gamma=gamma, val_fraction=val_fraction,
                    seed=seed, optimizer="Adam", scheduler="LambdaLR(gamma^epoch)",
                    device=str(dev), threads=threads, distillation=source)
    signature = run_signature(student.config, training, stats=student.stats, data=desc)
    opt = torch.optim.Adam(student.denoiser.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: gamma ** e)
    paths = train_paths(out)

    def batch_terms(split: str, idx, generator):
        if isinstance(idx, slice):
            idx = torch.arange(idx.start, idx.stop)
        ctx, tgt, cond = (v.to(dev) for v in windows[split].batch(idx))
        loss = distillation_loss(teacher.ddpm, student._eps_fn(ctx, cond),
                                 teacher._eps_fn(ctx, cond), taus, factor,
                                 tgt / teacher.residual_scale, generator)
        return {"distil": loss}, loss

    history, elapsed, stopped = fit(
        student, opt, sched, paths, signature, epochs=epochs, batch=batch, seed=seed,
        n_train=len(windows["train"]), n_val=len(windows["val"]), batch_terms=batch_terms,
        resume=resume,
        checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress,
        desc=f"distil ensemble-ldm/{student.mode}: {len(taus)} → {len(student_taus)} steps")
    if stopped is not None:
        return stopped
    sampler = {"method": "ddim", "steps": len(student_taus), "eta": 0.0,
               "timesteps": student_taus}
    student.card = {"sampler": sampler}
    on, split = (va, "val") if va.shape[0] else (tr, "train")
    offline = offline_evaluation(student, lambda: offline_metrics(
        student, on, samples=samples_eval, steps=len(student_taus), max_starts=eval_starts,
        seed=seed, device=dev), split)
    metrics = training_metrics(epochs, elapsed, history, offline=offline)
    desc.update(train_starts=int(tr.shape[0]), val_starts=int(va.shape[0]),
                train_windows=len(windows["train"]), val_windows=len(windows["val"]))
    extra = {"online": card["online"]} if card.get("online") else {}
    return save_trained(student, save_ensemble_ldm, out, paths, metrics, {
        "mode": student.mode, "command": command, "data": desc, "training": training,
        "training_time_s": elapsed, "metrics": metrics, "sampler": sampler,
        "distillation": source, **extra})
