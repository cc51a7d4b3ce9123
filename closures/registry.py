"""Closures by name: ``get_closure('smagorinsky', cs=0.2)``, or a user class by import path.

Built-in names: 'none' (:class:`~closures.base.NoClosure`), 'smagorinsky', 'leith',
'dynamic-smagorinsky'
(:mod:`closures.classical`) and 'oracle' (:class:`~closures.oracle.OracleClosure`, which needs
``times`` and ``terms``), 'ldm' and 'pcdm' (:mod:`closures.ldm`; by default the shipped
models 'ldm-kolmogorov' and 'pcdm-kolmogorov', else ``path=``), 'ldm-mean' (the L-CDM's
deterministic mean network μ(ω̄) alone, same weights) and 'slt-closure' (the SLT closure,
:mod:`closures.slt.closure`; ``path=`` a trained model). Other modules add theirs with
``@register_closure('name')``. A name of the form ``'package.module:ClassName'`` imports the
module and instantiates the class, so user closures need no registration (the module must be
importable, i.e. on ``sys.path``).
"""
from __future__ import annotations

import importlib
from typing import Callable

from .base import NoClosure
from .classical import DynamicSmagorinsky, Leith, Smagorinsky
from .oracle import OracleClosure

_REGISTRY: dict[str, type] = {}


def _key(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a closure name must be a non-empty string, got {name!r}")
    return name.strip().lower()


def register_closure(name: str) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available as ``get_closure(name, ...)`` (case-insensitive).

    Registering a different class under a name already taken raises ValueError; registering the
    same class again (a module reloaded) is allowed.
    """
    key = _key(name)
    if ":" in key:
        raise ValueError(f"closure name {name!r} must not contain ':' (reserved for import paths)")

    def deco(cls: type) -> type:
        old = _REGISTRY.get(key)
        if old is not None and old is not cls and (old.__module__, old.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise ValueError(f"closure name {key!r} is already registered to "
                             f"{old.__module__}.{old.__qualname__}")
        _REGISTRY[key] = cls
        return cls

    return deco


def available_closures() -> list[str]:
    """The registered closure names, sorted."""
    return sorted(_REGISTRY)


def _import_class(spec: str):
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"closure import path must look like 'package.module:ClassName', got "
                         f"{spec!r}")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"cannot import module {module!r} for closure {spec!r}: {e}") from e
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module!r} has no attribute {attr!r} (closure {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r} is not a class or factory (got {type(obj).__name__})")
    return obj


def get_closure(name: str, **kwargs):
    """A new closure: the registered ``name`` or an import path ``'module:Class'``, constructed
    with ``kwargs``. Unknown names raise ValueError listing the known ones."""
    if isinstance(name, str) and ":" in name:
        factory = _import_class(name.strip())
    else:
        factory = _REGISTRY.get(_key(name))
        if factory is None:
            raise ValueError(f"unknown closure {name!r}; known closures: "
                             f"{', '.join(available_closures())} (or 'package.module:ClassName')")
    closure = factory(**kwargs)
    missing = [a for a in ("every", "reset") if not hasattr(closure, a)]
    if missing or not callable(closure):
        what = ", ".join(missing + ([] if callable(closure) else ["__call__"]))
        raise TypeError(f"closure {name!r} built {type(closure).__name__}, which lacks {what} "
                        f"of the closure hook protocol (solvers.base.ClosureProtocol)")
    return closure


register_closure("none")(NoClosure)
register_closure("smagorinsky")(Smagorinsky)
register_closure("leith")(Leith)
register_closure("dynamic-smagorinsky")(DynamicSmagorinsky)
register_closure("oracle")(OracleClosure)


def _lazy(attr: str, module: str = ".ldm") -> Callable:
    """A factory importing ``module`` (closures.ldm) on first use (torch is heavy)."""
    return lambda **kw: getattr(importlib.import_module(module, __package__), attr)(**kw)


register_closure("ldm")(_lazy("LatentDiffusionClosure"))
register_closure("pcdm")(_lazy("PhysicalDiffusionClosure"))
register_closure("ldm-mean")(_lazy("MeanNetworkClosure"))
register_closure("slt-closure")(_lazy("SLTClosure", ".slt.closure"))
