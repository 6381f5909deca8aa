"""Pure ``nn.Module`` models; no data loading or training code lives here."""

from .adapters import make_adapter
from .fusion import Concentration, fuse_representations, fuse_scores
from .interests import Clustering, cluster_tokens, dpc_knn, kmeans
from .missrec import MISSRec, MISSRecConfig, preset

__all__ = [
    "Clustering", "Concentration", "MISSRec", "MISSRecConfig", "cluster_tokens", "dpc_knn",
    "fuse_representations", "fuse_scores", "kmeans", "make_adapter", "preset",
]
