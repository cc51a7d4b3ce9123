"""Model files of the SLT closure: ``<stem>.pt`` (the state_dict, loaded with
``weights_only=True``) and ``<stem>.json`` (the model card: format ``hybrid-slt-closure-card``,
version 1, architecture ``config``, normalisation ``stats`` of ω̄ and C, ``grid`` (n, L), data,
training, metrics, and the name and shape of every tensor).

Written and read with the model-file helpers every model shares (:mod:`closures.ldm.files`): a
missing, corrupt or mismatched card or weights file raises :class:`ModelFileError` naming the
file.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..ldm.files import (ModelFileError, build_model, read_model_card, resolve_model_path,
                         save_model_files)
from ..ldm.model import check_stats
from .closure_model import SLTClosureModel

__all__ = ["save_slt_closure", "load_slt_closure", "read_slt_closure_card", "read_closure_card",
           "load_closure_model", "CARD_FORMAT", "CARD_VERSION", "ModelFileError"]

CARD_FORMAT = "hybrid-slt-closure-card"
CARD_VERSION = 1


def save_slt_closure(model: SLTClosureModel, path_stem, card: dict | None = None) -> tuple[Path,
                                                                                          Path]:
    """Write ``<stem>.pt`` and ``<stem>.json`` (``card`` plus format, version, config, stats,
    grid and the state_dict's shapes), each atomically. Returns the two paths."""
    return save_model_files(model, path_stem, card, CARD_FORMAT, CARD_VERSION,
                            grid={"n": model.n, "L": model.L})


def read_slt_closure_card(path_or_name) -> dict:
    """The checked card of a saved SLT closure (a path, or a shipped model's name)."""
    return read_model_card(resolve_model_path(path_or_name), CARD_FORMAT, CARD_VERSION,
                           lambda card: check_stats(card["stats"]))


def _is_slt_closure(stem) -> bool:
    """Whether the card of ``stem`` says it is an SLT closure's (``format``); False when it is
    unreadable, so that the L-CDM reader names the file and the problem."""
    from ..ldm.files import model_paths
    try:
        card = json.loads(model_paths(stem)[1].read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == CARD_FORMAT


def read_closure_card(path_or_name) -> dict:
    """The checked card of a saved closure model of either kind, an SLT closure or an L-CDM
    (:func:`closures.ldm.read_card`), told apart by the card's ``format``."""
    from ..ldm.files import read_card
    stem = resolve_model_path(path_or_name)
    return read_slt_closure_card(stem) if _is_slt_closure(stem) else read_card(stem)


def load_closure_model(path_or_name, device="cpu"):
    """The saved closure model of either kind (:func:`load_slt_closure` or
    :func:`closures.ldm.load_model`), told apart by the card's ``format``."""
    from ..ldm.files import load_model
    stem = resolve_model_path(path_or_name)
    return (load_slt_closure if _is_slt_closure(stem) else load_model)(stem, device)


def load_slt_closure(path_or_name, device="cpu") -> SLTClosureModel:
    """The :class:`SLTClosureModel` saved by :func:`save_slt_closure` (a path to its stem or
    either file, or a shipped model's name), in eval mode, with ``model.card`` set;
    :class:`ModelFileError` naming the file for a missing, corrupt or mismatched card or weights
    file."""
    stem = resolve_model_path(path_or_name)
    return build_model(SLTClosureModel, stem, read_slt_closure_card(stem), device)
