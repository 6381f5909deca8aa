"""The analyses of the paper's §4, each a declared list of cells.

=========  ==================================================================================
table2     all models with and without ids, on the full Scientific set (MiniLM text for every
           item, CLIP images for the 36% that have one) and on the full-modality subset
fig4       the popularity-bucket plot (Figure 4) from table2's runs (same cells: give the
           table2 folder as --out to reuse them)
table3     MISSRec with T, V, T+V inputs, inductive and transductive, on the subset, plus
           SASRec (ID) and UniSRec T for context
table4     pre-training (Office + MovieLens-100K, MiniLM text) then fine-tuning on the subset,
           against training from scratch, with and without ids
table5     ablations of MISSRec T+V+ID on the subset, plus two released-code choices
baselines  validation sweeps of the baselines on the subset and on the full set (learning rate,
           dropout, UniSRec's temperature): the report's valid N@10 column picks each setting
transfer   leave-one-domain-out transfer (Scientific subset, Office, MovieLens-100K): zero-shot,
           fine-tuned and from-scratch MISSRec, UniSRec and popularity at several training
           fractions (:mod:`.transfer`)
defaults   every model at its default, tuned on the domain and at the setting chosen across
           domains, on the four domains at hand (:mod:`.defaults`)
smoke      every kind of cell on generated toy stores (seconds; used by the tests)
=========  ==================================================================================

Departures from the paper, each said again beside the rows it affects:

* no five-domain Amazon pre-training corpus is available; table4/table5 pre-train on Office
  and MovieLens-100K (text only), by default for 3 epochs on 3,000 sequences per domain (a
  2-core CPU budget), and every other cell trains from scratch;
* the full Scientific set has no CLIP text features here, so its text is MiniLM (384-d);
* Table 5's variant (4) "2-layer interest encoder" has no exact config: the closest is the
  released-code arrangement (encoder over interest tokens) with 2 encoder blocks, whose
  decoder still reads the item tokens.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissrecError
from ..report.paper import TABLE2, TABLE3, TABLE5
from .defaults import DEFAULT_DOMAINS, defaults_experiment
from .defaults import NAME as DEFAULTS
from .spec import CellSpec, Experiment, TableSpec
from .transfer import DEFAULT_FRACTIONS, DEFAULT_TARGETS, TRANSFER_EXP, transfer_experiment
from .transfer import NAME as TRANSFER

TV = ("modalities=text,image",)
ID = ("mode=transductive",)
IND = ("mode=inductive",)
"""MISSRec without ids, now that its default has them (the T+V rows)."""
PRETRAIN_NOTE = ("pre-trained on Office + MovieLens-100K (MiniLM text only; by default 3 epochs over 3,000 "
                 "sequences per domain), not the paper's five Amazon domains")


BASELINES = (("sasrec", "SASRec ID", "sasrec", ()), ("sasrec-text", "SASRec T", "sasrec-text", ()),
             ("unisrec-t", "UniSRec T", "unisrec", ()), ("unisrec-t-id", "UniSRec T+ID", "unisrec", ID))
"""Table 2's baselines: cell-name suffix, label, model, overrides."""
SCIENTIFIC = {"unisrec": ("lr=3e-3",)}
"""Where a baseline's default is not what the baselines' search chose on the Scientific subset
(docs/baselines.md), Tables 2 and 3, which are Scientific's, train it at the subset's choice."""


def _table2_cells() -> list[CellSpec]:
    cells = []
    rows = [*BASELINES, ("missrec-tv", "MISSRec T+V", "missrec", TV + IND),
            ("missrec-tv-id", "MISSRec T+V+ID", "missrec", TV + ID)]
    for prefix, store, table in (("mixed", "scientific-mixed", "table2-mixed"),
                                 ("mm", "amazon-scientific-mm", "table2-mm")):
        for order, (name, label, model, sets) in enumerate(rows):
            if table == "table2-mm":
                ref = ("table3", label) if label in TABLE3.rows else None
            elif model == "missrec":
                ref = ("table4", label)  # the paper's from-scratch MISSRec numbers on this set
            else:
                ref = ("table2", label) if label in TABLE2.rows else None
            cells.append(CellSpec(f"{prefix}-{name}", model, store, sets + SCIENTIFIC.get(model, ()), label, table,
                                  order, ref))
    return cells


_TABLE2_TABLES = {
    "table2-mixed": TableSpec(
        "Table 2: Scientific, full set (text for every item, images for 36%)",
        "Ours: trained from scratch; text features are MiniLM (the paper: CLIP). The paper's UniSRec rows "
        "are pre-trained on five Amazon domains; its MISSRec references here are Table 4's from-scratch rows."),
    "table2-mm": TableSpec(
        "Table 2 models on the full-modality subset (amazon-scientific-mm, CLIP text + image)",
        "Ours: trained from scratch. References are the paper's Table 3 (same subset)."),
}

TABLE2_EXP = Experiment(
    "table2", "All models with and without ids on the full Scientific set and on its full-modality subset.",
    tuple(_table2_cells()), _TABLE2_TABLES)

FIG4_EXP = Experiment(
    "fig4", "Figure 4: Recall@10 improvement over SASRec (ID) by target-item popularity, from table2's runs "
    "(give table2's --out to reuse them).", TABLE2_EXP.cells, _TABLE2_TABLES, runs_of="table2")


def _table3_cells() -> list[CellSpec]:
    store = "amazon-scientific-mm"
    cells = []
    order = 0
    for mods, abbr in ((("text",), "T"), (("image",), "V"), (("text", "image"), "T+V")):
        for mode in ("inductive", "transductive"):
            label = f"MISSRec {abbr}" + ("+ID" if mode == "transductive" else "")
            name = "missrec-" + abbr.lower().replace("+", "") + ("-id" if mode == "transductive" else "")
            cells.append(CellSpec(name, "missrec", store, (f"modalities={','.join(mods)}", f"mode={mode}"), label,
                                  "table3", order, ("table3", label)))
            order += 1
    cells.append(CellSpec("sasrec", "sasrec", store, (), "SASRec ID", "table3", order, None, "for context"))
    cells.append(CellSpec("unisrec-t", "unisrec", store, SCIENTIFIC.get("unisrec", ()), "UniSRec T", "table3",
                          order + 1, ("table3", "UniSRec T"), "for context"))
    return cells


TABLE3_EXP = Experiment(
    "table3", "Modality ablation of MISSRec (T, V, T+V; inductive and transductive) on the full-modality subset.",
    tuple(_table3_cells()),
    {"table3": TableSpec("Table 3: input modalities on the full-modality subset (amazon-scientific-mm)",
                         "Ours: trained from scratch with the dataset's CLIP text and image features.")})


PRETRAIN_EPOCHS = 3
PRETRAIN_PER_DOMAIN = 3000
"""A small CPU budget for the pre-training cells, so an analysis with pre-training runs on a
CPU (docs/experiments.md gives its time); raise them with ``--set pretrain.epochs=N
--max-per-domain 0`` (0: every sequence)."""


def _pretrain_cell(name: str, extra: tuple[str, ...] = ()) -> CellSpec:
    return CellSpec(name, "missrec", "", (f"epochs={PRETRAIN_EPOCHS}",) + TV + extra, kind="pretrain",
                    pretrain_stores=("office", "ml-100k"), max_per_domain=PRETRAIN_PER_DOMAIN)


def _table4_cells() -> list[CellSpec]:
    store = "scientific-mm-minilm"
    cells = [_pretrain_cell("pretrain")]
    rows = [("missrec-tv-id-pretrained", "MISSRec T+V+ID pre-trained", TV + ID, "pretrain"),
            ("missrec-tv-id", "MISSRec T+V+ID", TV + ID, None),
            ("missrec-tv-pretrained", "MISSRec T+V pre-trained", TV, "pretrain"),
            ("missrec-tv", "MISSRec T+V", TV, None)]
    for order, (name, label, sets, init) in enumerate(rows):
        # the paper's model, so that pre-trained and from-scratch rows differ only in pre-training
        cells.append(CellSpec(name, "missrec", store, sets, label, "table4", order, ("table4", label),
                              init_from=init, preset=None if init else "paper"))
    return cells


TABLE4_EXP = Experiment(
    "table4", "Pre-training (Office + MovieLens-100K) then fine-tuning on the Scientific subset, vs from scratch, "
    "with and without ids.", tuple(_table4_cells()),
    {"table4": TableSpec("Table 4: effect of pre-training (Scientific subset, MiniLM text + CLIP images)",
                         f"Ours: {PRETRAIN_NOTE}; fine-tuning tunes the adapters, α and input LayerNorms "
                         "(+ the id table with ids), paper §3.6. The paper's numbers are on the full Scientific "
                         "set.")})


def _table5_cells() -> list[CellSpec]:
    store = "amazon-scientific-mm"
    base = TV + ID
    v = [
        ("full", "(0) MISSRec", (), "(0) MISSRec", ""),
        ("no-adapters", "(2) w/o modality adapters", ("adapter=none", "d=512"), "(2) w/o modality adapters",
         "adapter=none, d=512"),
        ("context-encoder-2", "(3) 2-layer context encoder", ("decoder=none", "n_enc_layers=2"),
         "(3) 2-layer context encoder", "decoder=none, n_enc_layers=2"),
        ("interest-encoder-2", "(4) 2-layer interest encoder",
         ("arrangement=released", "n_enc_layers=2", "item_attention=causal"),
         "(4) 2-layer interest encoder",
         "closest config: arrangement=released, n_enc_layers=2, causal over items; its decoder "
         "still reads the item tokens"),
        ("no-regulariser", "(5) w/o regulariser", ("gamma=0",), "(5) w/o regulariser", "gamma=0"),
        ("tokens-added", "released code: one added token per item", ("tokens=added",), None, "tokens=added"),
        ("kmeans", "released code: k-means interests", ("clustering=kmeans",), None, "clustering=kmeans"),
    ]
    # ablations of the paper's model: every row starts from --preset paper
    cells = [CellSpec(n, "missrec", store, base + sets, label, "table5", i,
                      ("table5", ref) if ref in (TABLE5.rows if ref else {}) else None, note, preset="paper")
             for i, (n, label, sets, ref, note) in enumerate(v)]
    # (1) only means something with pre-training: a pre-train + fine-tune pair with and without ℓ_SS
    ft = "scientific-mm-minilm"
    cells += [
        _pretrain_cell("pretrain"),
        _pretrain_cell("pretrain-no-ss", ("lambda_ss=0",)),
        CellSpec("full-pretrained", "missrec", ft, base, "(0') MISSRec, pre-trained", "table5", 10,
                 ("table5", "(0) MISSRec"), "MiniLM text; compare with (1)", init_from="pretrain"),
        CellSpec("no-ss-pretrained", "missrec", ft, base, "(1) w/o seq-seq loss, pre-trained", "table5", 11,
                 ("table5", "(1) w/o seq-seq loss"), "pre-trained with lambda_ss=0; MiniLM text",
                 init_from="pretrain-no-ss"),
    ]
    return cells


TABLE5_EXP = Experiment(
    "table5", "Ablations of MISSRec T+V+ID on the Scientific subset (rows 0, 2-5 from scratch; 0' and 1 "
    "pre-trained), plus the released code's token and clustering choices.", tuple(_table5_cells()),
    {"table5": TableSpec("Table 5: ablations of MISSRec T+V+ID (Scientific subset)",
                         "Rows (0) and (2)-(5) and the released-code rows: from scratch, CLIP text + image. Rows "
                         f"(0') and (1): {PRETRAIN_NOTE}, fine-tuned on the subset with MiniLM text + CLIP images. "
                         "The paper's rows are all pre-trained, on the full Scientific set.")})


SWEEP = (("", ("lr=1e-3",)), ("lr3e-4", ("lr=3e-4",)), ("lr3e-3", ("lr=3e-3",)),
         ("drop0.2", ("lr=1e-3", "dropout=0.2", "attn_dropout=0.2")),
         ("tau0.05", ("lr=1e-3", "tau=0.05")), ("tau0.1", ("lr=1e-3", "tau=0.1")))
"""The settings tried: the learning rate, then dropout (both dropouts alike, as SASRec's default
has them) and UniSRec's contrastive temperature (default 0.07) at TrainConfig's learning rate.
Every value is spelled out, so a row means the same whatever the models' defaults become."""


SWEEP_STORES = (("mm", "amazon-scientific-mm", "baselines", "amazon-scientific-mm"),
                ("mixed", "scientific-mixed", "baselines-mixed", "the full Scientific set"))
"""Where the sweep runs: cell-name prefix, store, table prefix, the set's name in titles. The
subset chose the models' defaults; the full set checks each choice holds there too."""


def _baseline_cells() -> list[CellSpec]:
    cells = []
    for prefix, store, table, _ in SWEEP_STORES:
        for name, label, model, sets in BASELINES:
            # only UniSRec has a temperature
            settings = [(suffix, extra) for suffix, extra in SWEEP
                        if model == "unisrec" or not any(e.startswith("tau=") for e in extra)]
            for order, (suffix, extra) in enumerate(settings):
                row = f"{label} {' '.join(extra)}"
                cells.append(CellSpec(f"{prefix}-{name}" + (f"-{suffix}" if suffix else ""), model, store,
                                      sets + extra, row, f"{table}-{name}", order))
    return cells


BASELINES_EXP = Experiment(
    "baselines", "Validation sweeps of the baselines (learning rate, dropout, UniSRec's temperature) on the "
    "full-modality subset and on the full set: each one's setting is the row with the best valid N@10.",
    tuple(_baseline_cells()),
    {f"{table}-{name}": TableSpec(f"{label}: settings on {where}",
                                  "Chosen on valid N@10 (mean over seeds); the test columns are reported, "
                                  "never used to choose.")
     for _, _, table, where in SWEEP_STORES for name, label, _, _ in BASELINES})


def _smoke_cells() -> list[CellSpec]:
    s = "synthetic"
    small_m = ("d=16", "ffn_dim=32", "n_heads=2", "bucket_tokens=0")
    return [
        CellSpec("sasrec", "sasrec", s, ("hidden=16", "inner=32"), "SASRec ID", "smoke", 0),
        CellSpec("sasrec-text", "sasrec-text", s, ("hidden=16", "inner=32"), "SASRec T", "smoke", 1),
        CellSpec("unisrec-t-id", "unisrec", s, ("hidden=16", "inner=32", "n_experts=2") + ID, "UniSRec T+ID",
                 "smoke", 2),
        CellSpec("missrec-tv-id", "missrec", s, small_m + TV + ID, "MISSRec T+V+ID", "smoke", 3,
                 ("table4", "MISSRec T+V+ID")),
        # text-only pre-training, then T+V fine-tuning: the shape of table4
        CellSpec("pretrain", "missrec", "", small_m + ("modalities=text",), kind="pretrain",
                 pretrain_stores=("synthetic-b",)),
        CellSpec("missrec-tv-id-pretrained", "missrec", s, TV + ID, "MISSRec T+V+ID pre-trained", "smoke", 4,
                 ("table4", "MISSRec T+V+ID pre-trained"), init_from="pretrain"),
    ]


SMOKE_EXP = Experiment(
    "smoke", "Every kind of cell (train, pre-train, fine-tune) on generated toy stores; seconds per cell.",
    tuple(_smoke_cells()),
    {"smoke": TableSpec("Smoke test on a generated store", "Toy data: the paper's numbers are shown only to "
                        "exercise the report.")},
    defaults=("epochs=2", "batch_size=64", "patience=2"), hidden=True)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (TABLE2_EXP, FIG4_EXP, TABLE3_EXP, TABLE4_EXP,
                                                          TABLE5_EXP, BASELINES_EXP, TRANSFER_EXP,
                                                          defaults_experiment(), SMOKE_EXP)}


def get_experiment(name: str, targets: tuple[str, ...] = (), fractions: tuple[float, ...] = (),
                   tuned: Path | None = None) -> Experiment:
    """Experiment ``name``; the transfer analysis for the given ``targets`` and training
    ``fractions`` (empty: its defaults), the defaults analysis for ``targets`` (its domains)
    and the ``tuned`` folder; no other experiment takes them."""
    if name not in EXPERIMENTS:
        visible = sorted(n for n, e in EXPERIMENTS.items() if not e.hidden)
        raise MissrecError(f"unknown experiment {name!r}; expected one of {', '.join(visible)}")
    if name != DEFAULTS and tuned is not None:
        raise MissrecError(f"--tuned belongs to experiment {DEFAULTS}, not {name}")
    if name == TRANSFER:
        return transfer_experiment(tuple(targets) or DEFAULT_TARGETS, tuple(fractions) or DEFAULT_FRACTIONS)
    if name == DEFAULTS:
        if fractions:
            raise MissrecError(f"--fractions belongs to experiment {TRANSFER}, not {DEFAULTS}")
        return defaults_experiment(tuple(targets) or DEFAULT_DOMAINS, tuned)
    if targets or fractions:
        raise MissrecError(f"--targets and --fractions belong to experiment {TRANSFER}, not {name}")
    return EXPERIMENTS[name]
