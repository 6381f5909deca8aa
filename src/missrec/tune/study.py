"""The study on disk: Optuna (an optional extra, imported when a study opens), its SQLite
file, what it tunes, and the trials a killed run left behind.

A study folder belongs to one ``missrec tune`` at a time (a lock file says so), so a trial
still marked RUNNING when a run starts was cut short by a kill: it is marked failed and its
values are queued to run again, as a new trial that continues from the killed one's last
complete epoch (:mod:`missrec.tune.trial`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MissrecError
from ..locks import FolderLock
from ..train.resume import STATE_FILE
from .records import DEFAULT_ATTR

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "study.db"
STUDY_NAME = "missrec-tune"
IDENTITY_ATTR = "missrec"
"""The study's user attribute recording what it tunes (:func:`identity`)."""
STORE_PATH_ATTR = "store_path"
"""The study's user attribute recording where its store was when it last ran (not part of
what it tunes: a store may move); ``missrec tune-across`` trains other settings there."""
TRIALS_DIR = "trials"
INTERRUPTED = "interrupted; its values ran again"
"""The note on a trial a killed run left behind (it does not count towards the budget)."""
RETRY_ATTR = "retry_of"
"""The user attribute naming the interrupted trial a queued trial reruns."""
SQLITE_TIMEOUT_S = 60
"""How long a process waits for another's write to the study file (parallel trials)."""


def require_optuna():
    """The ``optuna`` module, quiet; a one-line error when the extra is not installed."""
    try:
        import optuna  # the optional `tune` extra
    except ImportError:
        raise MissrecError("missrec tune needs Optuna: pip install 'missrec[tune]' (or optuna>=4)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass(frozen=True)
class StudyRef:
    """How any process opens the study: its file and the sampler and pruner settings."""

    path: Path
    """``DIR/study.db``."""
    startup_trials: int
    warmup_epochs: int
    prune_patience: int
    """Epochs without a new best before the median rule applies (0: it applies every epoch)."""

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path.resolve()}"

    def storage(self) -> "optuna.storages.RDBStorage":
        optuna = require_optuna()
        return optuna.storages.RDBStorage(self.url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})

    def load(self, sampler_seed: int) -> "optuna.Study":
        """The study, with a TPE sampler seeded by ``sampler_seed`` and the median rule for
        trials that have stopped improving (:mod:`missrec.tune.pruning`)."""
        optuna = require_optuna()
        from .pruning import make_pruner  # needs optuna

        with warnings.catch_warnings():  # multivariate TPE and the constant liar are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # constant_liar: a trial running in another process counts as a poor result, so
            # parallel trials do not all sample the same promising corner
            sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=self.startup_trials,
                                                 multivariate=True, constant_liar=True)
        pruner = make_pruner(self.startup_trials, self.warmup_epochs, self.prune_patience)
        return optuna.load_study(study_name=STUDY_NAME, storage=self.storage(), sampler=sampler, pruner=pruner)

    def trials(self) -> list["optuna.trial.FrozenTrial"]:
        """Every trial of the study so far, in order."""
        optuna = require_optuna()
        return optuna.load_study(study_name=STUDY_NAME, storage=self.storage()).get_trials(deepcopy=False)


def open_study(ref: StudyRef, what: dict[str, Any], store: Path | None = None,
               default: dict[str, Any] | None = None) -> None:
    """Create the study in ``ref.path``, or check that the one there tunes ``what``; record
    ``store``'s path. A new study queues ``default`` (the model's default values) as its first
    trial, so that it scores the default as it scores every candidate: what tuning buys is
    the best trial's lead over it, and the search starts from a setting known to work."""
    optuna = require_optuna()
    try:
        storage = ref.storage()
        names = optuna.get_all_study_names(storage)
    except Exception as e:  # sqlalchemy's errors: optuna does not wrap them
        raise MissrecError(f"{ref.path}: not a readable study ({str(e).splitlines()[0]})") from None
    if STUDY_NAME not in names:
        if names:
            raise MissrecError(f"{ref.path}: holds no missrec tune study (studies {names}); use another --out")
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
        study.set_user_attr(IDENTITY_ATTR, what)
        if default is not None:
            study.enqueue_trial(default, user_attrs={DEFAULT_ATTR: True})
    else:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        _check_identity(ref, study.user_attrs.get(IDENTITY_ATTR, {}), what)
    if store is not None:
        study.set_user_attr(STORE_PATH_ATTR, str(store.resolve()))


def _check_identity(ref: StudyRef, had: dict[str, Any], what: dict[str, Any]) -> None:
    for key, name in (("model", "model"), ("store", "store (interactions or features)"), ("space", "search space"),
                      ("preset", "preset"), ("sets", "fixed --set"), ("metric", "validation metric")):
        if had.get(key) != what[key]:
            raise MissrecError(f"{ref.path.parent}: its study was run with another {name} "
                               f"({_show(had.get(key))}, not {_show(what[key])}); use another --out")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def recover_interrupted(ref: StudyRef, trials_dir: Path, log: Callable[[str], None]) -> list[int]:
    """Mark the trials a killed run left RUNNING as failed and queue their values to run
    again. Their folders keep the training state of their last complete epoch, which the
    rerun continues from. Returns their numbers."""
    optuna = require_optuna()
    storage = ref.storage()
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        # Optuna's ask/tell cannot end a trial another process started: the storage can
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "note", INTERRUPTED)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={RETRY_ATTR: t.number,
                                                  **({DEFAULT_ATTR: True} if t.user_attrs.get(DEFAULT_ATTR) else {})})
        trained = (trials_dir / trial_folder(t.number) / STATE_FILE).exists()
        log(f"trial {t.number} was interrupted; its values run again"
            + (", from its last complete epoch" if trained else ""))
    return [t.number for t in stale]


def trial_folder(number: int) -> str:
    return f"{number:04d}"


def study_lock(folder: Path) -> FolderLock:
    """Held while a ``missrec tune`` works on the study in ``folder``."""
    return FolderLock(folder, "missrec tune")
