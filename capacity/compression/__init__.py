"""Pruning-compressibility: how much of a trained model is actually needed, and the bound it implies."""
