"""Vocabularies, the dataset store, importers, splits and batching."""
