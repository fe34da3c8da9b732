"""Analyses are recipes composed from the engine: randomization tests first."""
