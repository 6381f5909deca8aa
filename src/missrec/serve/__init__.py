"""Serving: bundles (:mod:`.bundle`), the :class:`Recommender` API over a live catalogue,
the HTTP service (:mod:`.http`, the `serve` extra) and approximate retrieval (:mod:`.ann`)."""

from .bundle import export_bundle
from .catalogue import NewItem
from .recommender import Ranking, Recommender

__all__ = ["NewItem", "Ranking", "Recommender", "export_bundle"]
