"""Training-speed benchmark of MISSRec on random data (not a test; run it directly).

    python tests/model/bench_missrec_speed.py [--lengths realistic|uniform] [--epochs 2]

Shape of the data: ~1,600 items with 512-d text and image features (36% image coverage),
~11k training sequences, batch 2048, histories of up to 50 items. ``realistic`` lengths
follow a geometric law with mean ~3.4 (like Amazon Scientific), ``uniform`` draws 1..50.
Prints one JSON line per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import time

# OpenMP threads that spin at barriers stall badly when the machine is shared; this must be
# set before torch is imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from missrec.data.batching import SequenceBatch  # noqa: E402
from missrec.model import MISSRec, MISSRecConfig  # noqa: E402


def make_batches(n_items: int, n_seq: int, batch: int, max_len: int, lengths: str,
                 gen: torch.Generator) -> list[SequenceBatch]:
    if lengths == "uniform":
        lens = torch.randint(1, max_len + 1, (n_seq,), generator=gen)
    else:
        p = 1 / 3.4
        u = torch.rand(n_seq, generator=gen).clamp_min(1e-12)
        lens = (torch.log(u) / torch.log(torch.tensor(1 - p))).floor().long() + 1
        lens = lens.clamp(1, max_len)
    out = []
    for s in range(0, n_seq, batch):
        ln = lens[s:s + batch]
        width = int(ln.max())
        items = torch.randint(1, n_items + 1, (len(ln), width), generator=gen)
        items = items * (torch.arange(width)[None, :] < ln[:, None])
        out.append(SequenceBatch(items, ln, torch.randint(1, n_items + 1, (len(ln),), generator=gen),
                                 torch.arange(len(ln))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="realistic", choices=["realistic", "uniform"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--n-items", type=int, default=1585)
    ap.add_argument("--n-seq", type=int, default=10928)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    kw = {}
    for pair in args.set:
        k, v = pair.split("=", 1)
        kw[k] = type(getattr(MISSRecConfig(), k))(v)
    cfg = MISSRecConfig(**kw)
    n = args.n_items
    feats = {"text": torch.randn(n + 1, 512, generator=gen), "image": torch.randn(n + 1, 512, generator=gen)}
    present = {"text": torch.ones(n + 1, dtype=torch.bool), "image": torch.rand(n + 1, generator=gen) < 0.36}
    model = MISSRec(cfg, n, {"text": 512, "image": 512})
    model.attach_catalogue(feats, present)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = make_batches(n, args.n_seq, args.batch, cfg.max_len, args.lengths, gen)
    for epoch in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        info = model.on_epoch_start(epoch)
        model.train()
        total = 0.0
        for b in batches:
            loss, _ = model.training_loss(b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"epoch": epoch, "lengths": args.lengths, "seconds": round(dt, 2), "cpu_seconds": round(cpu, 2),
                          "cluster_seconds": round(info["cluster_seconds"], 2),
                          "threads": torch.get_num_threads(), "loss": round(total / len(batches), 4),
                          "sequences": args.n_seq, "batch": args.batch}))


if __name__ == "__main__":
    main()
