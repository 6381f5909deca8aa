"""When a trial stops early: the median rule, applied only to a trial that has stopped improving.

Imported when a study opens (it needs Optuna, the optional ``tune`` extra).

Trials report the best validation score reached so far after every epoch. The median rule
compares trials at the same epoch, where a low learning rate or a large batch is always
behind a high one, so on its own it prunes every slow starter, however good its final score
would be. Here a trial is judged against the median only once its best has not risen for
``patience`` epochs: a slow starter trains as long as it keeps improving, a diverged or
saturated trial below the median stops soon. (Optuna's ``PatientPruner`` cannot do this:
over best-so-far reports its window is never below the earlier best, so it never prunes.)
"""

from __future__ import annotations

import optuna


class PatientMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose best score has not risen in its last ``patience`` reports and is
    below the median of the completed trials' at the same epoch (after ``startup_trials``
    complete trials and ``warmup_epochs`` epochs, as :class:`optuna.pruners.MedianPruner`)."""

    def __init__(self, startup_trials: int, warmup_epochs: int, patience: int):
        self.patience = patience
        self.median = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        values = trial.intermediate_values
        steps = sorted(values)
        # the reports are best-so-far scores, so "improving" is a rise within the window
        if len(steps) <= self.patience or values[steps[-1]] > values[steps[-1 - self.patience]]:
            return False
        return self.median.prune(study, trial)


def make_pruner(startup_trials: int, warmup_epochs: int, patience: int) -> optuna.pruners.BasePruner:
    """The study's pruner: :class:`PatientMedianPruner`, or the plain median rule when
    ``patience`` is 0."""
    if patience:
        return PatientMedianPruner(startup_trials, warmup_epochs, patience)
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
