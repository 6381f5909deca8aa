"""Result tables and plots from run directories.

* :func:`write_report` -- ``report.md`` + self-contained ``report.html`` + PNG figures
  (training curves, the Figure 4 popularity plot) from the runs under some folders.
* :func:`build_report` -- the same content as data (tables of mean ± std over seeds with the
  paper's reference numbers beside ours).
* :func:`update_readme` -- regenerate the ``<!-- results:start -->`` ... ``<!-- results:end -->``
  block of a Markdown file (the project's is ``docs/results.md``).
* :mod:`missrec.report.paper` -- the paper's Scientific numbers (Tables 2-5) as data.
* :func:`paired_comparison` -- two cells on the same test users: the mean difference with a
  paired-bootstrap interval and p (``missrec compare``).
* :func:`transfer_targets` -- the transfer analysis laid out per target: regime x training
  fraction, fine-tune vs scratch paired over test users, recall@10 against the fraction.

matplotlib (the ``report`` extra) is imported only when figures are drawn.
"""

from .build import README_END, README_START, Report, TableView, build_report, compare_with_paper
from .render import readme_section, render_html, render_markdown
from .write import ReportFiles, update_readme, write_report
from .paired import PairedResult, paired_comparison
from .paper import PAPER_TABLES, reference
from .popularity import DEFAULT_EDGES, popularity_analysis, train_popularity
from .runs import CELL_FILE, Cell, Run, find_runs, group_cells, load_run
from .transfer import TransferTarget, transfer_targets

__all__ = [
    "CELL_FILE", "Cell", "DEFAULT_EDGES", "PAPER_TABLES", "README_END", "README_START", "Report", "ReportFiles",
    "PairedResult", "Run", "TableView", "build_report", "compare_with_paper", "find_runs", "group_cells", "load_run",
    "paired_comparison",
    "popularity_analysis", "readme_section", "reference", "render_html", "render_markdown", "train_popularity",
    "TransferTarget", "transfer_targets", "update_readme", "write_report",
]
