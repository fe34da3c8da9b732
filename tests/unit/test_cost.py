"""An audit's training, counted from its spec before it runs (the server's admission check)."""

from effcap.capacity.cost import training_examples
from effcap.capacity.specs import AuditSpec, CompressibilitySpec, MemorizationSpec, RademacherSpec, RandomizationSpec, TrainingSpec


def test_each_analysis_is_counted_from_its_own_loops():
    spec = AuditSpec(
        preset="paper",  # the paper's 100 epochs where training is unset
        randomization=RandomizationSpec(conditions=RandomizationSpec().conditions, seeds_per_condition=2),  # 3 x 2 x 100 epochs
        memorization=MemorizationSpec(),  # sizes 64..1297 doubling (6) + 4 bisections, 1 seed, 100 epochs of 11 steps (+ 11) of 128
        rademacher=RademacherSpec(draws=4, max_examples=500, ascent_steps=10, relative_radii=[0.1, 1.0], training=TrainingSpec(max_epochs=7)),
        compressibility=CompressibilitySpec(methods=["random"], sparsities=[0.0, 0.5], bisection_steps=1, finetune_steps=3, finetune=TrainingSpec(batch_size=32)),
    )
    assert training_examples(spec, 1297) == {
        "randomization": 3 * 2 * 100 * 1297,
        "memorization": 10 * 1 * (1100 + 11) * 128,
        # Fitting signs, the two ascents per radius and draw, then Jiang et al.'s measures: two sharpness searches
        # of 16 scales x 2 starts x 3 ascent steps, and the steps-to-loss training (7 epochs and a replayed one).
        "rademacher": 4 * 7 * 500 + 2 * 2 * 4 * 10 * 500 + 2 * 16 * 2 * 3 * 500 + 8 * 500,
        "compressibility": 1 * 3 * 3 * 32,
    }
    assert training_examples(AuditSpec(compressibility=CompressibilitySpec()), 1297) == {"compressibility": 0}  # one-shot: no training


def test_the_standard_preset_is_counted_as_it_will_run():
    """455 epochs of 11 steps (at least 5000 steps), plus the learning-rate probe: 3 rates x 10 epochs."""
    assert training_examples(AuditSpec(randomization=RandomizationSpec()), 1297) == {"randomization": (3 * 2 * 455 + 3 * 10) * 1297}
    set_rate = RandomizationSpec(training=TrainingSpec(learning_rate=0.1))  # no probe
    assert training_examples(AuditSpec(randomization=set_rate), 1297) == {"randomization": 3 * 2 * 455 * 1297}


def test_admission_names_the_field_to_shrink():
    from effcap.service.errors import ApiError
    from effcap.service.limits import AuditLimits, check_audit_size

    limits = AuditLimits(max_training_examples=10**6, max_parameters=10**6, max_ntk_bytes=1 << 20)
    paper = {"preset": "paper"}
    check_audit_size(AuditSpec(**paper, randomization=RandomizationSpec(seeds_per_condition=1)), 1000, 1000, limits)  # 9 x 100 x 1000: admitted
    cases = [
        (AuditSpec(**paper, randomization=RandomizationSpec()), 10_000, 1000, "AUDIT_TOO_LARGE", "spec.randomization"),  # 9 x 3 x 100 epochs of 10k
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
