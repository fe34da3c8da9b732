"""An audit's training, counted from its spec before it runs (the server's admission check)."""

from effcap.capacity.cost import training_examples
from effcap.capacity.specs import AuditSpec, CompressibilitySpec, MemorizationSpec, RademacherSpec, RandomizationSpec, TrainingSpec


def test_each_analysis_is_counted_from_its_own_loops():
    spec = AuditSpec(
        randomization=RandomizationSpec(),  # 3 conditions x 2 seeds x 100 epochs over the split
        memorization=MemorizationSpec(),  # sizes 64..1297 doubling (6) + 4 bisections, 1 seed, 100 epochs of 11 steps (+ 11) of 128
        rademacher=RademacherSpec(draws=4, max_examples=500, ascent_steps=10, relative_radii=[0.1, 1.0], training=TrainingSpec(max_epochs=7)),
        compressibility=CompressibilitySpec(methods=["random"], sparsities=[0.0, 0.5], bisection_steps=1, finetune_steps=3, finetune=TrainingSpec(batch_size=32)),
    )
    assert training_examples(spec, 1297) == {
        "randomization": 3 * 2 * 100 * 1297,
        "memorization": 10 * 1 * (1100 + 11) * 128,
        "rademacher": 4 * 7 * 500 + 2 * 2 * 4 * 10 * 500,
        "compressibility": 1 * 3 * 3 * 32,
    }
    assert training_examples(AuditSpec(compressibility=CompressibilitySpec()), 1297) == {"compressibility": 0}  # one-shot: no training


def test_admission_names_the_field_to_shrink():
    from effcap.service.errors import ApiError
    from effcap.service.limits import AuditLimits, check_audit_size

    limits = AuditLimits(max_training_examples=10**6, max_parameters=10**6, max_ntk_jacobian_bytes=1 << 20)
    check_audit_size(AuditSpec(randomization=RandomizationSpec(seeds_per_condition=1)), 1000, 1000, limits)  # 3e5 examples: admitted
    cases = [
        (AuditSpec(randomization=RandomizationSpec()), 10_000, 1000, "AUDIT_TOO_LARGE", "spec.randomization"),  # 3 x 2 x 100 epochs of 10k
        (AuditSpec(randomization=RandomizationSpec()), 10, 2 * 10**6, "MODEL_TOO_LARGE", "model"),
        (AuditSpec(rademacher=RademacherSpec(ntk_examples=256, fit_signs=False)), 10, 1000, "NTK_TOO_LARGE", "spec.rademacher.ntk_examples"),
    ]
    for spec, n, parameters, reason, field in cases:
        try:
            check_audit_size(spec, n, parameters, limits)
        except ApiError as error:
            assert (error.code.name, error.reason, error.field) == ("RESOURCE_EXHAUSTED", reason, field)
        else:
            raise AssertionError(f"{reason} not raised")
