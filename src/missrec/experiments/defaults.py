"""Defaults across domains: every model at its default, tuned on the domain, and at the one
setting chosen across domains, on every domain at hand (``missrec experiment defaults``).

Per domain ``D`` (a store recipe, MiniLM text everywhere plus the images a domain has) and
model ``M``, with ``TUNED`` the folder given as ``--tuned``:

* ``D-M-default``: the model's defaults;
* ``D-M-tuned``: plus the values in ``TUNED/D/M/best.yaml`` (``missrec tune`` on D's store);
* ``D-M-across``: plus the values in ``TUNED/across/M/choice.yaml`` (``missrec tune-across``
  over the domains' studies);
* ``D-popularity``: a reference.

A cell whose file does not exist yet is left out of the plan (the plan says which), so the
table fills in as the studies finish. UniSRec is UniSRec T (inductive: text only, no ids)
and MISSRec reads every modality the domain has; the tuning studies must fix the same
(``--set mode=inductive`` for UniSRec), their budget (``epochs``, ``patience``) aside. Each
domain's table compares the regimes; ``missrec compare`` pairs MISSRec with a baseline on
the same test users.
"""

from __future__ import annotations

from pathlib import Path

from ..config import STOPPING_TRAIN_KEYS, TrainConfig, read_yaml_sections, set_value
from ..errors import MissrecError
from ..model.registry import get_model_spec
from ..report.defaults import REGIMES
from .spec import CellSpec, Experiment, TableSpec
from .stores import RECIPES

NAME = "defaults"
DOMAINS = {"scientific-mm": "scientific-mm-minilm", "scientific-mixed": "scientific-mixed", "office": "office",
           "ml-100k": "ml-100k", "toy-a": "synthetic", "toy-text": "synthetic-text"}
"""Domain name (``--targets``, the tuning folders' names) -> store recipe."""
DEFAULT_DOMAINS = ("scientific-mm", "scientific-mixed", "office", "ml-100k")
MODELS = (("missrec", "MISSRec", ()), ("unisrec", "UniSRec T", ("mode=inductive",)),
          ("sasrec-text", "SASRec T", ()), ("sasrec", "SASRec ID", ()))
"""(model, row label, overrides every regime keeps), in the tables' order."""


def tuned_file(tuned: Path, domain: str, model: str, regime: str) -> Path:
    """Where a regime's values are read from (``default`` has none)."""
    if regime == "tuned":
        return tuned / domain / model / "best.yaml"
    return tuned / "across" / model / "choice.yaml"


def config_sets(path: Path, model: str) -> tuple[str, ...]:
    """A ``best.yaml`` / ``choice.yaml`` file's values as ``--set`` items (``train.lr=0.001``),
    its field names checked against ``model``'s config, so that a misspelt field is named
    with its file."""
    sections = {"train": TrainConfig, "model": get_model_spec(model).config_cls}
    out = []
    for section, values in read_yaml_sections(path, sections).items():
        for key, value in values.items():
            if section == "train" and key in STOPPING_TRAIN_KEYS:  # a study's trial budget, not a setting
                continue
            out.append(f"{section}.{key}={set_value(value)}")
    return tuple(out)


def defaults_experiment(domains: tuple[str, ...] = DEFAULT_DOMAINS, tuned: Path | None = None) -> Experiment:
    """The cells for ``domains``, with the tuned regimes whose files exist under ``tuned``."""
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise MissrecError(f"--targets: unknown domain(s) {', '.join(unknown)}; expected some of "
                           f"{', '.join(DEFAULT_DOMAINS)}")
    if tuned is not None and not tuned.is_dir():
        raise MissrecError(f"--tuned {tuned}: no such folder (it holds DOMAIN/MODEL/best.yaml and "
                           "across/MODEL/choice.yaml)")
    cells, tables, missing = [], {}, []
    for domain in dict.fromkeys(domains):
        recipe = DOMAINS[domain]
        table = f"defaults-{domain}"
        tables[table] = TableSpec(f"Defaults and tuning on {domain} ({RECIPES[recipe].description})",
                                  "default: the model's defaults; tuned: missrec tune on this domain's validation "
                                  "split; chosen across domains: missrec tune-across. Test split, every seed.")
        mods = ("modalities=" + ",".join(RECIPES[recipe].modalities),)
        order = 0
        for model, label, keep in MODELS:
            for regime, regime_label in REGIMES.items():
                sets = keep + (mods if model == "missrec" else ())
                if regime != "default":
                    path = tuned_file(tuned, domain, model, regime) if tuned is not None else None
                    if path is None or not path.is_file():
                        missing.append(f"{domain}-{model}-{regime}")
                        continue
                    sets += config_sets(path, model)
                cells.append(CellSpec(f"{domain}-{model}-{regime}", model, recipe, sets, f"{label}, {regime_label}",
                                      table, order, facets=(("domain", domain), ("regime", regime))))
                order += 1
        cells.append(CellSpec(f"{domain}-popularity", "popularity", recipe, (), "popularity", table, order,
                              kind="popularity", facets=(("domain", domain), ("regime", "reference"))))
    if not missing:
        note = ""
    elif tuned is None:
        note = f"{len(missing)} tuned and chosen-across cells need --tuned DIR"
    else:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        note = f"waiting for their tuned values under {tuned}: {shown}"
    return Experiment(NAME, "Every model at its default, tuned on each domain and at the setting chosen across "
                      "domains (issue 27's table).", tuple(cells), tables, plan_note=note)


__all__ = ["DEFAULT_DOMAINS", "DOMAINS", "NAME", "config_sets", "defaults_experiment"]
