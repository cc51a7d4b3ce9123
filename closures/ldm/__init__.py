"""Latent conditional diffusion closure (L-CDM), its physical-space baseline (P-CDM) and its mean
network μ(ω̄) as a deterministic closure.

Modules: :mod:`~closures.ldm.model` (the network and its training objective),
:mod:`~closures.ldm.sampler` (the reverse-SDE sampler and its defaults), :mod:`~closures.ldm.files`
(weights and model cards), :mod:`~closures.ldm.closure` (the closures of the solver's hook).
"""
from .closure import (LatentDiffusionClosure, MeanNetworkClosure, PhysicalDiffusionClosure,
                      card_target, torch_threads)
from .files import (CARD_FORMAT, WEIGHTS_DIR, ModelFileError, load_model, model_paths, read_card,
                    resolve_model_path, save_model, update_card)
from .model import DEFAULT_WEIGHTS, PRECISIONS, SPACES, LatentDiffusionModel, conv_precision
from .sampler import DATA_VAR, RHO, STEPS, T_START, sample_per_member

__all__ = ["LatentDiffusionModel", "LatentDiffusionClosure", "MeanNetworkClosure",
           "ModelFileError", "save_model", "update_card", "read_card", "load_model",
           "model_paths", "sample_per_member", "CARD_FORMAT", "DATA_VAR", "DEFAULT_WEIGHTS",
           "WEIGHTS_DIR", "resolve_model_path", "PhysicalDiffusionClosure", "PRECISIONS",
           "conv_precision", "STEPS", "T_START", "RHO", "SPACES", "card_target", "torch_threads"]
