"""Model files of the stochastic latent transformer: ``<stem>.pt`` (the state_dict) and
``<stem>.json`` (the model card: format ``hybrid-slt-card``, architecture ``config``,
normalisation ``stats``, data, training, metrics, and the name and shape of every tensor).
Card version 1 is the SLT; version 2 adds the parameter-conditioned SLT
(:class:`~closures.slt.conditioned.ConditionedSLT`), whose ``config`` names its ``parameters``
(and ``conditioning``, ``cond_hidden``, ``frozen``) and whose ``stats`` hold ``parameters``, the
normalisation (name → ``centre``, ``scale``). Version 3 adds the point-token emulator
(:class:`~closures.slt.local.LocalSLT`, ``config['kind'] == 'local'``), version 4 the
conditioned point-token emulator (:class:`~closures.slt.local_conditioned.ConditionedLocalSLT`:
both ``kind`` and ``parameters``). Each model is written
with the lowest version that describes it, so a model that an older reader can use still reads
there.

Written and read with the model-file helpers every model shares (:mod:`closures.ldm.files`).
"""
from __future__ import annotations

from pathlib import Path

from ..ldm.files import (ModelFileError, build_model, read_model_card, resolve_model_path,
                         save_model_files)
from .conditioned import ConditionedSLT, check_conditioned_stats, is_conditioned_config
from .local import LocalSLT, is_local_config
from .local_conditioned import ConditionedLocalSLT
from .model import SLT, check_stats

__all__ = ["save_slt", "load_slt", "read_slt_card", "CARD_FORMAT", "CARD_VERSION",
           "ModelFileError"]

CARD_FORMAT = "hybrid-slt-card"
CARD_VERSION = 4   # the newest card read here: 1 SLT, 2 ConditionedSLT, 3 LocalSLT, 4 both


def save_slt(model: SLT, path_stem, card: dict | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.pt`` and ``<stem>.json`` (``card`` plus format, version, config, stats,
    state_dict shapes), each atomically; an SLT, a ConditionedSLT, a LocalSLT or a
    ConditionedLocalSLT. Returns the two paths."""
    version = 4 if isinstance(model, ConditionedLocalSLT) else 3 if isinstance(
        model, LocalSLT) else 2 if isinstance(model, ConditionedSLT) else 1
    return save_model_files(model, path_stem, card, CARD_FORMAT, version)


def read_slt_card(path_or_name) -> dict:
    """The checked card of a saved SLT (a path, or a shipped model's name)."""
    return read_model_card(resolve_model_path(path_or_name), CARD_FORMAT, CARD_VERSION,
                           _check_card_stats)


def _check_card_stats(card: dict) -> dict:
    if is_conditioned_config(card["config"]):
        return check_conditioned_stats(card["stats"], card["config"]["parameters"])
    return check_stats(card["stats"])


def load_slt(path_or_name, device="cpu") -> SLT:
    """The SLT, ConditionedSLT, LocalSLT or ConditionedLocalSLT saved by :func:`save_slt` (a
    path to its stem or either file, or a shipped model's name), in eval mode, with
    ``model.card`` set; :class:`ModelFileError` naming the file for a missing, corrupt or
    mismatched card or weights file."""
    stem = resolve_model_path(path_or_name)
    card = read_slt_card(stem)
    config = card["config"]
    local, conditioned = is_local_config(config), is_conditioned_config(config)
    cls = (ConditionedLocalSLT if conditioned else LocalSLT) if local else \
        ConditionedSLT if conditioned else SLT
    return build_model(cls, stem, card, device)
