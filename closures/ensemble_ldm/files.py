"""Model files of the ensemble generator: ``<stem>.pt`` (the state_dict, with the latent and
residual scales) and ``<stem>.json`` (the model card: format ``hybrid-ensemble-ldm-card``,
architecture ``config``, normalisation ``stats``, data, training, sampler defaults, metrics, and
the name and shape of every tensor).

Written and read with the model-file helpers every model shares (:mod:`closures.ldm.files`).
"""
from __future__ import annotations

from pathlib import Path

from ..ldm.files import (ModelFileError, build_model, read_model_card, resolve_model_path,
                         save_model_files)
from ..slt.model import check_stats
from .model import EnsembleLDM

__all__ = ["save_ensemble_ldm", "load_ensemble_ldm", "read_ensemble_ldm_card", "CARD_FORMAT",
           "CARD_VERSION", "ModelFileError"]

CARD_FORMAT = "hybrid-ensemble-ldm-card"
CARD_VERSION = 1


def save_ensemble_ldm(model: EnsembleLDM, path_stem, card: dict | None = None) -> tuple[Path,
                                                                                        Path]:
    """Write ``<stem>.pt`` and ``<stem>.json`` (``card`` plus format, version, config, stats and
    the state_dict's shapes), each atomically. Returns the two paths."""
    return save_model_files(model, path_stem, card, CARD_FORMAT, CARD_VERSION)


def read_ensemble_ldm_card(path_or_name) -> dict:
    """The checked card of a saved generator (a path, or a shipped model's name)."""
    return read_model_card(resolve_model_path(path_or_name), CARD_FORMAT, CARD_VERSION,
                           lambda card: check_stats(card["stats"]))


def load_ensemble_ldm(path_or_name, device="cpu") -> EnsembleLDM:
    """The generator saved by :func:`save_ensemble_ldm` (a path to its stem or either file, or a
    shipped model's name), in eval mode, with ``model.card`` set; :class:`ModelFileError` naming
    the file for a missing, corrupt or mismatched card or weights file."""
    stem = resolve_model_path(path_or_name)
    return build_model(EnsembleLDM, stem, read_ensemble_ldm_card(stem), device)
