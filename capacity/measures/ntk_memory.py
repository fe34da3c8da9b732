"""The NTK Gram's working memory, counted from sizes alone (no torch), so a server can admit a job by it.

measures/ntk.py builds H = Σ_k J_k J_kᵀ one parameter tensor at a time, in blocks of Jacobian rows; the
constants that fix those blocks live here, next to the count of what they hold.
"""

from __future__ import annotations

# Examples per vmapped Jacobian call: on the digits MLP, 16 hold 15 MiB less than 32 at the same CPU time; 8 took
# 27% more.
CHUNK = 16
# The most bytes of one tensor's Jacobian rows held in one block, unless one row is larger.
BLOCK_BYTES = 48 * 2**20
# Jacobian columns converted to float64 at a time when forming a block product.
COLUMN_BLOCK = 8192


def block_rows(examples: int, tensor_size: int, element_size: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Jacobian rows (examples) of one tensor held in one block."""
    return min(examples, max(1, block_bytes // (tensor_size * element_size)))


def ntk_peak_bytes(examples: int, largest_tensor: int, element_size: int = 4) -> int:
    """An upper count of the bytes `ntk_gram` holds at once beyond the model, for any tensor of at most
    `largest_tensor` elements (a server that knows only the parameter count passes that).

    Counted: the float64 Gram, a block product and its temporary (3 · 8n²); one block of rows (≤ max(BLOCK_BYTES,
    one row) and ≤ all n rows); one vmapped chunk of rows and that call's own copy of them (each ≤ CHUNK rows and ≤
    a block); the two float64 column slices of a block product (each ≤ COLUMN_BLOCK or fewer columns of a
    block's rows). Bounds, not the exact floor rounding of `block_rows`, so a smaller tensor never exceeds it.
    The fully connected layers' factored shares (ntk_factored.py) come first and fit the same count: the Gram and
    two n × n products, factors within a third of a block with one layer's float64 copies, and passes of CHUNK
    examples.
    """
    block = min(examples * largest_tensor * element_size, max(BLOCK_BYTES, largest_tensor * element_size))
    chunk = min(CHUNK * largest_tensor * element_size, block)
    column_slice = 8 * min(examples * min(COLUMN_BLOCK, largest_tensor), block // element_size)
    return 3 * 8 * examples**2 + block + 2 * chunk + 2 * column_slice
