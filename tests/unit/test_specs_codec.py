"""Spec validation through the API's messages: defaults, bounds, and the field path of each error."""

import pytest

from effcap.capacity.errors import InputError
from effcap.capacity.specs import AuditSpec, Condition, ConditionKind, RandomizationSpec
from effcap.clients.spec_args import parse_condition, randomization_spec
from effcap.protos.v1 import spec_pb2
from effcap.service import codec


def test_empty_randomization_takes_the_documented_defaults():
    spec = codec.audit_spec_from_proto(spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec()))
    r = spec.randomization
    assert [c.label for c in r.conditions] == ["true", "corrupt(0.5)", "random"]
    assert (r.seeds_per_condition, r.init) == (2, "reinit")
    assert (r.training.learning_rate, r.training.momentum, r.training.lr_decay_per_epoch) == (0.01, 0.9, 0.95)
    assert (r.training.batch_size, r.training.max_epochs, r.training.fit_threshold) == (128, 100, 1.0)


def test_spec_roundtrips_through_proto():
    spec = AuditSpec(
        seed=42,
        architecture={"family": "mlp", "input_shape": [64], "num_classes": 10},
        randomization=RandomizationSpec(conditions=[Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=0.3)], seeds_per_condition=3),
    )
    assert codec.audit_spec_from_proto(codec.audit_spec_to_proto(spec)) == spec


@pytest.mark.parametrize(
    "message, field",
    [
        (spec_pb2.AuditSpec(), "spec"),
        (spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(training=spec_pb2.TrainingSpec(batch_size=0))), "spec.randomization.training.batch_size"),
        (spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(seeds_per_condition=0)), "spec.randomization.seeds_per_condition"),
        (
            spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(conditions=[spec_pb2.Condition(kind=spec_pb2.CONDITION_KIND_CORRUPT_LABELS, corruption=1.5)])),
            "spec.randomization.conditions[0]",
        ),
        (spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(conditions=[spec_pb2.Condition()])), "spec.randomization.conditions[0].kind"),
    ],
)
def test_invalid_specs_name_the_field(message, field):
    with pytest.raises(InputError) as info:
        codec.audit_spec_from_proto(message)
    assert info.value.field == field


def test_duplicate_conditions_are_refused():
    with pytest.raises(InputError, match="distinct") as info:
        codec.audit_spec_from_proto(spec_pb2.AuditSpec(randomization=randomization_spec("true,true", None, None, None, None, None, None)))
    assert info.value.field == "spec.randomization.conditions"


@pytest.mark.parametrize(
    "section, field",
    [
        (spec_pb2.AuditSpec(rademacher=spec_pb2.RademacherSpec(relative_radii=[0.1, float("inf")])), "spec.rademacher.relative_radii[1]"),
        (spec_pb2.AuditSpec(compressibility=spec_pb2.CompressibilitySpec(quantization_bits=[8] * 100)), "spec.compressibility.quantization_bits"),
        (spec_pb2.AuditSpec(compressibility=spec_pb2.CompressibilitySpec(low_rank_energies=[0.5] * 100)), "spec.compressibility.low_rank_energies"),
        (spec_pb2.AuditSpec(memorization=spec_pb2.MemorizationSpec(min_subset_size=500, max_subset_size=100)), "spec.memorization"),
    ],
)
def test_unbounded_lists_infinite_radii_and_crossed_sizes_are_refused(section, field):
    with pytest.raises(InputError) as info:
        codec.audit_spec_from_proto(section)
    assert info.value.field == field


@pytest.mark.parametrize(
    "text, kind, corruption",
    [("true", "TRUE_LABELS", 0.0), ("corrupt(0.25)", "CORRUPT_LABELS", 0.25), ("corrupt:0.5", "CORRUPT_LABELS", 0.5), ("gaussian", "GAUSSIAN_INPUTS", 0.0)],
)
def test_cli_condition_words(text, kind, corruption):
    message = parse_condition(text)
    assert spec_pb2.ConditionKind.Name(message.kind) == f"CONDITION_KIND_{kind}"
    assert message.corruption == corruption
    # The library names it the same way the CLI spells it.
    assert codec.audit_spec_from_proto(
        spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(conditions=[message]))
    ).randomization.conditions[0].label == {"corrupt:0.5": "corrupt(0.5)", "gaussian": "gaussian"}.get(text, text)


def test_unknown_cli_condition_word():
    with pytest.raises(ValueError, match="unknown condition"):
        parse_condition("noisy")
