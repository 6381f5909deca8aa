"""Hyper-parameter search on a store's validation split (``missrec tune``), with Optuna.

:func:`tune` runs a study: the model's default first (when it lies in the space), then TPE
sampling over a model's declared search space (``presets/search/<model>.yaml``), median
pruning of trials that have stopped improving, the study kept in SQLite so that running it again continues it, trials in
parallel processes with ``jobs``. It writes ``trials.csv`` and ``best.yaml`` (the best
trial's values, for ``missrec train --config``). The test split is never read.

Optuna is the optional ``tune`` extra, imported only when a study opens.

Modules, in dependency order: ``space`` (search spaces), ``options`` (the command line as
data), ``records`` (trials as records and the files and lines made from them), ``pruning``
(when a trial stops early), ``study`` (the study on disk), ``trial`` (one trial), ``runner``
(a whole study), ``across`` (one setting chosen over several domains' studies).
"""

from .across import AcrossResult, tune_across
from .options import TuneOptions
from .records import TrialRecord
from .runner import TuneResult, run_study, tune
from .space import Param, SearchSpace, check_space, load_space

__all__ = ["AcrossResult", "Param", "SearchSpace", "TrialRecord", "TuneOptions", "TuneResult", "check_space", "load_space",
           "run_study", "tune", "tune_across"]
