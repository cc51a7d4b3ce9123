"""Closure models for the solvers' closure hook: base class, classical eddy viscosities, the oracle
(stored exact subgrid term) and a registry of closures by name.

Imports ``solvers`` (never ``hybrid``)."""
from .base import Closure, NoClosure, closure_state
from .classical import Leith, Smagorinsky
from .oracle import OracleClosure
from .registry import available_closures, get_closure, register_closure

__all__ = ["Closure", "Leith", "NoClosure", "OracleClosure", "Smagorinsky", "available_closures",
           "closure_state", "get_closure", "register_closure"]
