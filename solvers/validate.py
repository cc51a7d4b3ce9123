"""The one argument check of every layer: :func:`integer` and :func:`number` return the value or
raise ValueError naming the argument and the allowed range (``n must be an even integer ≥ 8, got
7``). The command line's argument types (:mod:`hybrid.cli.arguments`) use the same two."""
from __future__ import annotations

import math

import numpy as np


def integer_rule(at_least=None, at_most=None, even: bool = False, allow_none: bool = False) -> str:
    """The words of a rule: 'an even integer ≥ 8', 'an integer in [1, 16]', '… or None'."""
    kind = f"{'an even' if even else 'an'} integer"
    if at_least is not None and at_most is not None:
        kind += f" in [{at_least}, {at_most}]"
    elif at_least is not None:
        kind += f" ≥ {at_least}"
    elif at_most is not None:
        kind += f" ≤ {at_most}"
    return kind + (" or None" if allow_none else "")


def integer(name: str, v, at_least: int | None = 1, at_most: int | None = None, *,
            even: bool = False, allow_none: bool = False) -> int | None:
    """``v`` as an int, or ValueError naming ``name`` unless it is an integer (not a bool) in
    [``at_least``, ``at_most``] (even, with ``even``; None passes with ``allow_none``)."""
    if v is None and allow_none:
        return None
    ok = (not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))
          and (at_least is None or v >= at_least) and (at_most is None or v <= at_most)
          and not (even and v % 2))
    if not ok:
        raise ValueError(f"{name} must be {integer_rule(at_least, at_most, even, allow_none)}, "
                         f"got {v!r}")
    return int(v)


def number_rule(above=None, at_least=None, below=None, at_most=None,
                allow_none: bool = False) -> str:
    """The words of a rule: 'a finite number > 0', 'a number in [0, 1)', '… or None'."""
    lo = ("(", above) if above is not None else ("[", at_least) if at_least is not None else None
    hi = (")", below) if below is not None else ("]", at_most) if at_most is not None else None
    if lo and hi:
        kind = f"a number in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    elif lo:
        kind = f"a finite number {'>' if lo[0] == '(' else '≥'} {lo[1]:g}"
    elif hi:
        kind = f"a finite number {'<' if hi[0] == ')' else '≤'} {hi[1]:g}"
    else:
        kind = "a finite number"
    return kind + (" or None" if allow_none else "")


def number(name: str, v, *, above: float | None = None, at_least: float | None = None,
           below: float | None = None, at_most: float | None = None,
           allow_none: bool = False) -> float | None:
    """``v`` as a float, or ValueError naming ``name`` unless it is a finite real number (not a
    bool) within the bounds given (``above``/``below`` exclusive, ``at_least``/``at_most``
    inclusive; None passes with ``allow_none``)."""
    if v is None and allow_none:
        return None
    try:
        x = math.nan if isinstance(v, (bool, np.bool_, str, bytes)) else float(v)
    except (TypeError, ValueError):
        x = math.nan
    ok = (math.isfinite(x) and (above is None or x > above) and (at_least is None or x >= at_least)
          and (below is None or x < below) and (at_most is None or x <= at_most))
    if not ok:
        raise ValueError(f"{name} must be {number_rule(above, at_least, below, at_most, allow_none)}"
                         f", got {v!r}")
    return x


def positive_number(name: str, v, allow_zero: bool = False, allow_none: bool = False):
    """``number`` for the common case: finite and > 0 (≥ 0 with ``allow_zero``)."""
    if allow_zero:
        return number(name, v, at_least=0, allow_none=allow_none)
    return number(name, v, above=0, allow_none=allow_none)
