"""The UniSRec / MISSRec layout.

``X.{train,valid,test}.inter`` (header ``user_id:token item_id_list:token_seq item_id:token``,
0-based indexes, histories cut to the last 50 items), ``X.item2index``, ``X.user2index``,
``X.text`` and optional ``X.feat1CLS`` (text) / ``X.feat3CLS`` (image) raw float32 matrices.

A user's full sequence is rebuilt from the train rows (each a prefix and its next item),
then the valid and test targets are appended; every row is checked against it.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputFormatError
from ..nonfinite import NonFinite, non_finite_rows
from ..store import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset, Interactions, ModalityFeatures
from ..vocab import Vocab
from . import ImportOptions
from ._text import first_line, iter_lines, read_index_pairs, separator_hint, split_row

INTER_HEADER = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
FEATURE_FILES = {"text": "feat1CLS", "image": "feat3CLS"}
FEATURE_DIM = 512


def _find_prefix(src: Path) -> tuple[Path, str]:
    if src.is_file():
        return src.parent, src.name.split(".")[0]
    hits = sorted(src.glob("*.train.inter"))
    if len(hits) != 1:
        raise InputFormatError(src, f"expected exactly one *.train.inter file, found {len(hits)}")
    return src, hits[0].name[: -len(".train.inter")]


def read_index_file(path: Path) -> dict[str, int]:
    """``external<TAB>index`` lines -> mapping; indexes must be 0..n-1 without gaps."""
    mapping = {ext: idx for idx, ext in read_index_pairs(path).items()}
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise InputFormatError(path, f"indexes must be exactly 0..{len(mapping) - 1}")
    return mapping


@dataclass
class InterRows:
    """One ``.inter`` file: user indexes, histories, target items and each row's line number."""

    path: Path
    users: np.ndarray
    hists: list[np.ndarray]
    targets: np.ndarray
    lines: list[int]


def _index_list(path: Path, text: str, ln: int) -> np.ndarray:
    try:
        return np.array([int(x) for x in text.split()], dtype=np.int64)
    except (ValueError, OverflowError):
        raise InputFormatError(path, "user, history and item must be integer indexes", ln) from None


def read_inter(path: Path, n_users: int, n_items: int) -> InterRows:
    users, hists, targets, line_nos = [], [], [], []
    with closing(iter_lines(path)) as lines:
        ln, header_line = first_line(path, lines, "<TAB>".join(INTER_HEADER))
        header = [c.strip() for c in header_line.split("\t")]
        if header != INTER_HEADER:
            hint = " (the separator must be a tab)" if len(header) != len(INTER_HEADER) else ""
            raise InputFormatError(path, f"header {header!r}, expected {INTER_HEADER!r}{hint}", ln)
        for ln, line in lines:
            u_s, h_s, t_s = split_row(path, line, ln, 3, header=["user_id", "item_id_list", "item_id"])
            u, t = (_index_list(path, x, ln) for x in (u_s, t_s))
            if len(u) != 1 or len(t) != 1:
                raise InputFormatError(path, "user, history and item must be integer indexes", ln)
            u, t, h = int(u[0]), int(t[0]), _index_list(path, h_s, ln)
            if not 0 <= u < n_users:
                raise InputFormatError(path, f"user index {u} outside 0..{n_users - 1} (user2index)", ln)
            if len(h) == 0 or h.min() < 0 or h.max() >= n_items or not 0 <= t < n_items:
                raise InputFormatError(path, f"empty history or item index outside 0..{n_items - 1} (item2index)", ln)
            users.append(u)
            hists.append(h)
            targets.append(t)
            line_nos.append(ln)
    return InterRows(path, np.asarray(users, dtype=np.int64), hists, np.asarray(targets, dtype=np.int64), line_nos)


def read_text_file(path: Path, known: dict[str, int]) -> dict[str, str]:
    texts: dict[str, str] = {}
    with closing(iter_lines(path)) as lines:
        ln, header_line = first_line(path, lines, "'item_id:token<TAB>text:token_seq'")
        if len(header_line.split("\t")) != 2:
            raise InputFormatError(path, "expected a header 'item_id:token<TAB>text:token_seq'", ln)
        for ln, line in lines:
            parts = line.split("\t", 1)
            if len(parts) != 2:
                raise InputFormatError(path, f"expected 'id<TAB>text'{separator_hint(line)}", ln)
            if parts[0] not in known:
                raise InputFormatError(path, f"item {parts[0]!r} is not in item2index", ln)
            texts[parts[0]] = parts[1].strip()
    return texts


def read_feature_file(path: Path, item_ids: list[str], dim: int = FEATURE_DIM,
                      non_finite: NonFinite = "error") -> ModalityFeatures:
    """Raw float32 rows in index order; all-zero rows mean 'missing' (presence 0), and so do
    rows holding NaN or ±inf when ``non_finite`` is 'missing' (else they are an error)."""
    n_rows = len(item_ids)
    size = path.stat().st_size
    row_bytes = 4 * dim
    if size % row_bytes:
        raise InputFormatError(path, f"size {size} bytes is not a multiple of a {dim}-float32 row ({row_bytes} bytes)")
    if size // row_bytes != n_rows:
        raise InputFormatError(path, f"has {size // row_bytes} rows, expected {n_rows} (one per item in item2index)")
    mat = np.fromfile(path, dtype="<f4").reshape(n_rows, dim)
    bad = non_finite_rows(path, mat, item_ids, non_finite)
    mat[bad] = 0.0
    present = np.any(mat != 0, axis=1)
    full = np.zeros((n_rows + 1, dim), dtype=np.float32)
    full[1:] = mat
    return ModalityFeatures(full, np.r_[False, present], source=path.name)


def _rebuild_user(rows: list[int], train: InterRows, user: int) -> list[int]:
    """A user's train sequence from their prefix rows, checking every row against it.

    Files list a user's rows oldest-first or newest-first; histories longer than the cut
    all have the same length, so file order (oriented by the uncut rows) orders them.
    """
    hists, path = train.hists, train.path
    step = -1 if len(hists[rows[0]]) > len(hists[rows[-1]]) else 1
    order = sorted(range(len(rows)), key=lambda k: (len(hists[rows[k]]), step * k))
    chron = [rows[k] for k in order]
    seq = [int(x) for x in hists[chron[0]]]
    if len(seq) != 1:
        raise InputFormatError(path, f"user {user}'s first train row should have a one-item history",
                               train.lines[chron[0]])
    for r in chron:
        h = hists[r]
        if [int(x) for x in h] != seq[-len(h):]:
            raise InputFormatError(path, f"row does not continue user {user}'s earlier rows", train.lines[r])
        seq.append(int(train.targets[r]))
    return seq


def _sequences(parts: dict[str, InterRows]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Each user's full sequence (train prefixes, then the valid and test targets) and labels."""
    train = parts["train"]
    by_user: dict[int, list[int]] = {}
    for r, u in enumerate(train.users.tolist()):
        by_user.setdefault(u, []).append(r)
    seqs = {u: _rebuild_user(rows, train, u) for u, rows in by_user.items()}
    labels: dict[int, list[int]] = {u: [SPLIT_TRAIN] * len(s) for u, s in seqs.items()}
    for split, code in (("valid", SPLIT_VALID), ("test", SPLIT_TEST)):
        rows = parts[split]
        seen = set()
        for r, u in enumerate(rows.users.tolist()):
            if u in seen:
                raise InputFormatError(rows.path, f"user {u} has more than one {split} row", rows.lines[r])
            seen.add(u)
            h = [int(x) for x in rows.hists[r]]
            seq = seqs.setdefault(u, list(h))
            labels.setdefault(u, [SPLIT_TRAIN] * len(seq))
            if h != seq[-len(h):]:
                raise InputFormatError(rows.path, f"history of user {u} does not continue their earlier rows",
                                       rows.lines[r])
            seq.append(int(rows.targets[r]))
            labels[u].append(code)
    for u, lab in labels.items():
        if lab[-2:] != [SPLIT_VALID, SPLIT_TEST]:
            raise InputFormatError(parts["test"].path, f"user {u} lacks a valid row followed by a test row")
    if not seqs:
        raise InputFormatError(train.path, "holds a header but no interactions (nor do the valid and test files)", 2)
    return seqs, labels


def import_unisrec(sources: list[Path], opts: ImportOptions) -> Dataset:
    if len(sources) != 1:
        raise InputFormatError(sources[0] if sources else ".", "the unisrec format takes one source directory")
    folder, prefix = _find_prefix(Path(sources[0]))
    item_map = read_index_file(folder / f"{prefix}.item2index")
    user_map = read_index_file(folder / f"{prefix}.user2index")
    n_items, n_users = len(item_map), len(user_map)
    item_ids = sorted(item_map, key=item_map.__getitem__)
    user_ids = sorted(user_map, key=user_map.__getitem__)

    parts = {s: read_inter(folder / f"{prefix}.{s}.inter", n_users, n_items) for s in ("train", "valid", "test")}
    seqs, labels = _sequences(parts)

    users = sorted(seqs)
    u_col = np.concatenate([np.full(len(seqs[u]), u + 1) for u in users])
    i_col = np.concatenate([np.asarray(seqs[u]) + 1 for u in users])
    p_col = np.concatenate([np.arange(len(seqs[u])) for u in users])
    s_col = np.concatenate([np.asarray(labels[u], dtype=np.int8) for u in users])

    texts = {}
    text_path = folder / f"{prefix}.text"
    if text_path.exists():
        texts = read_text_file(text_path, item_map)
    feats = {}
    for modality, suffix in FEATURE_FILES.items():
        fp = folder / f"{prefix}.{suffix}"
        if fp.exists():
            feats[modality] = read_feature_file(fp, item_ids, non_finite=opts.non_finite)

    return Dataset(
        name=opts.name or prefix,
        items=Vocab(item_ids),
        users=Vocab(user_ids),
        interactions=Interactions(user=u_col, item=i_col, position=p_col, split=s_col),
        item_text=[""] + [texts.get(i, "") for i in item_ids],
        item_image=[None] * (n_items + 1),
        features=feats,
        provenance={"format": "unisrec", "source": str(folder.resolve()), "prefix": prefix},
    )
