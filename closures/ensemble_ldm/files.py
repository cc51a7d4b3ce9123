"""Model files of the ensemble generator: ``<stem>.pt`` (the state_dict, with the latent and
residual scales) and ``<stem>.json`` (the model card: format ``hybrid-ensemble-ldm-card``,
architecture ``config``, normalisation ``stats``, data, training, sampler defaults, metrics, and
the name and shape of every tensor).

Written and read with the package's common model-file helpers
(:func:`closures.ldm.files.write_model_files`, :func:`~closures.ldm.files.read_json_card`,
:func:`~closures.ldm.files.build_model`: weights loaded with ``weights_only=True``, every
problem a :class:`~closures.ldm.files.ModelFileError` naming the file). A bare name that is not
a file is looked up among the shipped models (``closures/weights``).
"""
from __future__ import annotations

from pathlib import Path

from ..ldm.files import (ModelFileError, build_model, model_paths, read_json_card,
                         resolve_model_path, write_model_files)
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
    full = dict(card or {})
    full.update(format=CARD_FORMAT, version=CARD_VERSION, config=dict(model.config),
                stats=dict(model.stats))
    return write_model_files(model.state_dict(), path_stem, full)


def read_ensemble_ldm_card(path_or_name) -> dict:
    """The checked card of a saved generator (a path, or a shipped model's name)."""
    stem = resolve_model_path(path_or_name)
    card = read_json_card(stem, CARD_FORMAT, CARD_VERSION, ("config", "stats", "state_dict"))
    try:
        card["stats"] = check_stats(card["stats"])
    except ValueError as e:
        raise ModelFileError(f"model card {model_paths(stem)[1]}: {e}") from None
    return card


def load_ensemble_ldm(path_or_name, device="cpu") -> EnsembleLDM:
    """The generator saved by :func:`save_ensemble_ldm` (a path to its stem or either file, or a
    shipped model's name), in eval mode, with ``model.card`` set; :class:`ModelFileError` naming
    the file for a missing, corrupt or mismatched card or weights file."""
    stem = resolve_model_path(path_or_name)
    return build_model(EnsembleLDM, stem, read_ensemble_ldm_card(stem), device)
