"""The MISSRec model: masking, invariances, scoring consistency, losses, transfer."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
import torch.nn.functional as F

from missrec.config import from_dict
from missrec.data.batching import SequenceBatch
from missrec.model.fusion import fuse_representations
from missrec.model.missrec import MISSRec, MISSRecConfig, keep_last, preset
from missrec.model.missrec.losses import id_drop, item_drop_mask, modality_drop_mask

N_ITEMS = 30
DIMS = {"text": 12, "image": 10}


def tiny_config(**kw) -> MISSRecConfig:
    base = dict(d=16, n_heads=2, ffn_dim=32, dropout=0.0, attn_dropout=0.0, feature_dropout=0.0,
                max_len=8, n_clusters=0.4, knn_k=3)
    base.update(kw)
    # through from_dict, which also takes the official code's choices as flat names
    return from_dict(MISSRecConfig, base, "model")


def catalogue(seed: int = 0, n_items: int = N_ITEMS):
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(n_items + 1, d, generator=g) for m, d in DIMS.items()}
    present = {"text": torch.ones(n_items + 1, dtype=torch.bool),
               "image": torch.rand(n_items + 1, generator=g) < 0.5}
    present["text"][3] = False  # an item with an image only
    present["image"][3] = True
    present["text"][4] = False  # an item with no modality at all
    present["image"][4] = False
    return feats, present


def build(seed: int = 0, n_items: int = N_ITEMS, **kw) -> MISSRec:
    torch.manual_seed(seed)
    model = MISSRec(tiny_config(**kw), n_items, DIMS)
    model.attach_catalogue(*catalogue(seed, n_items))
    return model


def make_batch(seed: int = 1, b: int = 6, length: int = 7, n_items: int = N_ITEMS) -> SequenceBatch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    lengths[0] = length
    items = torch.randint(1, n_items + 1, (b, length), generator=g)
    items[0, :3] = torch.tensor([3, 4, 5])  # image-only and empty items in a history
    items = items * (torch.arange(length)[None] < lengths[:, None])
    targets = torch.randint(1, n_items + 1, (b,), generator=g)
    targets[targets == 4] = 5
    return SequenceBatch(items, lengths, targets, torch.arange(b))


VARIANTS = [
    {},
    {"mode": "transductive"},
    {"tokens": "added"},
    {"arrangement": "released", "tokens": "separate"},
    {"arrangement": "released", "tokens": "added", "positions": "start"},
    {"arrangement": "released", "item_attention": "causal", "stack_norm": True},
    {"stack_norm": True, "ffn_dropout": 0.1},
    {"mode": "transductive", "id_scoring": "late"},
    {"arrangement": "released", "tokens": "added", "mode": "transductive", "id_scoring": "late"},
    {"arrangement": "released", "tokens": "added", "reg_form": "released"},
    {"decoder": "none", "n_enc_layers": 2},
    {"readout": "recent"},
    {"readout": "recent", "tokens": "added", "mode": "transductive"},
    {"clustering": "kmeans"},
    {"adapter": "moe", "n_experts": 3},
]


@pytest.mark.parametrize("kw", VARIANTS)
def test_missing_modality_features_change_nothing(kw) -> None:
    model = build(**kw).eval()
    batch = make_batch()
    u_ref = model.user_vectors(batch)
    s_ref = model.score_all(batch)
    # overwrite what the catalogue holds for every missing modality, behind the model's back
    for m in DIMS:
        feat, pres = getattr(model, f"_feat_{m}"), getattr(model, f"_present_{m}")
        feat[~pres] = 1e3 * torch.randn(int((~pres).sum()), feat.shape[1])
    model._catalogue_fp = model._fingerprint()  # forces re-clustering over the new buffers
    torch.testing.assert_close(model.user_vectors(batch), u_ref)
    torch.testing.assert_close(model.score_all(batch), s_ref)
    # NaN rows handed to attach_catalogue never surface
    feats, present = catalogue()
    feats["image"][~present["image"]] = float("nan")
    model.attach_catalogue(feats, present)
    torch.testing.assert_close(model.score_all(batch), s_ref)


@pytest.mark.parametrize("kw", VARIANTS)
def test_full_catalogue_scores_equal_per_item_scores(kw) -> None:
    model = build(**kw).eval()
    batch = make_batch()
    cache = model.item_cache()
    scores = model.score_all(batch, cache)
    assert scores.shape == (len(batch), N_ITEMS + 1)
    assert torch.isneginf(scores[:, 0]).all() and torch.isneginf(scores[:, 4]).all()
    u = model.user_vectors(batch, cache)
    alpha = float(model.alpha().detach())
    every = torch.arange(1, N_ITEMS + 1).expand(len(batch), -1)
    torch.testing.assert_close(model.score_items(batch, every, cache), scores[:, 1:])
    for k in range(1, N_ITEMS + 1):
        if k == 4:
            continue
        x = cache.candidates[:, k].unsqueeze(0).expand(len(batch), -1, -1)  # [B, M, d]
        pres = cache.present[:, k].unsqueeze(0).expand(len(batch), -1)
        v = fuse_representations(u, x, pres, alpha)  # eq. 1 for this item, then <u, v>
        expected = (u * v).sum(1)
        if model.config.mode == "transductive" and model.config.variant.id_scoring == "late":
            z = F.normalize(model.item_id.weight[k], dim=0)
            expected = (2 * expected + u @ z) / 3  # the official code's id term
        torch.testing.assert_close(expected, scores[:, k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", ["full", "causal"])
def test_released_decoder_item_attention(attention: str, monkeypatch) -> None:
    """'full': every item token sees every item of the history (the official code's
    ``is_casual=False``); 'causal': only itself and earlier items."""
    model = build(arrangement="released", tokens="added", item_attention=attention).eval()
    masks = []
    block = type(model.decoder[0])
    original = block.forward

    def spy(self, q, memory, self_mask, memory_mask):
        masks.append(self_mask)
        return original(self, q, memory, self_mask, memory_mask)

    monkeypatch.setattr(block, "forward", spy)
    batch = make_batch(b=1, length=5)
    batch.items[0] = torch.tensor([1, 2, 5, 6, 7])
    model.user_vectors(batch)
    allowed = masks[0].expand(1, 1, 5, 5)[0, 0]
    expected = torch.ones(5, 5, dtype=torch.bool)
    if attention == "causal":
        expected = torch.tril(expected)
    assert torch.equal(allowed, expected)


def test_bucketing_does_not_change_results() -> None:
    batch = make_batch(b=40, length=8)
    whole = build(bucket_tokens=0).eval()
    bucketed = build(bucket_tokens=24).eval()
    torch.testing.assert_close(bucketed.score_all(batch), whole.score_all(batch), rtol=1e-5, atol=1e-6)


def test_decoder_is_permutation_invariant() -> None:
    model = build().eval()
    g = torch.Generator().manual_seed(3)
    q = torch.randn(3, 6, 16, generator=g)
    q_valid = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    mem = torch.randn(3, 5, 16, generator=g)
    mem_valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)

    def pooled(q, qv):
        xi = model.decode(q, qv, mem, mem_valid)
        return (xi * qv[..., None]).sum(1) / qv.sum(1, keepdim=True)

    perm = torch.randperm(6, generator=g)
    torch.testing.assert_close(pooled(q[:, perm], q_valid[:, perm]), pooled(q, q_valid))


def test_user_vector_independent_of_interest_labels() -> None:
    """Relabelling the clusters reorders the interest tokens; u must not change."""
    model = build().eval()
    batch = make_batch()
    u_ref = model.user_vectors(batch)
    k = model._prototypes.shape[0]
    perm = torch.randperm(k, generator=torch.Generator().manual_seed(0))
    new_protos = torch.empty_like(model._prototypes)
    new_protos[perm] = model._prototypes
    table = model._interest_of
    model._interest_of = torch.where(table >= 0, perm[table.clamp_min(0)], table)
    model._prototypes = new_protos
    torch.testing.assert_close(model.user_vectors(batch), u_ref, rtol=1e-5, atol=1e-6)


def test_interest_table_marks_missing_modalities() -> None:
    model = build()
    info = model.on_epoch_start(0)
    assert info["n_clusters"] == model._prototypes.shape[0] > 0 and info["cluster_seconds"] >= 0
    table = model._interest_of
    assert (table[0] == -1).all()
    for j, m in enumerate(DIMS):
        pres = getattr(model, f"_present_{m}")
        assert ((table[:, j] >= 0) == pres).all()


def test_random_kmeans_init_is_drawn_afresh_every_epoch() -> None:
    """'random' k-means starts (like the official code) from other tokens every epoch;
    'kmeans++' from the same seed every epoch. Either is reproducible per epoch."""
    def tables(model, epoch):
        model.on_epoch_start(epoch)
        return model._interest_of.clone(), model._prototypes.clone()

    rand = build(clustering="kmeans", kmeans_init="random", kmeans_iters=1)
    a0, p0 = tables(rand, 0)
    a1, p1 = tables(rand, 1)
    assert not torch.equal(p0, p1)
    again0, again_p0 = tables(rand, 0)
    assert torch.equal(a0, again0) and torch.equal(p0, again_p0)
    pp = build(clustering="kmeans")
    assert torch.equal(tables(pp, 0)[1], tables(pp, 1)[1])


def test_free_fusion_factor_starts_at_mean_fusion() -> None:
    """The released preset's α starts at 0 (eq. 2 = the mean of the modality scores)."""
    model = build(alpha_param="free", alpha_init=0.0)
    assert float(model.alpha().detach()) == 0.0 and model.alpha.raw.requires_grad
    batch = make_batch()
    cache = model.item_cache()
    u = model.user_vectors(batch, cache)
    per_mod = torch.einsum("bd,mnd->mbn", u, cache.candidates)  # [M, B, n]
    present = cache.present[:, None, :].to(u.dtype)
    mean = (per_mod * present).sum(0) / present.sum(0).clamp_min(1.0)
    scores = model.score_all(batch, cache)
    has_any = cache.present.any(0)
    torch.testing.assert_close(scores[:, has_any], mean[:, has_any])


def test_id_dropout_perturbs_ids_only_in_training() -> None:
    """id_dropout leaves evaluation untouched and, in training, changes the loss only
    through the id embeddings (content-only models ignore it)."""
    batch = make_batch(b=12)
    plain = build(mode="transductive", id_scoring="late").eval()
    noisy = build(mode="transductive", id_scoring="late", id_dropout=0.5).eval()
    torch.testing.assert_close(noisy.score_all(batch), plain.score_all(batch))
    noisy.train()
    torch.manual_seed(0)
    noisy_loss, _ = noisy.training_loss(batch)
    plain.train()
    torch.manual_seed(0)
    assert not torch.allclose(noisy_loss, plain.training_loss(batch)[0])
    with torch.no_grad():
        noisy.item_id.weight.zero_()
    torch.manual_seed(0)
    zero_ids_a, _ = noisy.training_loss(batch)
    torch.manual_seed(1)
    zero_ids_b, _ = noisy.training_loss(batch)
    torch.testing.assert_close(zero_ids_a, zero_ids_b)  # nothing else is random
    with pytest.raises(ValueError, match="id_dropout"):
        tiny_config(id_dropout=1.0).validate()


@pytest.mark.parametrize("id_scoring", ["late", "added"])
def test_an_item_without_an_id_scores_by_its_content_alone(id_scoring: str) -> None:
    """A transductive model's item added after training (no id embedding) scores what the
    same content scores in an inductive model with the same weights: with 'late' id scoring
    its id is left out of the (2 <u, v> + <u, z>) / 3 mean, not counted as 0."""
    model = build(mode="transductive", id_scoring=id_scoring).eval()
    batch = make_batch()
    cache = model.item_cache()
    feats = {m: getattr(model, f"_feat_{m}")[[2, 3]] for m in model.modalities}
    pres = {m: getattr(model, f"_present_{m}")[[2, 3]] for m in model.modalities}
    new = model.encode_items(feats, pres, torch.zeros(2, dtype=torch.long))
    extended = cache.put(torch.tensor([cache.n_rows, cache.n_rows + 1]), new)
    scores = model.score_all(batch, extended)
    users = model.user_vectors(batch, cache)
    alpha = float(model.alpha().detach())
    for row in (cache.n_rows, cache.n_rows + 1):
        x = extended.candidates[:, row].unsqueeze(0).expand(len(batch), -1, -1)
        pres_row = extended.present[:, row].unsqueeze(0).expand(len(batch), -1)
        expected = (users * fuse_representations(users, x, pres_row, alpha)).sum(1)  # eq. 1, then <u, v>
        torch.testing.assert_close(scores[:, row], expected, rtol=1e-5, atol=1e-6)
    every = torch.arange(1, extended.n_rows).expand(len(batch), -1)
    torch.testing.assert_close(model.score_items(batch, every, extended), scores[:, 1:])
    trained = scores[:, 2]  # the trained twin keeps its id term
    if id_scoring == "late":
        z = F.normalize(model.item_id.weight[2], dim=0)
        torch.testing.assert_close(trained, (2 * scores[:, cache.n_rows] + users @ z) / 3, rtol=1e-5, atol=1e-6)


def test_id_item_dropout_drops_whole_ids_at_its_rate_in_training_only() -> None:
    torch.manual_seed(0)
    ids = torch.randn(20000, 8)
    dropped = id_drop(ids, 0.3)
    gone = dropped.eq(0).all(1)
    assert 0.29 < float(gone.float().mean()) < 0.31
    torch.testing.assert_close(dropped[~gone], ids[~gone])  # kept rows untouched, not rescaled
    model = build(mode="transductive", id_scoring="late", id_item_dropout=0.5)
    batch = make_batch()
    model.eval()
    ref = model.training_loss(batch)[0]
    torch.manual_seed(1)
    assert torch.equal(model.training_loss(batch)[0], ref)
    model.train()
    torch.manual_seed(1)
    a = model.training_loss(batch)[0]
    torch.manual_seed(2)
    assert not torch.equal(a, model.training_loss(batch)[0])
    with torch.no_grad():
        model.item_id.weight.zero_()  # nothing left to drop: nothing else draws
    torch.manual_seed(1)
    a = model.training_loss(batch)[0]
    torch.manual_seed(2)
    torch.testing.assert_close(a, model.training_loss(batch)[0])
    with pytest.raises(ValueError, match="id_item_dropout"):
        tiny_config(id_item_dropout=1.0).validate()


def test_finetune_loss_is_eq8_and_decreases() -> None:
    model = build(gamma=0.0).eval()
    batch = make_batch(b=12)
    loss, parts = model.training_loss(batch)
    ref = F.cross_entropy(model.score_all(batch) / model.config.tau, batch.targets)
    torch.testing.assert_close(loss, ref)
    assert set(parts) >= {"loss_si", "loss_reg"}

    model = build(dropout=0.1)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(15):
        loss, _ = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_regulariser_is_mean_pairwise_inner_product() -> None:
    model = build(reg_normalize=False)
    g = torch.Generator().manual_seed(2)
    xi = torch.randn(3, 4, 16, generator=g)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    got = model.regulariser(xi, mask)
    for b in range(3):
        rows = xi[b][mask[b]]
        m = rows.shape[0]
        ref = sum(float(rows[i] @ rows[j]) for i in range(m) for j in range(m)) / m ** 2
        assert abs(float(got[b]) - ref) < 1e-4


def test_released_regulariser_is_the_official_formula() -> None:
    """reg_form='released' against a literal transcription of the official code: rows padded
    to P = (most valid slots) + 1, every padding slot holding the padding query's output,
    pooled = (n/P) Σ_slots, summed ||pooled||² / d over rows and views."""
    model = build(reg_form="released", arrangement="released", tokens="added")
    g = torch.Generator().manual_seed(3)
    views, literal = [], 0.0
    for _ in range(2):
        xi = torch.randn(3, 5, 16, generator=g)  # column 4: the padding query's output
        mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
        views.append(model.regulariser(xi, mask))
        width = 5
        memory = torch.stack([torch.cat([xi[b][mask[b]], xi[b, 4].expand(width - int(mask[b].sum()), 16)])
                              for b in range(3)])  # [B, P, d] as the official code holds it
        padding = torch.stack([torch.arange(width) >= int(mask[b].sum()) for b in range(3)])
        weight = (~padding).unsqueeze(-1).float().mean(1, keepdim=True)
        pooled = (memory * weight).sum(1)
        literal += float((pooled * pooled).sum() / 16)
    assert abs(float(model.reduce_regulariser(*views)) - literal) < 1e-3 * literal
    paper = build()
    r = torch.rand(2, 3, generator=g)
    torch.testing.assert_close(paper.reduce_regulariser(r[0], r[1]), r.mean())
    with pytest.raises(ValueError, match="reg_form"):
        tiny_config(reg_form="released").validate()


@pytest.mark.parametrize("form", ["paper", "released"])
def test_finetune_loss_adds_gamma_times_the_reduced_regulariser(form: str) -> None:
    kw = dict(reg_form=form, arrangement="released", tokens="added", dropout=0.0)
    batch = make_batch(b=12)
    base, _ = build(gamma=0.0, **kw).eval().training_loss(batch)
    model = build(gamma=0.5, **kw).eval()
    loss, parts = model.training_loss(batch)
    torch.testing.assert_close(loss - base, torch.tensor(0.5 * parts["loss_reg"]), rtol=1e-4, atol=1e-5)
    # the released form's extra padding query is masked as a key: scores are unchanged
    other = build(**{**kw, "reg_form": "released" if form == "paper" else "paper"}).eval()
    torch.testing.assert_close(model.score_all(batch), other.score_all(batch))
    # the released form sums over rows: it grows with the batch, the paper's mean does not
    _, half = model.training_loss(SequenceBatch(*(t[:6] for t in (batch.items, batch.lengths,
                                                               batch.targets, batch.users))))
    assert (parts["loss_reg"] > 1.3 * half["loss_reg"]) == (form == "released")


def test_pretrain_loss_terms() -> None:
    model = build(gamma=0.0, lambda_ss=1.0).eval()  # eval: no augmentation, views coincide
    batch = make_batch(b=8)
    batch.targets[1] = batch.targets[0]  # a duplicate target must not be a negative
    loss, parts = model.pretrain_loss(batch)
    cache = model.item_cache()
    u = model.user_vectors(batch, cache)
    tgt = batch.targets
    scores = torch.stack([model.score_items(batch, tgt[None].expand(len(tgt), -1), cache)])[0]
    same = (tgt[:, None] == tgt[None]) & ~torch.eye(len(tgt), dtype=torch.bool)
    si = F.cross_entropy(scores.masked_fill(same, float("-inf")) / model.config.tau, torch.arange(len(tgt)))
    within = (u @ u.t()).masked_fill(torch.eye(len(tgt), dtype=torch.bool), float("-inf"))
    ss = F.cross_entropy(torch.cat([u @ u.t(), within], 1) / model.config.tau, torch.arange(len(tgt)))
    torch.testing.assert_close(torch.tensor(parts["loss_si"]), si, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(parts["loss_ss"]), ss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, si + ss, rtol=1e-4, atol=1e-5)


def test_pretrain_with_augmentation_trains() -> None:
    model = build(feature_dropout=0.3, item_drop=0.3, dropout=0.1).train()
    batch = make_batch(b=10)
    loss, parts = model.pretrain_loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) >= {"loss_si", "loss_ss", "loss_reg"}
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("adapters."))


def test_item_drop_removes_every_modality_of_an_item() -> None:
    model = build(item_drop=0.5)
    batch = make_batch(b=10)
    items = keep_last(batch.items, model.config.max_len)
    keep = item_drop_mask(items, model.config.item_drop)
    assert keep.any(1).all() and not (keep & (items == 0)).any()
    tables = model.item_tables()
    slots = model._token_slots(items, tables, keep)
    used = slots.valid & (slots.item > 0)
    dropped_pos = ~keep.gather(1, slots.item_pos)
    assert not (used & dropped_pos).any()


def test_transfer_parameters_and_freezing() -> None:
    model = build(mode="transductive")
    names = model.transfer_parameters("inductive")
    assert names and all(n.startswith(("adapters.", "alpha.", "input_norm.", "query_norm.")) for n in names)
    assert "alpha.raw" in names and "input_norm.weight" in names
    trans = model.transfer_parameters("transductive")
    assert set(trans) == set(names) | {"item_id.weight"}
    assert model.transfer_parameters("full") == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError):
        build().transfer_parameters("transductive")

    chosen = set(model.freeze_for_transfer("transductive"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = model.training_loss(make_batch())
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        assert p.requires_grad == (n in chosen)
        changed = not torch.equal(before[n], p.detach())
        if n not in chosen:
            assert not changed, n
    assert not torch.equal(before["adapters.text.linear.weight"], model.adapters["text"].linear.weight)


def test_state_dict_carries_clustering_but_not_catalogue() -> None:
    model = build().eval()
    batch = make_batch()
    scores = model.score_all(batch)
    state = model.state_dict()
    assert not any(k.startswith(("_feat_", "_present_")) for k in state)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    fresh = MISSRec(model.config, N_ITEMS, DIMS)
    fresh.attach_catalogue(*catalogue())
    fresh.load_state_dict(loaded)
    fresh.eval()
    torch.testing.assert_close(fresh.score_all(batch), scores)
    assert torch.equal(fresh._interest_of, model._interest_of)


def test_reset_items_for_a_new_domain() -> None:
    model = build(mode="transductive")
    model.reset_items(45)
    assert model.item_id.weight.shape == (46, 16)
    with pytest.raises(RuntimeError):
        model.score_all(make_batch(n_items=45))
    model.attach_catalogue(*catalogue(5, n_items=45))
    assert model.eval().score_all(make_batch(n_items=45)).shape == (6, 46)
    with pytest.raises(ValueError):
        model.attach_catalogue(*catalogue(5, n_items=30))


def test_keep_last_and_long_histories() -> None:
    items = torch.tensor([[1, 2, 3, 4, 5, 0], [7, 8, 0, 0, 0, 0]])
    assert keep_last(items, 3).tolist() == [[3, 4, 5], [7, 8, 0]]
    model = build().eval()
    long = SequenceBatch(torch.randint(1, N_ITEMS, (2, 12)), torch.tensor([12, 12]),
                         torch.tensor([1, 2]), torch.tensor([0, 1]))
    short = SequenceBatch(long.items[:, -8:], torch.tensor([8, 8]), long.targets, long.users)
    torch.testing.assert_close(model.score_all(long), model.score_all(short))


def test_config_presets_and_validation() -> None:
    paper = preset("paper")
    assert (paper.d, paper.n_enc_layers, paper.n_dec_layers, paper.n_heads) == (300, 1, 1, 2)
    assert (paper.tau, paper.gamma, paper.lambda_ss) == (0.075, 0.1, 1.0)
    rel = MISSRecConfig.preset("released", d=64)
    off = rel.variant
    assert (rel.tau, rel.gamma, rel.n_heads, rel.dropout, off.tokens, rel.clustering) == \
        (0.07, 1e-4, 4, 0.5, "added", "kmeans")
    assert rel.d == 64 and (rel.n_enc_layers, rel.n_dec_layers) == (1, 1)
    assert (off.item_attention, off.id_scoring, off.arrangement) == ("full", "late", "released")
    assert (off.ffn_dropout, off.stack_norm, off.attn_init) == (0.5, True, "xavier")
    assert (rel.kmeans_init, rel.kmeans_iters, off.alpha_param, rel.alpha_init, off.adapter_init) \
        == ("random", 1, "free", 0.0, "torch")
    assert off.reg_form == "released" and paper.variant.reg_form == "paper"
    assert MISSRecConfig.preset_train("released") == {"batch_size": 512, "bucket_by_length": False}
    assert MISSRecConfig.preset_train("paper") == {"batch_size": 2048}  # §4.2.4
    for bad in ({"tokens": "mixed"}, {"d": 15}, {"decoder": "none", "arrangement": "released"},
                {"dropout": 1.0}, {"kmeans_init": "k-means||"}, {"alpha_param": "exp"},
                {"adapter_init": "xavier"}):
        with pytest.raises(ValueError):
            from_dict(MISSRecConfig, {**dataclasses.asdict(paper), **bad}, "model")
    with pytest.raises(ValueError):
        MISSRec(paper, 5, {"text": 4})


def test_released_preset_matches_the_official_model_size() -> None:
    """The official fine-tuning logs on Scientific (4,386 item rows, 512-d text and image
    features) count 1,719,513 trainable parameters inductive and 3,035,313 transductive
    (plus a 4,386 x 300 item-id table)."""
    model = MISSRec(preset("released"), 4385, {"text": 512, "image": 512})
    assert sum(p.numel() for p in model.parameters()) == 1_719_513
    with_ids = MISSRec(preset("released", mode="transductive"), 4385, {"text": 512, "image": 512})
    assert sum(p.numel() for p in with_ids.parameters()) == 3_035_313
    # q/k/v projections keep nn.Transformer's Xavier init: U(±sqrt(6 / (300 + 900)))
    w = model.encoder[0].attn.in_proj.weight.detach()
    bound = (6 / (300 + 900)) ** 0.5
    assert float(w.abs().max()) <= bound and float(w.std()) == pytest.approx(bound / 3 ** 0.5, rel=0.02)
    assert float(model.decoder[0].ffn.fc1.weight.detach().std()) == pytest.approx(0.02, rel=0.02)
    # its adapters keep nn.Linear's init: weight and bias U(±1/sqrt(512))
    adapter = model.adapters["text"].linear
    bound = 512 ** -0.5
    assert float(adapter.weight.detach().abs().max()) <= bound
    assert float(adapter.weight.detach().std()) == pytest.approx(bound / 3 ** 0.5, rel=0.02)
    assert float(adapter.bias.detach().abs().max()) <= bound and float(adapter.bias.detach().std()) > 0.01


@pytest.mark.parametrize("tokens", ["separate", "added"])
def test_missing_modalities_are_not_tokens(tokens: str) -> None:
    """A missing modality is left out of attention, not fed as a zero token."""
    model = build(tokens=tokens)
    batch = make_batch(b=10)
    tables = model.item_tables()
    slots = model._token_slots(batch.items, tables, None)
    pres = tables.present[:, batch.items]  # [M, B, L]
    real = batch.items > 0
    if tokens == "separate":
        assert tables.present[slots.modality, slots.item][slots.valid].all()
        assert int(slots.valid.sum()) == int((pres & real).sum())
    else:
        assert slots.present[slots.valid].any(-1).all()
        assert int(slots.valid.sum()) == int((pres.any(0) & real).sum())
    # row 0's history holds item 4, which has no modality: it yields no token
    assert not (slots.valid[0] & (slots.item[0] == 4)).any()


def test_forward_dispatches_objectives() -> None:
    model = build().eval()
    batch = make_batch()
    torch.testing.assert_close(model(batch)[0], model.training_loss(batch)[0])
    torch.testing.assert_close(model(batch, "pretrain")[0], model.pretrain_loss(batch)[0])
    with pytest.raises(ValueError):
        model(batch, "distill")


@pytest.mark.parametrize("kw", VARIANTS)
def test_every_parameter_is_used(kw) -> None:
    """No dead parameters: DDP then works without find_unused_parameters."""
    model = build(**kw).train()
    loss, _ = model.training_loss(make_batch())
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused


@pytest.mark.parametrize("separate", [True, False])
def test_recent_tokens_are_those_of_the_last_item_that_has_a_token(separate) -> None:
    from missrec.model.missrec.tokens import recent_tokens, token_slots
    # items 1: text + image, 2: text only, 3: no modality, 4: image only
    present = torch.tensor([[False, True, True, False, False], [False, True, False, False, True]])
    items = torch.tensor([[1, 2, 0, 0], [2, 1, 3, 0], [4, 4, 1, 2]])
    slots = token_slots(items, present, separate, None)
    mask = recent_tokens(slots)
    want_pos = torch.tensor([1, 1, 3])  # row 1's last item (3) has no token, so item 1 is the recent one
    assert torch.equal(mask, slots.valid & (slots.item_pos == want_pos[:, None]))
    # separate tokens: one per present modality of that item; added: one per item
    assert mask.sum(1).tolist() == ([1, 2, 1] if separate else [1, 1, 1])



def test_modality_dropout_keeps_one_modality_per_item_and_drops_at_its_rate() -> None:
    torch.manual_seed(0)
    present = torch.rand(2, 20000) < 0.8
    present[:, 0] = False
    kept = modality_drop_mask(present, 0.3)
    assert not (kept & ~present).any()  # never adds a modality
    assert torch.equal(kept.any(0), present.any(0))  # every item keeps one; padding keeps none
    both = present.all(0)
    lost = (present & ~kept)[:, both].float().mean()
    assert 0.245 < float(lost) < 0.265  # 0.3 per modality, less the restored ones: 0.3 - 0.3² / 2
    alone = present.sum(0) == 1
    assert torch.equal(kept[:, alone], present[:, alone])
    assert torch.equal(modality_drop_mask(present[:1], 0.9), present[:1])  # one modality: nothing to drop


def test_modality_dropout_changes_training_only() -> None:
    model = build(modality_dropout=0.5)
    batch = make_batch()
    model.eval()
    ref = model.training_loss(batch)[0]
    torch.manual_seed(1)
    assert torch.equal(model.training_loss(batch)[0], ref)  # no draw outside training
    model.train()
    torch.manual_seed(1)
    a = model.training_loss(batch)[0]
    torch.manual_seed(2)
    assert not torch.equal(a, model.training_loss(batch)[0])
