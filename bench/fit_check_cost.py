"""What the fit check's screen and the one-trial CPU rule save, old and new behaviour interleaved (issue 14).

    python bench/fit_check_cost.py randomization [--repeats 3] [--examples 400] [--seeds 4]
    python bench/fit_check_cost.py memorization [--repeats 3] [--max-subset 512]

Each repetition runs every variant back to back (rotating which goes first) and the ratio reported is the
old variant's wall time over the new one's within a repetition: median and minimum over the repetitions.
Variants:
- randomization (MLP 64-128-10 on digits, random labels, lr 0.1, no decay, fit threshold 1.0):
  `full pass every epoch` (before) and `screened` (EngineOptions default), same strategy;
- memorization (default MemorizationSpec, one seed, MLP 64-128-10 on digits):
  `grouped, full pass every epoch` (before: the old rule stacked a batch of one), `grouped, screened`
  (the screen alone) and `auto, screened` (now: one trial trains as the plain module).
Every variant's reported numbers are printed once, so equal steps to fit can be read off the output.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from effcap.capacity.analyses.memorization import run_memorization
from effcap.capacity.analyses.trial_batch import TrialPlan, run_trials
from effcap.capacity.data.datasets import digits, train_subset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, MemorizationSpec, TrainingSpec

MLP = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [128], "num_classes": 10})
CPU = torch.device("cpu")


def randomization_variants(examples: int, seeds: int) -> dict[str, Callable[[], object]]:
    data = train_subset(digits(), examples, 7)
    plans = [TrialPlan(Condition(kind=ConditionKind.RANDOM_LABELS), i, 100 + i) for i in range(seeds)]
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=400)

    def run(screen: bool) -> object:
        results, strategy = run_trials(MLP, data, plans, training, CPU, engine=EngineOptions(screen_fit_check=screen))
        return strategy, [(r.outcome.fitted, r.outcome.steps_to_fit, r.outcome.epochs_to_fit) for r in results]

    return {"full pass every epoch": lambda: run(False), "screened": lambda: run(True)}


def memorization_variants(max_subset: int) -> dict[str, Callable[[], object]]:
    data = digits()
    spec = MemorizationSpec(max_subset_size=max_subset)

    def run(engine: EngineOptions) -> object:
        result = run_memorization(MLP, data, spec, audit_seed=0, device=CPU, engine=engine)
        points = [(p.size, p.fitted_fraction, p.steps_to_fit.mean) for p in result.points]
        return result.engine_strategy, result.largest_fitted_size, points

    return {
        "grouped, full pass every epoch": lambda: run(EngineOptions(strategy="grouped", screen_fit_check=False)),
        "grouped, screened": lambda: run(EngineOptions(strategy="grouped")),
        "auto, screened": lambda: run(EngineOptions()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("analysis", choices=("randomization", "memorization"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=400, help="randomization: train examples of digits")
    parser.add_argument("--seeds", type=int, default=4, help="randomization: trials stacked")
    parser.add_argument("--max-subset", type=int, default=512, help="memorization: largest subset size searched")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    variants = (
        randomization_variants(args.examples, args.seeds)
        if args.analysis == "randomization"
        else memorization_variants(args.max_subset)
    )
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            started = time.perf_counter()
            reported = variants[name]()
            seconds[name].append(time.perf_counter() - started)
            if repeat == 0:
                print(f"{name}: {reported}", flush=True)
    print(
        f"\n{args.analysis}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repetitions"
    )
    print(f"| variant | seconds (median) | {names[0]} ÷ variant, median | min |")
    print("| --- | --- | --- | --- |")
    for name in names:
        ratios = np.array(seconds[names[0]]) / np.array(seconds[name])
        print(
            f"| {name} | {statistics.median(seconds[name]):.1f} "
            f"| {statistics.median(ratios):.2f} | {ratios.min():.2f} |"
        )


if __name__ == "__main__":
    main()
