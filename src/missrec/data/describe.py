"""Summary statistics of a dataset store."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .store import read_schema, read_store


def describe(store: str | Path) -> dict:
    """Users, items, interactions, sequence lengths and modality coverage of a store."""
    schema = read_schema(store)
    ds = read_store(store)
    lengths = np.bincount(ds.interactions.user, minlength=ds.n_users + 1)[1:]
    coverage = {}
    present_counts = {}
    for name, feats in ds.features.items():
        coverage[name] = round(feats.coverage, 4)
        present_counts[name] = int(feats.present[1:].sum())
    split_counts = np.bincount(ds.interactions.split, minlength=3)
    return {
        "name": ds.name,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": len(ds.interactions),
        "avg_seq_len": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
        "min_seq_len": int(lengths.min()) if len(lengths) else 0,
        "max_seq_len": int(lengths.max()) if len(lengths) else 0,
        "train_examples": int(split_counts[0]) - int((lengths > 0).sum()),
        "coverage": coverage,
        "present": present_counts,
        "feature_dims": {k: f.dim for k, f in ds.features.items()},
        "items_with_text": int(sum(1 for t in ds.item_text[1:] if t)),
        "has_timestamps": schema.get("has_timestamps", False),
        "fingerprint": schema.get("fingerprint"),
    }


def format_description(info: dict) -> str:
    lines = [
        f"dataset        {info['name']}",
        f"users          {info['users']:,}",
        f"items          {info['items']:,}",
        f"interactions   {info['interactions']:,}",
        f"avg seq len    {info['avg_seq_len']:.2f} (min {info['min_seq_len']}, max {info['max_seq_len']})",
        f"train examples {info['train_examples']:,}",
        f"items w/ text  {info['items_with_text']:,}",
    ]
    if info["coverage"]:
        for name, cov in info["coverage"].items():
            lines.append(f"{name:<14} {info['present'][name]:,} / {info['items']:,} items ({cov:.1%}), "
                         f"{info['feature_dims'][name]}-d")
    else:
        lines.append("features       none (fill them with `missrec features`)")
    return "\n".join(lines)
