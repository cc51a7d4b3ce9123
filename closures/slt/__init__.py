"""The Stochastic Latent Transformer (SLT): a stochastic emulator of zonal-mean profiles U(y, t).

Modules: :mod:`~closures.slt.model` (the autoencoder + stochastic transformer and its training
objective), :mod:`~closures.slt.train` (:func:`train_slt`), :mod:`~closures.slt.rollout`
(:class:`Emulator`, :func:`load_emulator`), :mod:`~closures.slt.files` (weights and model cards),
:mod:`~closures.slt.conditioned` (:class:`ConditionedSLT`, conditioned on PDE parameters),
:mod:`~closures.slt.local` (:class:`LocalSLT`, the point-token emulator that runs on profiles of
any length), :mod:`~closures.slt.local_conditioned` (:class:`ConditionedLocalSLT`, both) and
:mod:`~closures.slt.train_conditioned` (:func:`train_conditioned_slt`).

The SLT closure of the solver's hook (2D fields; 'slt-closure'): :mod:`~closures.slt.closure`
(:class:`SLTClosure`), :mod:`~closures.slt.closure_model` (:class:`SLTClosureModel`),
:mod:`~closures.slt.closure_files` and :mod:`~closures.slt.train_closure`
(:func:`train_slt_closure`).

>>> from closures.slt import load_emulator
>>> em = load_emulator("path/to/model")                    # or a shipped model's name
>>> U = em.rollout(history, steps=1000, members=100, seed=0)   # (L, n) -> (members, steps, n)
>>> U = load_emulator("path/to/conditioned").rollout(history, 1000, params={"beta": 8.0})
"""
from .closure import SLTClosure
from .closure_files import load_slt_closure, read_slt_closure_card, save_slt_closure
from .closure_model import SLTClosureModel
from .conditioned import ConditionedSLT, ConditionedTransformer, parameter_normalisation
from .local import LocalSLT
from .local_conditioned import ConditionedLocalSLT
from .files import CARD_FORMAT, ModelFileError, load_slt, read_slt_card, save_slt
from .model import DEFAULT_WEIGHTS, SLT, StochasticTransformer, ensemble_loss
from .rollout import Emulator, check_compiler, load_emulator
from .train import read_profiles, train_slt
from .train_closure import train_slt_closure
from .train_conditioned import read_parameters, train_conditioned_slt

__all__ = ["SLT", "StochasticTransformer", "Emulator", "load_emulator", "train_slt",
           "save_slt", "load_slt", "read_slt_card", "read_profiles", "ensemble_loss",
           "ModelFileError", "CARD_FORMAT", "DEFAULT_WEIGHTS", "ConditionedSLT",
           "ConditionedTransformer", "LocalSLT", "ConditionedLocalSLT", "train_conditioned_slt",
           "read_parameters", "parameter_normalisation", "SLTClosure", "SLTClosureModel",
           "train_slt_closure", "save_slt_closure", "load_slt_closure", "read_slt_closure_card"]
