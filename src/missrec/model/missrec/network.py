"""The MISSRec sequence model (§3), in the paper's arrangement.

For one batch of histories:

1. Item tokens (§3.2.3): every modality's frozen feature goes through its adapter ψ^m;
   in transductive mode the item-id embedding is added (§3.6.2). Missing modalities are
   never tokens (:mod:`.tokens`).
2. Context encoder (§3.4.1): the tokens of all history items, item-wise positional
   embeddings shared by the tokens of one item, a modality-type embedding, LayerNorm +
   dropout, K_e bidirectional blocks.
3. Interest tokens (§3.3.2): the de-duplicated interest prototypes of a history's tokens,
   from the clustering computed at epoch start (:mod:`.items`).
4. Interest-aware decoder (§3.4.2): the interest tokens are the queries of K_d non-causal
   decoder blocks cross-attending to the encoder output; the decoded ξ are mean-pooled
   into the user vector u (``readout='mean'``), or the most recent item's contextual token
   is decoded beside them and becomes u (``readout='recent'``).
5. Candidates are scored by dynamic fusion (eqs. 1-2) of their modality embeddings.

Choices the paper leaves open: u and every candidate modality embedding are L2-normalised
before inner products (``normalize``), so τ acts on cosine similarities, as in UniSRec and
the released code; the interest prototypes are constants during an epoch (no gradient flows
into them), like the released code's interest embedding buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...data.batching import SequenceBatch
from ..adapters import MoEAdapter
from ..base import check_feature_dims
from ..dropout import Dropout
from ..fusion import Concentration, fuse_scores, modality_scores
from ..layers import DecoderBlock, EncoderBlock, key_mask
from . import losses, released
from .config import MISSRecConfig
from .items import ItemSide, MISSRecItems, init_weights
from .tokens import (Slots, Tables, buckets, ensure_one, item_positions, keep_last, masked_mean,
                     recent_tokens, token_counts, token_interests, token_slots, unique_per_row)


class MISSRec(ItemSide):
    """The MISSRec sequence model (§3) over a catalogue of ``n_items`` items.

    Construct with the config, the catalogue size and each modality's feature width, then
    :meth:`attach_catalogue` before training or scoring.
    """

    def __init__(self, config: MISSRecConfig, n_items: int, feature_dims: dict[str, int]):
        config.validate()
        check_feature_dims("missrec", config.modalities, feature_dims)
        # modules are created (and so drawn from the RNG) in a fixed order, the adapters
        # first (the item side), and only when used, so DDP needs no find_unused_parameters
        super().__init__(config, n_items, feature_dims)
        c, d = config, config.d
        self.alpha = Concentration(c.alpha_init, constrained=c.variant.alpha_param == "softplus")
        self.position = nn.Embedding(c.max_len, d)
        self.modality_type = (nn.Embedding(len(self.modalities), d)
                              if c.variant.tokens == "separate" else None)
        self.input_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)
        self.query_norm = (nn.LayerNorm(d, eps=c.layer_norm_eps)
                           if c.decoder == "interest" and c.variant.arrangement == "paper" else None)
        self.input_dropout = Dropout(c.dropout)
        block = (d, c.n_heads, c.ffn_dim, c.dropout, c.attn_dropout, c.layer_norm_eps,
                 c.variant.ffn_dropout)
        self.encoder = nn.ModuleList([EncoderBlock(*block) for _ in range(c.n_enc_layers)])
        n_dec = c.n_dec_layers if c.decoder == "interest" else 0
        self.decoder = nn.ModuleList([DecoderBlock(*block) for _ in range(n_dec)])
        self.encoder_norm = nn.LayerNorm(d, eps=c.layer_norm_eps) if c.variant.stack_norm else None
        self.decoder_norm = (nn.LayerNorm(d, eps=c.layer_norm_eps)
                             if c.variant.stack_norm and n_dec else None)
        if c.mode == "transductive":
            self.item_id = self.new_id_table(self.n_items)
        self.apply(lambda module: init_weights(module, c.init_std))
        released.official_init(self, c.variant.attn_init, c.variant.adapter_init)
        for a in self.adapters.values():
            if isinstance(a, MoEAdapter):
                nn.init.zeros_(a.gate.weight)  # uniform routing at start

    # ------------------------------------------------------------------ sequence side

    def _token_slots(self, items: torch.Tensor, tables: Tables, keep: torch.Tensor | None) -> Slots:
        return token_slots(items, tables.present, self.config.variant.tokens == "separate", keep)

    def encode_histories(self, items: torch.Tensor, tables: Tables,
                         keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors u [B, d] (unnormalised) and regulariser values [B] for histories.

        ``items`` [B, L] indexes rows of ``tables`` (0 = padding); ``keep`` [B, L] drops
        items (pre-training item dropping). Rows are processed in buckets of similar token
        counts, each padded only to its own widest row (results do not depend on it).
        """
        budget = self.config.bucket_tokens
        counts = token_counts(items, tables.present, self.config.variant.tokens == "separate", keep)
        if budget <= 0 or int(counts.max()) * items.shape[0] <= budget:
            return self._encode_rows(items, tables, keep)
        order = torch.argsort(counts, stable=True)
        parts_u, parts_r = [], []
        for rows in buckets(order, counts[order].tolist(), budget):
            sub_keep = None if keep is None else keep[rows]
            pu, pr = self._encode_rows(items[rows], tables, sub_keep)
            parts_u.append(pu)
            parts_r.append(pr)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return torch.cat(parts_u)[inverse], torch.cat(parts_r)[inverse]

    def _encode_rows(self, items: torch.Tensor, tables: Tables, keep: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-4 of the pipeline for one bucket of rows: (u, regulariser values)."""
        slots = self._token_slots(items, tables, keep)
        x = self._embed_items(slots, tables)
        interest_ids = token_interests(slots, tables.interests)
        if self.config.variant.arrangement == "released":
            return released.released_forward(self, x, slots, interest_ids)
        x = self.encode(x, slots.valid)
        recent = self.config.readout == "recent"
        if self.config.decoder == "none":
            xi, xi_mask = x, slots.valid
            u = masked_mean(x, recent_tokens(slots)) if recent else masked_mean(xi, xi_mask)
            return u, self.regulariser(xi, xi_mask)
        q, q_mask = self.interest_queries(interest_ids)
        if not recent:
            xi = self.decode(q, q_mask, x, slots.valid)
            return masked_mean(xi, q_mask), self.regulariser(xi, q_mask)
        # the most recent item's contextual token queries the decoder beside the interests:
        # its output is u, so u has a query for the last item (the mean of ξ has none)
        r = masked_mean(x, recent_tokens(slots))[:, None]
        out = self.decode(torch.cat([r, q], 1), torch.cat([torch.ones_like(q_mask[:, :1]), q_mask], 1),
                          x, slots.valid)
        return out[:, 0], self.regulariser(out[:, 1:], q_mask)

    def _embed_items(self, slots: Slots, tables: Tables) -> torch.Tensor:
        """Encoder input (§3.4.1): tokens + item-wise position (+ modality type), then
        LayerNorm and dropout. [B, W, d]."""
        c = self.config
        it = slots.item
        if c.variant.tokens == "separate":
            x = tables.tokens[slots.modality, it] + self.modality_type(slots.modality)
        else:
            pres = slots.present.permute(2, 0, 1).to(tables.tokens.dtype)  # [M, B, W]
            x = (tables.tokens[:, it] * pres[..., None]).sum(0)
        if tables.ids is not None:
            x = x + tables.ids[it]
        pos = item_positions(slots, c.variant.positions)
        x = x + self.position(pos.clamp_max(c.max_len - 1))
        return self.input_dropout(self.input_norm(x))

    def interest_queries(self, interest_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interest tokens (§3.3.2): de-duplicated prototypes of a row's tokens, [B, Q, d] + mask."""
        uniq, mask = unique_per_row(interest_ids)
        mask = ensure_one(mask)
        protos = self._prototypes[uniq.clamp_min(0)]
        protos = protos.masked_fill(~mask[..., None], 0.0)
        return (protos if self.query_norm is None else self.query_norm(protos)), mask

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The encoder stack over tokens ``x`` [B, T, d] (padding masked as keys)."""
        mask = key_mask(valid)
        for blk in self.encoder:
            x = blk(x, mask)
        return x if self.encoder_norm is None else self.encoder_norm(x)

    def decode(self, queries: torch.Tensor, query_valid: torch.Tensor, memory: torch.Tensor,
               memory_valid: torch.Tensor) -> torch.Tensor:
        """Interest-aware decoder (§3.4.2): non-causal self-attention among the queries,
        cross-attention to the encoder output; returns the decoded ξ [B, Q, d].

        Nothing depends on the order of the queries (no positions, no causal mask), so the
        mean of ξ over the valid queries is permutation-invariant.
        """
        return self.decoder_stack(queries, key_mask(query_valid), memory, key_mask(memory_valid))

    def decoder_stack(self, x: torch.Tensor, self_mask: torch.Tensor, memory: torch.Tensor,
                      memory_mask: torch.Tensor) -> torch.Tensor:
        """The decoder blocks with explicit self-attention and memory masks (the 'released'
        arrangement passes its own self-attention mask)."""
        for blk in self.decoder:
            x = blk(x, memory, self_mask, memory_mask)
        return x if self.decoder_norm is None else self.decoder_norm(x)

    def regulariser(self, xi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-row regulariser values of eqs. 7-8 (:func:`.losses.interest_regulariser`), or
        the parts the official form reduces (:func:`.released.regulariser_parts`)."""
        if self.config.variant.reg_form == "released":
            return released.regulariser_parts(xi, mask)
        return losses.interest_regulariser(xi, mask, self.config.reg_normalize)

    def reduce_regulariser(self, *views: torch.Tensor) -> torch.Tensor:
        """One regulariser value from the per-row values of one or more views."""
        if self.config.variant.reg_form == "released":
            return released.reduce_regulariser(views, self.config.d)
        return losses.mean_regulariser(views)

    def finish_user(self, u: torch.Tensor) -> torch.Tensor:
        """u as it is scored: L2-normalised with ``config.normalize``."""
        return F.normalize(u, dim=-1) if self.config.normalize else u

    def prepare_histories(self, items: torch.Tensor) -> torch.Tensor:
        """Histories [B, L] on the model's device, cut to their last ``max_len`` items."""
        return keep_last(items.to(self._device()), self.config.max_len)

    def score_candidates(self, u: torch.Tensor, candidates: torch.Tensor, present: torch.Tensor,
                         id_candidates: torch.Tensor | None) -> torch.Tensor:
        """Scores of every candidate: eq. 2's fusion (then the official late id term)."""
        fused = fuse_scores(modality_scores(u, candidates), present, self.alpha())
        return fused if id_candidates is None else released.late_ids(fused, u @ id_candidates.t(), id_candidates)

    # ------------------------------------------------------------------ public API

    def forward(self, batch: SequenceBatch, objective: str = "finetune"
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """``objective``: 'finetune' (eq. 8, :meth:`training_loss`) or 'pretrain' (eq. 7,
        :meth:`pretrain_loss`). Going through ``forward`` lets DistributedDataParallel see
        the call and synchronise gradients."""
        if objective == "finetune":
            return self.training_loss(batch)
        if objective == "pretrain":
            return self.pretrain_loss(batch)
        raise ValueError(f"objective {objective!r}; expected 'finetune' or 'pretrain'")

    def user_vectors(self, batch: SequenceBatch, cache: MISSRecItems | None = None) -> torch.Tensor:
        """Sequence representations u [B, d] (normalised if ``config.normalize``); history
        items are rows of ``cache``, their interests the cache's."""
        self.ensure_interests()
        u, _ = self.encode_histories(self.prepare_histories(batch.items), self.own(cache).tables())
        return self.finish_user(u)

    def score_block(self, users: torch.Tensor, cache: MISSRecItems,
                    items: slice | torch.Tensor) -> torch.Tensor:
        """Fused scores (eq. 2) of the items ``items`` (a slice or index tensor) for ``users``
        from :meth:`user_vectors`: [B, C]; items with no modality are ``-inf``. Not divided
        by τ (rankings are the same)."""
        ids = None if cache.id_candidates is None else cache.id_candidates[items]
        return self.score_candidates(users, cache.candidates[:, items], cache.present[:, items], ids)

    def score_rows(self, users: torch.Tensor, cache: MISSRecItems, items: torch.Tensor) -> torch.Tensor:
        """Fused scores of chosen items: ``items`` [B, C] (per row) -> [B, C]."""
        cand = cache.candidates[:, items]  # [M, B, C, d]
        scores = torch.einsum("bd,mbcd->mbc", users, cand)
        fused = fuse_scores(scores, cache.present[:, items], self.alpha())
        if cache.id_candidates is None:
            return fused
        ids = cache.id_candidates[items]
        return released.late_ids(fused, torch.einsum("bd,bcd->bc", users, ids), ids)

    def retrieval_tables(self, cache: MISSRecItems) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Eq. 2's fused score is a convex combination of the modality scores (the weights are
        a softmax): it lies between an item's worst and best modality score, and at α = 0 it
        is the mean. So: one table of each item's mean modality embedding (the α = 0 value,
        exact for an item with one modality), one per modality (items whose best modality
        dominates when α is large), and the id embeddings with 'late' id scoring."""
        present = cache.present
        weights = present.to(cache.candidates.dtype)[..., None]
        mean = (cache.candidates * weights).sum(0) / weights.sum(0).clamp_min(1.0)
        tables = [(mean, present.any(0))]
        tables += [(cache.candidates[m], present[m]) for m in range(present.shape[0])]
        if cache.id_candidates is not None:
            rows = torch.ones_like(present[0])
            rows[0] = False
            tables.append((cache.id_candidates, rows))
        return tables

    def training_loss(self, batch: SequenceBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Fine-tuning objective, eq. 8 (:func:`.losses.finetune_loss`)."""
        return losses.finetune_loss(self, batch)

    def pretrain_loss(self, batch: SequenceBatch, gather: losses.Gather | None = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
        """Pre-training objective, eq. 7, on two augmented views (:func:`.losses.pretrain_loss`);
        ``gather`` draws the in-batch negatives from every data-parallel process."""
        return losses.pretrain_loss(self, batch, gather)

    # ------------------------------------------------------------------ transfer

    def transfer_parameters(self, mode: str) -> list[str]:
        """Parameters trained in parameter-efficient transfer (§3.6).

        'inductive': the adapters, α and the input LayerNorms (item tokens and interest
        queries); 'transductive': those plus the item-id table; 'full': every parameter.
        """
        names = [n for n, _ in self.named_parameters()]
        if mode == "full":
            return names
        if mode not in ("inductive", "transductive"):
            raise ValueError(f"transfer mode {mode!r}; expected 'inductive', 'transductive' or 'full'")
        prefixes = ("adapters.", "alpha.", "input_norm.", "query_norm.")
        chosen = [n for n in names if n.startswith(prefixes)]
        if mode == "transductive":
            if self.item_id is None:
                raise ValueError("transductive transfer needs a model built with mode='transductive'")
            chosen.append("item_id.weight")
        return chosen

    def adapter_weights(self) -> list[str]:
        return [n for n in self.state_dict() if n.startswith("adapters.")]

    def freeze_for_transfer(self, mode: str) -> list[str]:
        """Set ``requires_grad`` to train only :meth:`transfer_parameters`; returns their names."""
        chosen = set(self.transfer_parameters(mode))
        for n, p in self.named_parameters():
            p.requires_grad_(n in chosen)
        return sorted(chosen)
