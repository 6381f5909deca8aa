"""MISSRec: multi-modal interest-aware sequence representation (ACM MM 2023, §3).

The paper's model, one job per module:

* :mod:`.config`: :class:`MISSRecConfig`, typed and checked where it is built.
* :mod:`.tokens`: a batch's token layout (§3.2.3, §3.4.1).
* :mod:`.items`: the catalogue, adapted item tokens, candidates and the interest
  clustering (§3.3.1).
* :mod:`.network`: :class:`MISSRec`, encoder and interest-aware decoder (§3.4), scoring by
  dynamic fusion (eqs. 1-2) and transfer (§3.6).
* :mod:`.losses`: fine-tuning (eq. 8) and pre-training (eq. 7).
* :mod:`.released`: what exists only to reproduce the official code (the ``released``
  preset).
"""

from .config import MISSRecConfig, ModelConfigError, preset
from .items import MISSRecItems
from .network import MISSRec
from .tokens import keep_last, unique_per_row

__all__ = ["MISSRec", "MISSRecItems", "MISSRecConfig", "ModelConfigError", "keep_last", "preset",
           "unique_per_row"]
