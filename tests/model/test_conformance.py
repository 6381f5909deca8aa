"""What every registered model promises the trainer, the evaluator and the checkpoint.

Each case is resolved as the CLI resolves it (``resolve_configs``: defaults < preset <
``--set``), built through the model registry and trained for a few steps on a tiny
generated store. Model-specific maths is pinned in the models' own test modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from missrec.data.batching import build_examples, collate
from missrec.data.store import Dataset
from missrec.model.base import SequentialRecommender
from missrec.model.registry import MODELS, ItemFeatures, get_model_spec
from missrec.seed import seed_everything
from missrec.train.checkpoint import load_model, read_checkpoint, save_checkpoint
from missrec.train.resolve import resolve_configs

from support import make_dataset

_BASELINE = ("model.hidden=16", "model.n_layers=1", "model.inner=32", "model.max_len=12")
_TEXT = _BASELINE + ("model.modalities=[text, image]",)
_UNISREC = _TEXT + ("model.n_experts=2",)
_MISSREC = ("model.d=16", "model.ffn_dim=32", "model.max_len=12", "model.knn_k=3")


@dataclass(frozen=True)
class Case:
    id: str
    model: str
    sets: tuple[str, ...]
    preset: str | None = None


CASES = [
    Case("sasrec", "sasrec", _BASELINE),
    Case("sasrec-text", "sasrec-text", _TEXT),
    Case("unisrec", "unisrec", _UNISREC),
    Case("unisrec-transductive", "unisrec", _UNISREC + ("model.mode=transductive",)),
    Case("missrec", "missrec", _MISSREC),
    Case("missrec-transductive", "missrec", _MISSREC + ("model.mode=transductive",)),
    Case("missrec-paper", "missrec", _MISSREC, "paper"),
    Case("missrec-paper-recent", "missrec", _MISSREC + ("model.readout=recent",), "paper"),
    Case("missrec-released", "missrec", _MISSREC, "released"),
    Case("missrec-released-transductive", "missrec", _MISSREC + ("model.mode=transductive",), "released"),
]
STEPS = 12


@pytest.fixture(scope="module")
def toy() -> tuple[Dataset, ItemFeatures]:
    ds = make_dataset(n_users=24, n_items=20, min_len=4, max_len=10, seed=7)
    return ds, ItemFeatures(ds.n_items, ds.features)


def _configs(case: Case):
    return resolve_configs(case.model, None, case.sets, case.preset)


def _build(case: Case, catalogue: ItemFeatures, seed: int) -> SequentialRecommender:
    seed_everything(seed)
    return get_model_spec(case.model).build(_configs(case)[1], catalogue)


def _batches(ds: Dataset) -> list:
    """Two fixed training batches and one validation batch (the last)."""
    train = build_examples(ds, "train", max_len=12)
    order = np.random.default_rng(0).permutation(len(train))
    half = len(order) // 2
    valid = build_examples(ds, "valid", max_len=12)
    return [collate(train, order[:half]), collate(train, order[half:]), collate(valid, np.arange(len(valid)))]


def _fit(model: SequentialRecommender, batches: list, seed: int, steps: int = STEPS) -> list[float]:
    """A few Adam steps the way the trainer takes them (epoch hook, then batches)."""
    seed_everything(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for step in range(steps):
        if step % 2 == 0:  # an epoch is the two training batches
            model.on_epoch_start(step // 2)
        loss, _ = model.training_loss(batches[step % 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _eval_loss(model: SequentialRecommender, batches: list) -> float:
    model.eval()
    with torch.no_grad():
        return sum(float(model.training_loss(b)[0]) for b in batches[:2])


def _assert_same_state(ours, theirs, where: str) -> None:
    """Tensors bit for bit; a module's extra state (e.g. MISSRec's interests) key by key."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict) and ours.keys() == theirs.keys(), where
        for key in ours:
            _assert_same_state(ours[key], theirs[key], f"{where}[{key!r}]")
    elif torch.is_tensor(ours):
        assert torch.equal(ours, theirs), where
    else:
        assert ours == theirs, where


def _scores(model: SequentialRecommender, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.score_all(batch, model.item_cache())


@pytest.fixture(scope="module")
def trained(toy):
    """Each case built and trained once with seed 0: (model, batches, loss before, training
    losses). One intra-op thread, as the tests that repeat it run under (conftest.py): sums
    split over another number of threads round differently."""
    ds, cat = toy
    batches = _batches(ds)
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for case in CASES:
            model = _build(case, cat, seed=0)
            before = _eval_loss(model, batches)
            out[case.id] = (model, batches, before, _fit(model, batches, seed=0))
    finally:
        torch.set_num_threads(threads)
    return out


def test_every_registered_model_has_a_case() -> None:
    assert {c.model for c in CASES} == set(MODELS)


def test_preset_cases_differ_from_their_plain_case() -> None:
    """The preset reaches the model, and the small sizes of ``--set`` still win over it."""
    for case in (c for c in CASES if c.preset):
        plain = next((c for c in CASES if c.model == case.model and c.sets == case.sets and not c.preset), None)
        if plain is None:  # a variant of a preset, not the preset itself
            continue
        _, preset_cfg = _configs(case)
        assert preset_cfg != _configs(plain)[1] and preset_cfg.d == 16, case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_full_catalogue_scores_equal_per_item_scores(case: Case, trained, toy) -> None:
    ds, _ = toy
    model, batches, _, _ = trained[case.id]
    batch = batches[2]
    full = _scores(model, batch)
    assert full.shape == (len(batch), ds.n_items + 1)
    with torch.no_grad():
        cache = model.item_cache()
        every = torch.arange(1, ds.n_items + 1).expand(len(batch), -1)
        torch.testing.assert_close(model.score_items(batch, every, cache), full[:, 1:], rtol=1e-5, atol=1e-6)
        # a different candidate list per row, in a shuffled order, repeats allowed
        g = torch.Generator().manual_seed(1)
        chosen = torch.randint(1, ds.n_items + 1, (len(batch), 5), generator=g)
        torch.testing.assert_close(model.score_items(batch, chosen, cache), full.gather(1, chosen),
                                   rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.score_all(batch), full)  # no cache: same scores


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_loss_decreases_on_a_tiny_set(case: Case, trained) -> None:
    model, batches, before, losses = trained[case.id]
    assert all(np.isfinite(losses))
    after = _eval_loss(model, batches)
    assert after < 0.9 * before, (before, after, losses)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_checkpoint_round_trip_gives_identical_scores(case: Case, trained, toy, tmp_path) -> None:
    ds, cat = toy
    model, batches, _, _ = trained[case.id]
    train_cfg, model_cfg = _configs(case)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model_name=case.model, model=model, model_config=model_cfg, train_config=train_cfg,
                    item_ids=ds.items.ids, item_text=ds.item_text, catalogue=cat, dataset={"name": ds.name},
                    epoch=1, best={})
    loaded, loaded_cfg = load_model(read_checkpoint(path))
    assert type(loaded) is type(model) and loaded_cfg == model_cfg
    assert torch.equal(_scores(loaded, batches[2]), _scores(model, batches[2]))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_seed_repeats(case: Case, trained, toy) -> None:
    _, cat = toy
    model, batches, _, losses = trained[case.id]
    again = _build(case, cat, seed=0)
    assert _fit(again, batches, seed=0) == losses
    _assert_same_state(model.state_dict(), again.state_dict(), "state_dict")
    assert torch.equal(_scores(again, batches[2]), _scores(model, batches[2]))
    # and another seed gives another model
    other = _build(case, cat, seed=1)
    _fit(other, batches, seed=1)
    assert not torch.equal(_scores(other, batches[2]), _scores(model, batches[2]))
