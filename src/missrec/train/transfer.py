"""Pre-trained weights in a model built on another catalogue: parameter-efficient transfer
(paper §3.6) and zero-shot evaluation.

The model is built for the new catalogue first (its own modalities, its own size), then
every pre-trained tensor whose name and shape it shares is loaded, and every extra state it
has: MISSRec's interest clustering carries the fingerprint of the catalogue it was computed
on, so on another catalogue the model re-clusters before it scores, and on the same one it
keeps the clustering it was trained with. Never loaded: an item-id table (ids of another
catalogue mean nothing here, even when the two tables happen to have the same size), nor,
when asked, the modality adapters (``transfer_adapters='fresh'``: they start anew).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..model.base import SequentialRecommender
from ..model.registry import mode_of, required_modalities
from .pretrained import Pretrained, read_pretrained, tensor_state

Log = Callable[[str], None]


@dataclass
class LoadReport:
    """What :func:`load_matching` did with each tensor."""

    loaded: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    """In both, with other shapes (e.g. an adapter of features of another width)."""
    unused: list[str] = field(default_factory=list)
    """Pre-trained, but the model has no such tensor (e.g. the adapter of a modality it does not read)."""
    missing: list[str] = field(default_factory=list)
    """The model's, not pre-trained (e.g. the adapter of a new modality, an item-id table): they keep their
    fresh initialisation."""

    def skipped(self) -> list[str]:
        return self.mismatched + self.unused


def item_id_weights(model: SequentialRecommender, mode: str) -> set[str]:
    """The model's item-id table(s): what transductive transfer tunes beyond inductive transfer."""
    if mode != "transductive":
        return set()
    return set(model.transfer_parameters("transductive")) - set(model.transfer_parameters("inductive"))


def load_matching(model: SequentialRecommender, pre: Pretrained, mode: str,
                  fresh_adapters: bool = False) -> LoadReport:
    """Load every pre-trained weight ``model`` has with the same shape (see the module doc),
    the adapters' aside with ``fresh_adapters``."""
    own = model.state_dict()
    not_loaded = item_id_weights(model, mode) | (set(model.adapter_weights()) if fresh_adapters else set())
    report = LoadReport()
    chosen = {}
    for k, v in pre.state_dict.items():
        if k in not_loaded:
            continue
        if k not in own:
            report.unused.append(k)
        elif torch.is_tensor(v) and own[k].shape != v.shape:
            report.mismatched.append(k)
        else:
            chosen[k] = v
    model.load_state_dict(chosen, strict=False)
    report.loaded = sorted(k for k in chosen if torch.is_tensor(chosen[k]))
    report.missing = sorted(k for k in tensor_state(own) if k not in chosen)
    return report


def modality_note(pre: Pretrained, modalities: list[str]) -> str:
    """Which pre-trained modalities the model leaves out, and which it adds untrained."""
    dropped = [m for m in pre.modalities if m not in modalities]
    added = [m for m in modalities if m not in pre.modalities]
    parts = []
    if dropped:
        parts.append(f"pre-trained modalities not used here, their adapters not loaded: {', '.join(dropped)}")
    if added:
        parts.append(f"modalities new to the model, their adapters start untrained: {', '.join(added)}")
    return "; ".join(parts)


def transfer_from(model: SequentialRecommender, path: str | Path, model_cfg: Any, log: Log,
                  scope: str = "adapters", adapters: str = "load") -> list[str]:
    """Load matching pre-trained weights from a checkpoint, run directory or bundle (the
    adapters left at their fresh initialisation with ``adapters='fresh'``), then freeze all
    but the transfer parameters (§3.6; ``scope='all'``: freeze nothing); returns the names
    of those trained."""
    pre = read_pretrained(path)
    mode = mode_of(model_cfg)
    report = load_matching(model, pre, mode, fresh_adapters=adapters == "fresh")
    names = ({n for n, _ in model.named_parameters()} if scope == "all"
             else set(model.transfer_parameters(mode)))
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    skipped = report.skipped()
    note = modality_note(pre, required_modalities(model_cfg))
    log(f"transfer from {path}: loaded {len(report.loaded)} tensors"
        + (f", skipped {len(skipped)} (shape or name differs: {', '.join(skipped[:4])}"
           f"{'…' if len(skipped) > 4 else ''})" if skipped else "")
        + (f"; {note}" if note else "")
        + ("; adapters start fresh" if adapters == "fresh" else "")
        + f"; tuning {', '.join(sorted({n.split('.')[0] for n in names}))}")
    return sorted(names)


__all__ = ["LoadReport", "item_id_weights", "load_matching", "modality_note", "transfer_from"]
