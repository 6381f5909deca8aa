"""The paper's reference numbers (MISSRec, ACM MM 2023, §4) for the *Scientific* domain.

Only the Scientific rows/columns are encoded: Table 2 (full Scientific set; UniSRec, VQRec
and MISSRec pre-trained on five other Amazon domains), Table 3 (the full-modality subset,
i.e. ``amazon-scientific-mm``), Table 4 (MISSRec with/without pre-training and ids, full
set) and Table 5 (ablations of MISSRec T+V+ID, full set, pre-trained).

Row keys are ``"<Model> <inputs>"`` with the inputs in the canonical order ``T+V+ID``
(text, visual, id), e.g. ``"UniSRec T+ID"``; Table 4 marks pre-trained rows with
``" pre-trained"``; Table 5 rows are the paper's variant names.
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("recall@10", "recall@50", "ndcg@10", "ndcg@50")
"""Metric columns of every report table, in this order (Tables 3-5's order)."""
SHORT = {"recall@10": "R@10", "recall@50": "R@50", "ndcg@10": "N@10", "ndcg@50": "N@50"}


@dataclass(frozen=True)
class PaperTable:
    key: str
    title: str
    setting: str
    """How the paper obtained these numbers (printed beside the comparison)."""
    rows: dict[str, dict[str, float]]


def _rnrn(r10: float, n10: float, r50: float, n50: float) -> dict[str, float]:
    """Table 2's column order: R@10, N@10, R@50, N@50."""
    return {"recall@10": r10, "ndcg@10": n10, "recall@50": r50, "ndcg@50": n50}


def _rrnn(r10: float, r50: float, n10: float, n50: float) -> dict[str, float]:
    """Tables 3-5's column order: R@10, R@50, N@10, N@50."""
    return {"recall@10": r10, "recall@50": r50, "ndcg@10": n10, "ndcg@50": n50}


TABLE2 = PaperTable(
    "table2", "Table 2 (Scientific)",
    "full Scientific set (text for all items, images for 36%); UniSRec, VQRec and MISSRec "
    "pre-trained on five other Amazon domains, then fine-tuned",
    {
        "SASRec ID": _rnrn(0.1080, 0.0553, 0.2042, 0.0760),
        "BERT4Rec ID": _rnrn(0.0488, 0.0243, 0.1185, 0.0393),
        "FDSA T+ID": _rnrn(0.0899, 0.0580, 0.1732, 0.0759),
        "S3-Rec T+ID": _rnrn(0.0525, 0.0275, 0.1418, 0.0468),
        "UniSRec T+ID": _rnrn(0.1235, 0.0634, 0.2473, 0.0904),
        "MISSRec T+V+ID": _rnrn(0.1304, 0.0675, 0.2556, 0.0947),
        "SASRec T": _rnrn(0.0994, 0.0561, 0.2162, 0.0815),
        "ZESRec T": _rnrn(0.0851, 0.0475, 0.1746, 0.0670),
        "UniSRec T": _rnrn(0.1188, 0.0641, 0.2394, 0.0903),
        "VQRec T": _rnrn(0.1211, 0.0643, 0.2369, 0.0897),
        "MISSRec T+V": _rnrn(0.1277, 0.0652, 0.2496, 0.0919),
    },
)

TABLE3 = PaperTable(
    "table3", "Table 3 (Scientific, full-modality subset)",
    "items with an image only (= amazon-scientific-mm), CLIP-B/32 text and image features "
    "for every method",
    {
        "UniSRec T+ID": _rrnn(0.1612, 0.3223, 0.0777, 0.1132),
        "MISSRec T+ID": _rrnn(0.1633, 0.3272, 0.0793, 0.1150),
        "UniSRec V+ID": _rrnn(0.1569, 0.3134, 0.0764, 0.1113),
        "MISSRec V+ID": _rrnn(0.1594, 0.3187, 0.0774, 0.1123),
        "UniSRec T+V+ID": _rrnn(0.1616, 0.3232, 0.0771, 0.1119),
        "MISSRec T+V+ID": _rrnn(0.1646, 0.3288, 0.0793, 0.1150),
        "UniSRec T": _rrnn(0.1602, 0.3201, 0.0772, 0.1119),
        "VQRec T": _rrnn(0.1607, 0.3219, 0.0778, 0.1133),
        "MISSRec T": _rrnn(0.1619, 0.3238, 0.0780, 0.1136),
        "UniSRec V": _rrnn(0.1568, 0.3134, 0.0749, 0.1090),
        "VQRec V": _rrnn(0.1571, 0.3149, 0.0752, 0.1100),
        "MISSRec V": _rrnn(0.1575, 0.3143, 0.0756, 0.1090),
        "UniSRec T+V": _rrnn(0.1609, 0.3215, 0.0774, 0.1112),
        "VQRec T+V": _rrnn(0.1617, 0.3240, 0.0769, 0.1116),
        "MISSRec T+V": _rrnn(0.1633, 0.3264, 0.0778, 0.1131),
    },
)

TABLE4 = PaperTable(
    "table4", "Table 4 (Scientific)",
    "full Scientific set; pre-training on five other Amazon domains (Food, Home, CDs, Kindle, Movies)",
    {
        "MISSRec T+V+ID pre-trained": _rrnn(0.1304, 0.2556, 0.0675, 0.0947),
        "MISSRec T+V+ID": _rrnn(0.1228, 0.2426, 0.0637, 0.0905),
        "MISSRec T+V pre-trained": _rrnn(0.1277, 0.2496, 0.0652, 0.0919),
        "MISSRec T+V": _rrnn(0.1216, 0.2405, 0.0626, 0.0889),
    },
)

TABLE5 = PaperTable(
    "table5", "Table 5 (Scientific)",
    "MISSRec T+V+ID variants on the full Scientific set, all pre-trained on five Amazon domains",
    {
        "(0) MISSRec": _rrnn(0.1304, 0.2556, 0.0675, 0.0947),
        "(1) w/o seq-seq loss": _rrnn(0.1282, 0.2513, 0.0636, 0.0893),
        "(2) w/o modality adapters": _rrnn(0.1015, 0.1994, 0.0521, 0.0732),
        "(3) 2-layer context encoder": _rrnn(0.1170, 0.2299, 0.0609, 0.0858),
        "(4) 2-layer interest encoder": _rrnn(0.1123, 0.2200, 0.0579, 0.0813),
        "(5) w/o regulariser": _rrnn(0.1299, 0.2527, 0.0668, 0.0939),
    },
)

PAPER_TABLES: dict[str, PaperTable] = {t.key: t for t in (TABLE2, TABLE3, TABLE4, TABLE5)}


def reference(table: str, row: str) -> dict[str, float] | None:
    """The paper's metrics for ``row`` of ``table`` ('table2'...'table5'), or None."""
    t = PAPER_TABLES.get(table)
    return None if t is None else t.rows.get(row)


def default_reference(dataset: str | None, label: str, model: str,
                      pretrained: bool) -> tuple[str, str] | None:
    """Best-matching (table, row) for a run that carries no explicit reference.

    ``dataset`` is 'scientific' (the full set) or 'scientific-mm' (the subset). MISSRec on
    the full set is compared with Table 4 (which has both pre-trained and from-scratch rows),
    other models with Table 2; everything on the subset with Table 3.
    """
    if dataset == "scientific-mm":
        return ("table3", label) if label in TABLE3.rows else None
    if dataset == "scientific":
        if model == "missrec":
            row = label + (" pre-trained" if pretrained else "")
            return ("table4", row) if row in TABLE4.rows else None
        return ("table2", label) if label in TABLE2.rows else None
    return None


SCIENTIFIC_FINGERPRINTS = {"71cae129de969064": "scientific", "90ecda867db339f5": "scientific-mm"}
"""Store fingerprints (:meth:`missrec.data.store.Dataset.fingerprint`: interactions and item
ids) of the paper's Scientific data as distributed in ../shared/datasets, the full set and the
full-modality subset: they name the data whatever the store is called or which features it has."""

SCIENTIFIC_STORE_NAMES = {"Scientific-mixed": "scientific", "Scientific-mm": "scientific-mm",
                          "Scientific-mm-minilm": "scientific-mm"}
"""Dataset names the experiments' store recipes give the Scientific stores
(:data:`missrec.experiments.stores.RECIPES`), for runs whose store's fingerprint is not one of
:data:`SCIENTIFIC_FINGERPRINTS`."""


def paper_dataset(fingerprint: str, name: str) -> str | None:
    """'scientific' / 'scientific-mm' when a store is one of the paper's Scientific sets, else None."""
    return SCIENTIFIC_FINGERPRINTS.get(fingerprint) or SCIENTIFIC_STORE_NAMES.get(name)
