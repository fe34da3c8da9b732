"""Datasets (loading and validation) and the randomization-test conditions applied to them."""
