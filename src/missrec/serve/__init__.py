"""Inference: load a checkpoint, rank items for a history, serve over HTTP."""
