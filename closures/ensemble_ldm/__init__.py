"""The latent diffusion ensemble generator: many members of the zonal jets U(y, t) around one
conditioning run. A translation-equivariant VAE compresses each profile; a DDPM in its latent
space learns the residual z − z_c between an ensemble member and the conditioning run, either
step by step ('autoregressive') or over a whole window at once ('window').

Modules: :mod:`~closures.ensemble_ldm.model` (:class:`EnsembleLDM`),
:mod:`~closures.ensemble_ldm.data` (DNS ensembles from common states),
:mod:`~closures.ensemble_ldm.train` (:func:`train_ensemble_ldm`),
:mod:`~closures.ensemble_ldm.files` (weights and model cards),
:mod:`~closures.ensemble_ldm.generate` (:class:`EnsembleGenerator`, :func:`load_generator`),
:mod:`~closures.ensemble_ldm.mean` (:class:`EnsembleMean`: the ensemble mean from the
conditioning run, which the members can be centred on).

>>> from closures.ensemble_ldm import load_generator
>>> gen = load_generator("path/to/model")                 # or a shipped model's name
>>> X = gen.generate(U_c, members=100, seed=0)            # (T, n) -> (members, T, n)
"""
from .data import CONDITIONING, read_starts, split_starts
from .files import (CARD_FORMAT, ModelFileError, load_ensemble_ldm, read_ensemble_ldm_card,
                    save_ensemble_ldm)
from .generate import SAMPLE_STEPS, EnsembleGenerator, load_generator
from .mean import (EnsembleMean, fit_ensemble_mean, load_ensemble_mean, mean_distance,
                   read_ensemble_mean_card, save_ensemble_mean)
from .model import MODES, WINDOW_HORIZON, EnsembleLDM
from .train import offline_metrics, train_ensemble_ldm

__all__ = ["EnsembleLDM", "EnsembleGenerator", "load_generator", "train_ensemble_ldm",
           "save_ensemble_ldm", "load_ensemble_ldm", "read_ensemble_ldm_card", "read_starts",
           "split_starts", "offline_metrics", "ModelFileError", "CARD_FORMAT", "CONDITIONING",
           "MODES", "SAMPLE_STEPS", "WINDOW_HORIZON", "EnsembleMean", "fit_ensemble_mean",
           "save_ensemble_mean", "load_ensemble_mean", "read_ensemble_mean_card",
           "mean_distance"]
