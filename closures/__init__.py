"""Closure models for the solvers' closure hook: base class, classical eddy viscosities
(Smagorinsky, Leith, dynamic Smagorinsky), the oracle (stored exact subgrid term), the mean network
of the latent diffusion closure as a deterministic closure, and a registry of closures by name.

Imports ``solvers`` (never ``hybrid``). ``import closures`` loads no torch: the network closures
(:class:`MeanNetworkClosure`) are imported from :mod:`closures.ldm` on first use."""
from .base import Closure, NoClosure, closure_state
from .classical import DynamicSmagorinsky, Leith, Smagorinsky
from .oracle import OracleClosure
from .registry import available_closures, get_closure, register_closure

__all__ = ["Closure", "DynamicSmagorinsky", "Leith", "MeanNetworkClosure", "NoClosure",
           "OracleClosure", "Smagorinsky", "available_closures", "closure_state", "get_closure",
           "register_closure"]

_LAZY = {"MeanNetworkClosure": "closures.ldm"}       # names whose modules import torch


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'closures' has no attribute {name!r}")
