"""Capacity measures of a trained network: operator norms, path norm, margins, Rademacher estimates."""
