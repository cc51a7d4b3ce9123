"""Solver classes by name, and the restart writer, shared by the solver modules and ``solvers.io``.

Solver modules register their classes here (``@register_solver``) and ``solvers.io`` registers its
restart writer (``register_restart_writer``), so that neither imports the other: ``io`` rebuilds a
saved solver through :func:`solver_class`, and a solver that blows up writes its restart through
:func:`write_restart`. ``import solvers`` imports both sides.
"""
from __future__ import annotations

from typing import Callable

_SOLVERS: dict[str, type] = {}
_restart_writer: Callable | None = None


def register_solver(cls: type) -> type:
    """Make restart files of solver class ``cls`` readable (by its ``__name__``); a class
    decorator."""
    if not isinstance(cls, type):
        raise TypeError(f"register_solver expects a class, got {cls!r}")
    _SOLVERS[cls.__name__] = cls
    return cls


def solver_classes() -> dict[str, type]:
    """The registered solver classes by name (a copy)."""
    return dict(_SOLVERS)


def register_restart_writer(writer: Callable) -> Callable:
    """Set the function ``writer(solver, path) -> Path`` that writes restart files."""
    global _restart_writer
    if not callable(writer):
        raise TypeError(f"register_restart_writer expects a callable, got {writer!r}")
    _restart_writer = writer
    return writer


def write_restart(solver, path):
    """Write a restart file of ``solver`` at ``path`` with the registered writer; returns its
    path. RuntimeError if no writer is registered (``import solvers.io`` registers it)."""
    if _restart_writer is None:
        raise RuntimeError("no restart writer is registered; import solvers.io first")
    return _restart_writer(solver, path)
