"""Encoder throughput on this machine, printed as JSON (a measurement, not a test).

For each encoder: model load time, items/second through the model (cache off, preprocessing
included), CPU seconds per item, and items/second when every input is a cache hit (a fresh
encoder, as in a re-run).

    python benchmarks/encoders.py                       # minilm, efficientnet-lite0, clip
    python benchmarks/encoders.py --encoders minilm --n-text 512

Texts are real item texts of Amazon Scientific when ``../shared/datasets`` is present
(synthetic otherwise); images are synthetic 500x500 JPEGs (the size of Amazon product
images). CLIP is ViT-B-32 with random weights saved to a temporary checkpoint: the same
cost as real weights, which cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCIENTIFIC_TEXT = ROOT.parent / "shared" / "datasets" / "amazon-scientific" / "Scientific.text"


def load_texts(n: int) -> tuple[list[str], str]:
    if SCIENTIFIC_TEXT.exists():
        lines = SCIENTIFIC_TEXT.read_text(encoding="utf-8").splitlines()[1:]
        texts = [line.split("\t", 1)[1].strip() for line in lines if "\t" in line]
        step = max(1, len(texts) // n)  # spread over the file: lengths vary along it
        return texts[::step][:n], "amazon-scientific item texts"
    rng = np.random.default_rng(0)
    words = ["glue", "tape", "sanding", "roll", "inch", "steel", "brush", "industrial", "scientific", "pack"]
    return [" ".join(rng.choice(words, size=30)) for _ in range(n)], "synthetic 30-word texts"


def make_images(n: int, d: Path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        # Smooth random colour fields compress like photos, unlike pure noise.
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((500, 500), Image.BICUBIC)
        paths.append(d / f"{i}.jpg")
        img.save(paths[-1], quality=90)
    return paths


def measure(make, inputs: list, cache_dir: Path) -> dict:
    """Load time, model throughput (no cache) and cache-hit throughput for one encoder."""
    enc = make(use_cache=False)
    t0 = time.perf_counter()
    enc.encode(inputs[:2])  # loads the model (and warms up)
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    out = enc.encode(inputs)
    model_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    make(cache_dir=cache_dir).encode(inputs)  # fill the cache
    hit = make(cache_dir=cache_dir)  # a fresh encoder, as in a re-run
    t0 = time.perf_counter()
    res = hit.encode_partial(inputs)
    hit_s = time.perf_counter() - t0
    assert res.n_computed == 0, "expected a fully cached run"
    return {
        "dim": int(out.shape[1]),
        "n": len(inputs),
        "load_and_warmup_s": round(load_s, 2),
        "model_s": round(model_s, 2),
        "items_per_s": round(len(inputs) / model_s, 1),
        # CPU seconds per item (all threads): steadier than wall time on a shared machine.
        "cpu_s_per_item": round(cpu_s / len(inputs), 4),
        "cache_hit_s": round(hit_s, 4),
        "cache_hit_items_per_s": round(len(inputs) / hit_s, 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="minilm,efficientnet-lite0,clip-text,clip-image")
    ap.add_argument("--n-text", type=int, default=256)
    ap.add_argument("--n-image", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from missrec.features.registry import make_encoder

    if args.threads:
        torch.set_num_threads(args.threads)

    wanted = args.encoders.split(",")
    # Other processes on the machine change these numbers a lot: record how busy it was.
    load_start = [round(x, 2) for x in os.getloadavg()]
    results = []
    with tempfile.TemporaryDirectory(prefix="missrec-bench-") as tmp:
        tmp_path = Path(tmp)
        texts, text_source = load_texts(args.n_text)
        images = make_images(args.n_image, tmp_path) if any(
            w in wanted for w in ("efficientnet-lite0", "clip-image")) else []
        clip_ckpt = None
        if any(w.startswith("clip") for w in wanted):
            from missrec.features._compat import ensure_torchvision_importable

            ensure_torchvision_importable()
            import open_clip

            clip_ckpt = tmp_path / "vit-b-32-random.pt"
            torch.save(open_clip.create_model("ViT-B-32", device="cpu").state_dict(), clip_ckpt)
        specs = {
            "minilm": ("minilm", "text", texts),
            "efficientnet-lite0": ("efficientnet-lite0", "image", images),
            "clip-text": (f"clip:{clip_ckpt}", "text", texts),
            "clip-image": (f"clip:{clip_ckpt}", "image", images),
        }
        for name in wanted:
            spec, modality, inputs = specs[name]

            def make(**kw):
                return make_encoder(spec, modality, batch_size=args.batch_size,
                                    cache_dir=kw.pop("cache_dir", tmp_path / "cache"), **kw)

            row = {"encoder": name, "modality": modality, "batch_size": args.batch_size}
            row.update(measure(make, inputs, tmp_path / "cache"))
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps({
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "processor": platform.processor() or platform.machine(),
            "load_average_at_start": load_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "texts": text_source,
        "images": "synthetic 500x500 JPEG",
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
