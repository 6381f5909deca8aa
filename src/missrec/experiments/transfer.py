"""The transfer analysis: does pre-training pay on a domain the model never saw, and at how
much of that domain's training data?

Leave one domain out: each target domain is the transfer target of a MISSRec pre-trained on
the other domains (paper §3.5), with MiniLM text everywhere plus the images a domain has:

==============  ==============================  ======================================
target          target store (fine-tuned on)    pre-training domains
==============  ==============================  ======================================
scientific-mm   scientific-mm-minilm            office + ml-100k
office          office                          scientific-mixed + ml-100k
ml-100k         ml-100k                         scientific-mixed + office
==============  ==============================  ======================================

Per target, cells (``F`` a training fraction, ``train.train_fraction``; seeds 2023, ...):

* ``T-pretrain``: pre-training on every sequence of the other domains, early-stopped on the
  held-out eq. 7 loss (``train.heldout_share``), run once with seed 2023: every seed of the
  target's fine-tuning cells starts from this one model;
* ``T-zero-shot``: that model evaluated on the target's users without tuning;
* ``T-finetune-fF``: parameter-efficient inductive fine-tuning from it (§3.6);
* ``T-scratch-fF``: MISSRec trained from scratch, inductive;
* ``T-unisrec-fF``: UniSRec T (inductive) from scratch, a reference;
* ``T-popularity-fF``: items ranked by the kept users' training interactions, a reference.

MISSRec cells use the default preset (``missrec train --model missrec``); pre-training uses
it too, with the official pre-training settings' clustering ratio and item dropping
(``presets/missrec/released-pretrain.yaml``), so a fine-tuned model and a model trained from
scratch have the same architecture. A fraction keeps the same users for every regime at a
seed (:mod:`missrec.data.users`), so the report's paired tests compare like with like.

Hidden toy domains (generated stores, seconds per cell) exercise the same cells in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MissrecError
from ..report.transfer import REGIMES
from .spec import BASE_SEED, CellSpec, Experiment, TableSpec
from .stores import RECIPES

NAME = "transfer"


@dataclass(frozen=True)
class Domain:
    """One domain of the leave-one-out: where it is a target, and what it adds to others' pre-training."""

    name: str
    """As ``--targets`` names it."""
    label: str
    target: str
    """Store recipe fine-tuned and evaluated on when this domain is the target."""
    source: str
    """Store recipe pre-trained on when another domain is the target."""
    group: str = "paper"
    """Domains pre-train for targets of their own group only (the toy domains among themselves)."""
    source_label: str = ""
    """What it is called as a pre-training domain, when that is not its target store (empty: ``label``)."""

    @property
    def as_source(self) -> str:
        return self.source_label or self.label


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("scientific-mm", "Scientific (image subset)", "scientific-mm-minilm", "scientific-mixed",
           source_label="Scientific (full set)"),
    Domain("office", "Office", "office", "office"),
    Domain("ml-100k", "MovieLens-100K", "ml-100k", "ml-100k"),
    Domain("toy-a", "toy A", "synthetic", "synthetic", "toy"),
    Domain("toy-b", "toy B", "synthetic-b", "synthetic-b", "toy"),
    Domain("toy-text", "toy text-only", "synthetic-text", "synthetic-text", "toy"),
)}
DEFAULT_TARGETS = ("scientific-mm", "office", "ml-100k")
DEFAULT_FRACTIONS = (0.05, 0.2, 1.0)
PRETRAIN_SEED = BASE_SEED
"""The one seed each target's pre-training runs with."""

PRETRAIN_SETS = ("modalities=text,image", "n_clusters=2%", "item_drop=0.2", "patience=3", "epochs=50")
"""Pre-training over the default preset: every modality a domain has (pre-training keeps
those some domain has), the official pre-training settings' cluster ratio and item dropping
(what ``released-pretrain`` changes from ``released``), and a CPU budget: an epoch over every
sequence of two domains takes some 10-20 minutes on one core (docs/experiments.md), so 3
epochs without a lower held-out loss end it (``--set pretrain.patience=N`` changes it)."""

PRESET_REFUSED = ("experiment transfer pre-trains, fine-tunes and trains MISSRec from scratch with one preset "
                  "(default), so that the regimes share one architecture; change a setting of all of them with --set")


def pretrain_domains(target: Domain) -> list[Domain]:
    return [d for d in DOMAINS.values() if d.group == target.group and d.name != target.name]


def fraction_name(fraction: float) -> str:
    return f"{fraction:g}"


def _target_cells(target: Domain, fractions: tuple[float, ...]) -> list[CellSpec]:
    sources = pretrain_domains(target)
    pre = f"{target.name}-pretrain"
    table = f"transfer-{target.name}"
    mods = "modalities=" + ",".join(RECIPES[target.target].modalities)
    facets = (("target", target.name),)
    cells = [
        CellSpec(pre, "missrec", "", PRETRAIN_SETS, kind="pretrain", pretrain_stores=tuple(d.source for d in sources),
                 preset="inductive", seed=PRETRAIN_SEED, facets=facets + (("regime", "pretrain"),)),
        CellSpec(f"{target.name}-zero-shot", "missrec", target.target, (), REGIMES["zero-shot"], table, 0,
                 kind="zero-shot", init_from=pre, seed=PRETRAIN_SEED,
                 facets=facets + (("regime", "zero-shot"), ("fraction", "0"))),
    ]
    for f in fractions:
        frac = (f"train_fraction={fraction_name(f)}",)
        at = (("fraction", fraction_name(f)),)
        rows = [("fine-tune", "finetune", "missrec", (mods, "mode=inductive") + frac, pre, "default"),
                ("scratch", "scratch", "missrec", (mods, "mode=inductive") + frac, None, None),
                ("unisrec", "unisrec", "unisrec", ("mode=inductive",) + frac, None, None)]
        for order, (regime, short, model, sets, init, preset) in enumerate(rows, 1):
            cells.append(CellSpec(f"{target.name}-{short}-f{fraction_name(f)}", model, target.target, sets,
                                  REGIMES[regime], table, order, init_from=init, preset=preset,
                                  facets=facets + (("regime", regime),) + at))
        cells.append(CellSpec(f"{target.name}-popularity-f{fraction_name(f)}", "popularity", target.target, frac,
                              REGIMES["popularity"], table, 4, kind="popularity",
                              facets=facets + (("regime", "popularity"),) + at))
    return cells


def _table(target: Domain) -> TableSpec:
    sources = " + ".join(d.as_source for d in pretrain_domains(target))
    return TableSpec(f"Transfer to {target.label}: pre-trained on {sources} (seed {PRETRAIN_SEED})",
                     "Every regime at a fraction trains on the same seeded share of the target's training users; "
                     "validation and test users are all kept. Fine-tuning tunes the adapters, α and the input "
                     "LayerNorms (§3.6, inductive); zero-shot tunes nothing.")


def transfer_experiment(targets: tuple[str, ...] = DEFAULT_TARGETS,
                        fractions: tuple[float, ...] = DEFAULT_FRACTIONS) -> Experiment:
    """The analysis for ``targets`` (domain names) at training ``fractions`` (each in (0, 1])."""
    unknown = [t for t in targets if t not in DOMAINS]
    if unknown:
        raise MissrecError(f"--targets: unknown target(s) {', '.join(unknown)}; expected some of "
                           f"{', '.join(DEFAULT_TARGETS)}")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or not fractions:
        raise MissrecError(f"--fractions: each must be in (0, 1], got {', '.join(map(fraction_name, fractions))}")
    chosen = [DOMAINS[t] for t in dict.fromkeys(targets)]
    fractions = tuple(sorted(set(fractions)))
    cells = tuple(c for t in chosen for c in _target_cells(t, fractions))
    return Experiment(NAME, "Leave-one-domain-out transfer: zero-shot, fine-tuned and from-scratch MISSRec, UniSRec "
                      "and popularity at several shares of the target's training users.", cells,
                      {f"transfer-{t.name}": _table(t) for t in chosen},
                      preset_refused=PRESET_REFUSED)


TRANSFER_EXP = transfer_experiment()

__all__ = ["DEFAULT_FRACTIONS", "DEFAULT_TARGETS", "DOMAINS", "NAME", "PRETRAIN_SEED", "REGIMES", "TRANSFER_EXP",
           "transfer_experiment"]
