"""Deriving every random choice of an audit from its one seed.

Each consumer names its stream (e.g. the condition's label and the seed index), so adding a
condition or a seed never changes the numbers of the others, and a resumed audit draws the same.
"""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(audit_seed: int, *names: str | int) -> int:
    """A 63-bit seed for the stream named by `names` under `audit_seed`."""
    keys = [zlib.crc32(str(name).encode()) for name in names]
    state = np.random.SeedSequence([audit_seed & 0xFFFFFFFF, audit_seed >> 32, *keys]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 ^ int(state[1])) & (2**63 - 1)


def data_order_seed(trial_seed: int) -> int:
    """The seed of a trial's minibatch order, a stream of its own.

    The trial seed itself seeds the initialisation (build_model); seeding the order with it too would
    replay the same Mersenne Twister numbers that drew the first weights.
    """
    return derive_seed(trial_seed, "data-order")
