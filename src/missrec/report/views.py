"""Report tables as data: numbers with their spread, and one rendered table
(:mod:`missrec.report.render` writes them as Markdown and HTML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .runs import Cell, Stat

VALID_COLUMN = "valid N@10"
"""Validation NDCG@10 at the kept epoch: what settings are chosen on (the test columns never are)."""


@dataclass
class Num:
    """A numeric table entry: mean (± std over ``n`` seeds), bold when best in its column."""

    mean: float
    std: float = 0.0
    n: int = 1
    bold: bool = False
    digits: int = 4

    @classmethod
    def of(cls, s: Stat | None, digits: int = 4) -> "Num | None":
        return None if s is None else cls(s.mean, s.std, s.n, digits=digits)

    def parts(self) -> tuple[str, str]:
        main = f"{self.mean:.{self.digits}f}"
        return main, (f" ± {self.std:.{self.digits}f}" if self.n > 1 else "")


@dataclass
class TableView:
    """One rendered table: header, rows (str | Num | None), bold-able columns, notes."""

    id: str
    title: str
    header: list[str]
    rows: list[list[Any]]
    best_cols: list[int]
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    cells: list[Cell] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def mark_best(self) -> None:
        """Bold the highest mean of every column in ``best_cols`` (ties: all of them)."""
        for j in self.best_cols:
            bold_best([r[j] for r in self.rows if isinstance(r[j], Num)])


def mean_std(s: Stat) -> str:
    """``mean ± std`` over seeds (the mean alone for one seed), 4 decimals."""
    return f"{s.mean:.4f} ± {s.std:.4f}" if s.n > 1 else f"{s.mean:.4f}"


def bold_best(nums: list[Num]) -> None:
    """Bold the highest mean among ``nums`` (ties: all of them); nothing for fewer than two."""
    if len(nums) < 2:
        return
    best = max(round(n.mean, n.digits) for n in nums)
    for n in nums:
        n.bold = round(n.mean, n.digits) == best


__all__ = ["VALID_COLUMN", "Num", "TableView", "bold_best", "mean_std"]
