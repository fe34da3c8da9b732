"""The NTK Gram's memory count (admission) against the blocks measures/ntk.py really holds."""

import numpy as np
import pytest

from effcap.capacity.measures.ntk_memory import CHUNK, COLUMN_BLOCK, block_rows, ntk_peak_bytes
from effcap.capacity.specs import AuditSpec, RademacherSpec


def test_the_count_bounds_every_tensor_no_larger_than_the_one_it_is_given():
    """What one tensor of m elements makes ntk_gram hold: a row block, a chunk and its vmapped copy, two
    float64 column slices, the Gram, a block product and its temporary; a server passes only the parameter
    count, so the count at M must cover every m ≤ M (block_rows' floor rounding is not monotone in m)."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        n = int(rng.integers(1, 4097))
        largest = int(10 ** rng.uniform(0, 9))
        m = int(rng.integers(1, largest + 1))
        rows = block_rows(n, m, 4)
        held = (rows + 2 * min(CHUNK, rows)) * m * 4 + 2 * rows * min(COLUMN_BLOCK, m) * 8 + 3 * 8 * n * n
        assert held <= ntk_peak_bytes(n, largest), (n, largest, m)


def test_admission_refuses_by_the_grams_memory_and_names_the_examples_that_fit():
    from effcap.service.errors import ApiError
    from effcap.service.limits import AuditLimits, check_audit_size

    limits = AuditLimits()  # 4 GiB
    # 50M parameters, 4,096 examples: the whole float64 Jacobian (1.6 TB) was refused; the blocks need ~1 GB.
    check_audit_size(AuditSpec(rademacher=RademacherSpec(ntk_examples=4096, fit_signs=False)), 10, 50 * 10**6, limits)
    too_large = AuditSpec(rademacher=RademacherSpec(ntk_examples=4096, fit_signs=False))
    with pytest.raises(ApiError) as refused:
        check_audit_size(too_large, 10, 450 * 10**6, limits)  # a block and a chunk's two copies of one 1.8 GB row
    assert (refused.value.reason, refused.value.field) == ("NTK_TOO_LARGE", "spec.rademacher.ntk_examples")
    tight = AuditLimits(max_ntk_bytes=ntk_peak_bytes(300, 10**6))
    with pytest.raises(ApiError) as refused:
        check_audit_size(AuditSpec(rademacher=RademacherSpec(ntk_examples=1000, fit_signs=False)), 10, 10**6, tight)
    assert "at most 300 examples fit" in refused.value.message
    check_audit_size(AuditSpec(rademacher=RademacherSpec(ntk_examples=300, fit_signs=False)), 10, 10**6, tight)
