"""Model files of the diffusion closure: weights (``<stem>.pt``) and model card (``<stem>.json``).

Files. :func:`save_model` writes ``<stem>.pt`` (the ``state_dict`` only) and ``<stem>.json`` (the
model card: architecture config, grid, normalisation statistics, data, training config and time,
offline metrics, and the name and shape of every tensor of the state_dict).
:func:`load_model` loads the weights with ``torch.load(..., weights_only=True)`` and checks them
against the card; any problem raises :class:`ModelFileError` naming the file.

The model-file helpers shared by every model of the package (the stochastic latent
transformer's and the ensemble generator's files call them too): :func:`model_paths`,
:func:`resolve_model_path` (a bare name that is not a file is looked up among the shipped models,
``closures/weights``), :func:`save_model_files` (the card's format, version, config and stats
set, then :func:`write_model_files`), :func:`read_model_card` (:func:`read_json_card` and the
model's own check of its stats), :func:`build_model` and :func:`load_state_dict`: weights loaded
with ``weights_only=True``, every problem a :class:`ModelFileError` naming the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from solvers.files import write_json

from .model import LatentDiffusionModel, check_stats

__all__ = ["ModelFileError", "model_paths", "resolve_model_path", "save_model", "update_card",
           "read_card", "load_model", "build_model", "write_model_files", "read_json_card",
           "save_model_files", "read_model_card", "load_state_dict", "CARD_FORMAT",
           "CARD_VERSION", "WEIGHTS_DIR"]

CARD_FORMAT = "hybrid-ldm-card"
CARD_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"   # the shipped models (README)


class ModelFileError(ValueError):
    """A model file (weights or card) is missing, corrupt or does not match; names the file."""



def model_paths(path_stem) -> tuple[Path, Path]:
    """(``<stem>.pt``, ``<stem>.json``) for a stem, or for either file's path."""
    p = Path(os.fspath(path_stem)).expanduser()
    if p.suffix in (".pt", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".pt"), p.with_name(p.name + ".json")


def resolve_model_path(path_or_name) -> Path:
    """The stem of a saved model: ``path_or_name`` itself when its card (``<stem>.json``) exists,
    else the shipped model of that name in :data:`WEIGHTS_DIR` (e.g. ``'ldm-kolmogorov'``), else
    ``path_or_name`` unchanged (so that loading it reports the missing file by its given path)."""
    pt, js = model_paths(path_or_name)
    stem = js.with_suffix("")
    if js.exists() or pt.exists():
        return stem
    shipped = WEIGHTS_DIR / stem.name
    if stem.parent == Path(".") and (shipped.with_name(shipped.name + ".json")).exists():
        return shipped
    return stem


def save_model(model: LatentDiffusionModel, path_stem, card: dict | None = None) -> tuple[Path,
                                                                                           Path]:
    """Write ``<stem>.pt`` (state_dict) and ``<stem>.json`` (card), each atomically.

    The card is ``card`` (data, training, metrics, …: any JSON-able dict) plus what loading needs,
    which this function sets: ``format``, ``version``, ``config``, ``stats``, ``grid`` and
    ``state_dict`` (name → shape of every tensor). Returns the two paths.
    """
    return save_model_files(model, path_stem, card, CARD_FORMAT, CARD_VERSION,
                            grid={"n": model.n, "L": model.L})


def save_model_files(model, path_stem, card: dict | None, card_format: str, version: int,
                     **more) -> tuple[Path, Path]:
    """Write ``model`` to ``<stem>.pt`` and ``<stem>.json`` (:func:`write_model_files`), the card
    being ``card`` plus ``format`` = ``card_format``, ``version``, the model's ``config`` and
    ``stats``, and ``more``: the common save of every model. Returns the two paths."""
    full = dict(card or {})
    full.update(format=card_format, version=version, config=dict(model.config),
                stats=dict(model.stats), **more)
    return write_model_files(model.state_dict(), path_stem, full)


def write_model_files(state_dict: dict, path_stem, card: dict) -> tuple[Path, Path]:
    """Write ``<stem>.pt`` (``state_dict``, on the CPU) and ``<stem>.json`` (``card`` plus
    ``weights_file`` and ``state_dict``: name → shape of every tensor), each atomically. The
    common writer of every model file (a model's own ``save_*`` sets its card's ``format``,
    ``version`` and ``config``). Returns the two paths."""
    pt, js = model_paths(path_stem)
    pt.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    full = dict(card)
    full.update(weights_file=pt.name, state_dict={k: list(v.shape) for k, v in sd.items()})
    tmp = pt.with_name(pt.name + ".tmp")
    torch.save(sd, tmp)
    os.replace(tmp, pt)
    write_json(js, full)
    return pt, js


def update_card(path_stem, reader=None, **entries) -> Path:
    """Set the top-level ``entries`` of the saved card of ``path_stem`` (checked by ``reader``,
    default :func:`read_card`, first, then rewritten as stored plus the entries); the weights are
    not touched. Returns the card's path."""
    (reader or read_card)(path_stem)
    _, js = model_paths(path_stem)
    card = json.loads(js.read_text())
    card.update(entries)
    write_json(js, card)
    return js


def read_card(path_stem) -> dict:
    """The model card of ``path_stem`` (checked: format, config, stats, state_dict shapes)."""
    return read_model_card(path_stem, CARD_FORMAT, CARD_VERSION,
                           lambda card: check_stats(card["stats"]))


def read_model_card(path_stem, card_format: str, version: int, check_stats) -> dict:
    """The card of the model at ``path_stem``: :func:`read_json_card` (``config``, ``stats`` and
    ``state_dict`` required), its ``stats`` replaced by ``check_stats(card)`` (a ValueError
    becomes a :class:`ModelFileError` naming the card). The common reader of every model's
    card."""
    card = read_json_card(path_stem, card_format, version, ("config", "stats", "state_dict"))
    try:
        card["stats"] = check_stats(card)
    except ValueError as e:
        raise ModelFileError(f"model card {model_paths(path_stem)[1]}: {e}") from None
    return card


def read_json_card(path_stem, card_format: str, version: int, required=()) -> dict:
    """The JSON card of ``path_stem``, checked: readable JSON, ``format`` = ``card_format``,
    ``version`` ≤ ``version``, the ``required`` keys present; else :class:`ModelFileError`
    naming the card. The common reader of every model card."""
    _, js = model_paths(path_stem)
    if not js.is_file():
        raise ModelFileError(f"model card {js} does not exist"
                             + ("" if js.exists() else " (expected beside the weights file)"))
    try:
        card = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"model card {js} is not readable JSON (corrupt?): {e}") from None
    if not isinstance(card, dict) or card.get("format") != card_format:
        raise ModelFileError(f"model card {js} is not a {card_format!r} card (format = "
                             f"{card.get('format') if isinstance(card, dict) else None!r})")
    try:
        card_version = int(card.get("version", 0))
    except (TypeError, ValueError):
        raise ModelFileError(f"model card {js} has a bad version "
                             f"{card.get('version')!r}") from None
    if card_version > version:
        raise ModelFileError(f"model card {js} has version {card['version']}; this package reads "
                             f"up to {version}")
    missing = [k for k in required if k not in card]
    if missing:
        raise ModelFileError(f"model card {js} lacks {', '.join(missing)}")
    return card


def load_state_dict(path_stem, card: dict, expected: dict) -> dict:
    """The state_dict of ``<stem>.pt``, loaded with ``torch.load(..., weights_only=True)`` and
    checked against ``expected`` (name → shape, from the architecture the card's config builds)
    and the card's own list of tensors: any missing, unreadable, corrupt, mismatched or
    non-finite weights raise :class:`ModelFileError` naming the file. The common loader of
    every model file."""
    pt, js = model_paths(path_stem)
    expected = {k: list(v) for k, v in expected.items()}
    listed = card.get("state_dict")
    if not isinstance(listed, dict) or {k: list(v) for k, v in listed.items()} != expected:
        raise ModelFileError(f"model card {js} lists tensors that its architecture config does "
                             f"not build (card edited or from another version)")
    if not pt.is_file():
        raise ModelFileError(f"weights file {pt} does not exist (card {js})")
    try:
        sd = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:           # torch raises several types for bad pickles/zip files
        raise ModelFileError(f"weights file {pt} is not a readable torch state_dict (corrupt, "
                             f"truncated or not saved by save_model): {type(e).__name__}: "
                             f"{str(e)[:200]}") from None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ModelFileError(f"weights file {pt} does not hold a state_dict of tensors")
    got = {k: list(v.shape) for k, v in sd.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}")
        if wrong:
            parts.append("wrong shape " + ", ".join(f"{k} {got[k]} (card: {expected[k]})"
                                                    for k in wrong[:5]))
        raise ModelFileError(f"weights file {pt} does not match its card {js}: "
                             + "; ".join(parts))
    if not all(bool(torch.isfinite(v).all()) for v in sd.values() if v.is_floating_point()):
        raise ModelFileError(f"weights file {pt} holds non-finite values")
    return sd


def load_model(path_stem, device="cpu") -> LatentDiffusionModel:
    """The model saved by :func:`save_model` at ``path_stem`` (or either file's path), in eval
    mode, with ``model.card`` set. Raises :class:`ModelFileError` (naming the file) for a missing,
    unreadable or corrupt card or weights file, or weights that do not match the card."""
    return build_model(LatentDiffusionModel, path_stem, read_card(path_stem), device)


def build_model(cls, path_stem, card: dict, device="cpu"):
    """``cls.from_config(card['config'], stats=card['stats'])`` with the weights of
    ``<stem>.pt`` (:func:`load_state_dict`), on ``device``, in eval mode, with ``model.card``
    set: the common builder of every model file from its checked card. A config that does not
    build raises :class:`ModelFileError` naming the card."""
    js = model_paths(path_stem)[1]
    try:
        if not isinstance(card["config"], dict):
            raise TypeError("config is not a dict")
        model = cls.from_config(card["config"], stats=card["stats"])
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"model card {js}: bad architecture config: {e}") from None
    sd = load_state_dict(path_stem, card, {k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict(sd)
    model.card = card
    return model.to(device).eval()
