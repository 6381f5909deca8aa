"""``missrec train --from``: a checkpoint file, a run directory or a serving bundle transfer the
same weights; a text + image pre-trained model fine-tunes on a text-only store."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from missrec.cli import main
from missrec.data.store import write_store
from missrec.serve import Recommender
from missrec.model.registry import get_model_spec
from missrec.train.pretrained import read_pretrained
from missrec.train.rundata import RunData
from missrec.train.transfer import transfer_from
from missrec.train.zeroshot import fit_to_store
from missrec.train.resolve import resolve_configs

from support import make_dataset

TINY = ["--set", "d=16", "--set", "n_heads=2", "--set", "ffn_dim=32", "--set", "n_clusters=0.3"]
FAST = ["--set", "batch_size=32", "--set", "eval_batch_size=64", "--set", "threads=1", "--set", "seed=5"]


def cli(*args) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two text + image domains, pre-trained on; a text + image target and a text-only one;
    the pre-training's checkpoint, run directory and bundle."""
    root = tmp_path_factory.mktemp("sources")
    stores = {}
    for name, seed in (("a", 1), ("b", 2), ("target", 3), ("text", 4)):
        ds = make_dataset(n_users=30, n_items=25, seed=seed)
        ds.name = name
        if name == "text":
            ds.features.pop("image")
        stores[name] = write_store(ds, root / name)
    pre = root / "pre"
    cli("pretrain", "--data", stores["a"], "--data", stores["b"], "--out", pre, *TINY, *FAST, "--set", "epochs=2",
        "--quiet")
    cli("export", pre, root / "bundle")
    return stores, pre, root / "bundle"


def fine_tune(store, init, out, *sets: str) -> tuple[dict, str]:
    res = CliRunner().invoke(main, [str(a) for a in ["train", "--model", "missrec", "--data", store, "--from", init,
                                                     "--out", out, *FAST, "--set", "epochs=1", *sets]])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text()), res.output


def test_a_checkpoint_a_run_directory_and_a_bundle_transfer_the_same_model(sources, tmp_path):
    stores, pre, bundle = sources
    ckpt, run_dir, from_bundle = (read_pretrained(p) for p in (pre / "model.pt", pre, bundle))
    assert from_bundle.kind == "bundle" and from_bundle.model == "missrec"
    assert from_bundle.model_config == ckpt.model_config
    tensors = {k for k, v in ckpt.state_dict.items() if torch.is_tensor(v)}
    assert tensors == {k for k, v in from_bundle.state_dict.items() if torch.is_tensor(v)}  # no catalogue tensors
    for k in tensors:
        assert torch.equal(ckpt.state_dict[k], from_bundle.state_dict[k]), k
    extra = [k for k in ckpt.state_dict if k.endswith("_extra_state")]
    assert extra and all(set(from_bundle.state_dict[k]) == set(ckpt.state_dict[k]) for k in extra)
    assert run_dir.state_dict.keys() == ckpt.state_dict.keys()
    results = []
    for name, init in (("file", pre / "model.pt"), ("dir", pre), ("bundle", bundle)):
        res, out = fine_tune(stores["target"], init, tmp_path / name)
        assert "transfer from" in out and "tuning adapters" in out
        results.append((res["valid"], res["test"], res["parameters"]))
    assert results[0] == results[1] == results[2]
    # the architecture is the pre-trained model's (its d=16, not the default preset's width)
    train_cfg, model_cfg = resolve_configs("missrec", None, (), None, bundle, stores["target"])
    assert model_cfg.d == 16 and model_cfg.modalities == ["text", "image"]


def test_a_text_only_store_fine_tunes_a_text_and_image_model_on_text(sources, tmp_path):
    stores, pre, _ = sources
    _, model_cfg = resolve_configs("missrec", None, (), None, pre, stores["text"])
    assert model_cfg.modalities == ["text"]
    res, out = fine_tune(stores["text"], pre, tmp_path / "ft")
    assert res["config"]["model"]["modalities"] == ["text"]
    line = next(s for s in out.splitlines() if s.startswith("transfer from"))
    assert "not used here, their adapters not loaded: image" in line and "adapters.image" in line
    assert 0 < res["parameters"]["trainable"] < res["parameters"]["total"]


def test_transfer_scope_all_trains_every_weight_from_the_pretrained_start(sources, tmp_path):
    stores, pre, _ = sources
    adapters, _ = fine_tune(stores["target"], pre, tmp_path / "adapters")
    every, out = fine_tune(stores["target"], pre, tmp_path / "all", "--set", "transfer_scope=all")
    assert every["parameters"]["trainable"] == every["parameters"]["total"] == adapters["parameters"]["total"]
    assert adapters["parameters"]["trainable"] < adapters["parameters"]["total"]
    line = next(s for s in out.splitlines() if s.startswith("transfer from"))
    assert "loaded" in line and "encoder" in line.split("tuning", 1)[1]  # the frozen part is trained too
    assert every["valid"] != adapters["valid"]


@pytest.mark.parametrize("store", ["text", "target"])
def test_a_model_fine_tuned_from_the_pretrained_bundle_exports_and_serves(sources, tmp_path, store):
    """The documented path for a new catalogue: pre-train, export, fine-tune ``--from`` the
    bundle (text only or text + image), export, serve; a new item is ranked by its content."""
    stores, _, bundle = sources
    fine_tune(stores[store], bundle, tmp_path / "ft")
    cli("export", tmp_path / "ft", tmp_path / "served")
    rec = Recommender(tmp_path / "served")
    try:
        state = rec.catalogue.state
        history = list(state.ids[1:4])
        before = rec.recommend([history], k=5)[0]
        assert len(before.items) == 5 and before.scores == sorted(before.scores, reverse=True)
        text = state.raw["text"][3].tolist()  # the last history item's text, as a new item
        rec.add_items([{"id": "NEW", "features": {"text": text}}])
        ranked = rec.recommend([history], k=rec.catalogue.size)[0]
        assert "NEW" in ranked.items
        if store == "text":  # the same content as a trained item: the same score (no item ids)
            score = dict(zip(ranked.items, ranked.scores))
            assert score["NEW"] == pytest.approx(score[history[-1]], abs=1e-5)
    finally:
        rec.close()


def test_a_bundle_of_another_model_is_refused_in_one_line(sources, tmp_path):
    stores, _, bundle = sources
    res = CliRunner().invoke(main, ["train", "--model", "unisrec", "--data", str(stores["target"]), "--from",
                                    str(bundle), "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "holds a 'missrec' model" in res.output and len(res.output.strip().splitlines()) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    res = CliRunner().invoke(main, ["train", "--model", "missrec", "--data", str(stores["target"]), "--from",
                                    str(broken), "--out", str(tmp_path / "y")])
    assert res.exit_code == 1 and "manifest.json" in res.output and len(res.output.strip().splitlines()) == 1


def test_fresh_adapters_load_every_pretrained_weight_but_the_adapters(sources):
    stores, pre, _ = sources
    pretrained = read_pretrained(pre)
    config = fit_to_store(pretrained, stores["target"])
    model = get_model_spec("missrec").build(config, RunData.load(stores["target"], config.modalities, config.max_len).catalogue)
    fresh = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    lines: list[str] = []
    transfer_from(model, pre, config, lines.append, adapters="fresh")
    adapters = set(model.adapter_weights())
    assert adapters == {k for k in fresh if k.startswith("adapters.")} and adapters
    after = model.state_dict()
    for k, v in pretrained.state_dict.items():
        if torch.is_tensor(v) and k in after:
            assert torch.equal(after[k], fresh[k] if k in adapters else v), k
    assert "adapters start fresh" in lines[0]
    transfer_from(model, pre, config, lines.append)  # the default loads them
    assert all(torch.equal(model.state_dict()[k], pretrained.state_dict[k]) for k in adapters)


def test_frozen_adapters_keep_their_initial_weights_while_the_rest_pretrains(sources, tmp_path):
    stores, _, _ = sources
    runs = {}
    for epochs in (1, 2):
        runs[epochs] = tmp_path / f"e{epochs}"
        cli("pretrain", "--data", stores["a"], "--data", stores["b"], "--out", runs[epochs], *TINY, *FAST,
            "--set", f"epochs={epochs}", "--set", "freeze_adapters=true", "--quiet")
    one, two = (read_pretrained(runs[e]).state_dict for e in (1, 2))
    adapters = [k for k in one if k.startswith("adapters.")]
    assert adapters and all(torch.equal(one[k], two[k]) for k in adapters)
    assert not torch.equal(one["position.weight"], two["position.weight"])
