"""How many interests a trained MISSRec gives each history, against how many tokens it has.

    python benchmarks/interest_counts.py RUN --data STORE

Loads RUN's checkpoint, clusters the catalogue as an epoch start does (§3.3.1), and for every
user's test history (its last ``max_len`` items before the test target) counts the tokens
and the distinct interests among them (the decoder's queries, §3.3.2). With a cluster ratio
near 0.5 nearly every token is its own interest, so the decoder's queries are the history
itself, unordered. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from missrec.data.store import read_store
from missrec.train.checkpoint import load_model, read_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    model, _ = load_model(read_checkpoint(args.run))
    ds = read_store(args.data, model.config.modalities)
    model.on_epoch_start(-1)
    interest_of = model._interest_of.cpu().numpy()  # [n_items + 1, M], -1 = missing modality
    tokens, interests = [], []
    for seq in ds.sequences()[1:]:
        hist = seq[:-1][-model.config.max_len:]
        ids = interest_of[hist]
        present = ids >= 0
        n_tok = int(present.any(1).sum()) if model.config.variant.tokens == "added" else int(present.sum())
        tokens.append(n_tok)
        interests.append(len(np.unique(ids[present])))
    tokens, interests = np.array(tokens), np.array(interests)
    n_clusters = int(model._prototypes.shape[0])
    print(json.dumps({
        "run": args.run, "clustering": model.config.clustering, "n_clusters_setting": model.config.n_clusters,
        "catalogue_tokens": int((interest_of >= 0).sum()), "clusters": n_clusters,
        "histories": len(tokens), "mean_tokens": round(float(tokens.mean()), 3),
        "mean_interests": round(float(interests.mean()), 3),
        "share_of_histories_with_one_interest_per_token": round(float((interests == tokens).mean()), 4),
        "mean_interests_per_token": round(float((interests / tokens).mean()), 4),
    }, indent=2))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
