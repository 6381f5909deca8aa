"""missrec: MISSRec (ACM MM 2023) multi-modal sequential recommendation."""

__version__ = "0.1.0"
