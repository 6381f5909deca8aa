"""A probe, not a feature: would a stand-in for an item's missing modality, taken from the
catalogue items nearest to it by the modality it has, rank it better than scoring it on
that modality alone (what MISSRec does, eq. 2 with the missing weight 0)?

Every target of the split loses ``--modality`` (as ``missrec evaluate --drop MODALITY:targets``);
its stand-in is the mean (uniform, or softmax over cosine / 0.05) of that modality's features
of its k nearest items by the other modality's cosine, never itself. Bank 'strict': only
items that kept the modality (not the other targets); 'loose': every other item, as a new
item listed alone would see the catalogue. The stand-in goes through the model's own
``encode_items`` as a present modality. docs/serving.md (missing modalities) has the result.

    python benchmarks/missing_standin.py RUN STORE [--split valid] [--modality text] [--k 1,5,10,20,50]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from missrec.config import TrainConfig, from_dict
from missrec.data.batching import build_examples
from missrec.data.store import read_store
from missrec.eval.evaluator import evaluate
from missrec.eval.modalities import Drop, drop_modalities
from missrec.train.checkpoint import catalogue_of, load_model, read_checkpoint
from missrec.train.loop import max_len_of, protocol_of

METRICS = ("recall@10", "ndcg@10", "recall@50", "ndcg@50")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("store")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--modality", default="text", help="the modality the targets lose")
    ap.add_argument("--k", default="1,5,10,20,50")
    args = ap.parse_args()

    payload = read_checkpoint(args.run)
    model, model_cfg = load_model(payload)
    protocol = protocol_of(from_dict(TrainConfig, payload["train_config"], "train"))
    examples = build_examples(read_store(args.store, modalities=[]), args.split, max_len_of(model_cfg))
    features = catalogue_of(payload).features
    lost = args.modality
    others = [m for m in model.modalities if m != lost]
    if lost not in model.modalities or len(others) != 1:
        raise SystemExit(f"--modality {lost}: the model must read it and one other (it reads {model.modalities})")
    (kept,) = others
    base = model.item_cache()
    targets = np.unique(examples.targets[examples.targets > 0])
    rows = torch.from_numpy(targets)

    def metrics(cache) -> dict[str, float]:
        res = evaluate(model, examples, protocol, cache=cache).metrics
        return {m: res[m] for m in METRICS}

    def with_standin(standin: np.ndarray) -> dict[str, float]:
        feats = {kept: torch.from_numpy(features[kept].matrix[targets]), lost: torch.from_numpy(standin)}
        pres = {kept: torch.from_numpy(features[kept].present[targets]), lost: torch.ones(len(targets), dtype=torch.bool)}
        return metrics(base.put(rows, model.encode_items(feats, pres, rows)))

    removed, _ = drop_modalities(model, base, features, [Drop(lost, "targets")], examples.targets)
    table = {"all modalities": metrics(base), f"{lost} removed": metrics(removed)}
    by = features[kept].matrix
    unit = by / np.maximum(np.linalg.norm(by, axis=1, keepdims=True), 1e-12)
    sims = unit[targets] @ unit.T
    # neighbours need both modalities (row 0 is padding and has none); never the item itself
    sims[:, ~(features[kept].present & features[lost].present)] = -np.inf
    sims[:, 0] = -np.inf
    sims[np.arange(len(targets)), targets] = -np.inf
    for bank in ("strict", "loose"):
        s = sims.copy()
        if bank == "strict":
            s[:, targets] = -np.inf
        order = np.argsort(-s, axis=1)
        for k in (int(x) for x in args.k.split(",")):
            top = order[:, :k]
            near = np.take_along_axis(s, top, 1)
            for weighting in ("uniform", "softmax"):
                w = np.ones_like(near) if weighting == "uniform" else np.exp((near - near.max(1, keepdims=True)) / 0.05)
                standin = (w[..., None] * features[lost].matrix[top]).sum(1) / w.sum(1, keepdims=True)
                table[f"stand-in, {bank} bank, k={k}, {weighting}"] = with_standin(standin.astype(np.float32))
    print(f"| {args.split}, {len(examples):,} users | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for name, res in table.items():
        print(f"| {name} | " + " | ".join(f"{res[m]:.4f}" for m in METRICS) + " |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
