"""Cost and values of Jiang et al.'s generalisation measures on the demo checkpoint (MLP 2x512 on digits), CPU.

    python bench/generalization_measures.py [--threads 2]

Times each part of the catalogue (wall and CPU seconds) as the rademacher analysis computes it (default RademacherSpec: 1,000 training
examples, its training budget for the steps to cross-entropy 0.1), with the demo's initialisation as the initial
checkpoint so that the distance measures are computed too, and prints every measure's value.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.data.datasets import digits
from effcap.capacity.demo_assets import DEMO_ARCHITECTURE, write_demo_checkpoint
from effcap.capacity.measures.flatness import pac_bayes_flatness, sharpness_flatness
from effcap.capacity.measures.generalization_measures import (
    generalization_measures,
    init_distances,
    weights_squared_norm,
)
from effcap.capacity.measures.layers import fold_batchnorm
from effcap.capacity.measures.norms import norm_measures
from effcap.capacity.measures.steps_to_loss import constant_rate, steps_to_loss
from effcap.capacity.models import build_model
from effcap.capacity.specs import RademacherSpec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mlp.safetensors"
        write_demo_checkpoint(path)
        state = load_checkpoint(path).state_dict
    spec, data = RademacherSpec(), digits()
    x, y = torch.from_numpy(data.x_train[: spec.max_examples]), torch.from_numpy(data.y_train[: spec.max_examples])
    model = build_model(DEMO_ARCHITECTURE)
    model.load_state_dict(state)
    initial = build_model(DEMO_ARCHITECTURE, seed=0)
    folded = fold_batchnorm(model)
    seconds: dict[str, tuple[float, float]] = {}
    flatness = {}
    for noise, suffix in (("isotropic", ""), ("magnitude", ".mag")):
        for kind, measure in (("pacbayes", pac_bayes_flatness), ("sharpness", sharpness_flatness)):
            clock = _clock()
            flatness[f"{kind}{suffix}.flatness"] = measure(folded, x, y, noise=noise, seed=1)
            seconds[f"{kind}{suffix}.flatness"] = _since(clock)
    clock = _clock()
    steps = steps_to_loss(build_model(DEMO_ARCHITECTURE, seed=0), x, y, constant_rate(spec.training), seed=2)
    seconds["steps.to.ce.0.1"] = _since(clock)
    clock = _clock()
    norms = norm_measures(model, DEMO_ARCHITECTURE.input_shape, x, y)
    distances = init_distances(model, initial, DEMO_ARCHITECTURE.input_shape)
    parameter_norm = weights_squared_norm(folded, DEMO_ARCHITECTURE.input_shape)
    measures = generalization_measures(norms, parameter_norm, flatness, steps, distances)
    seconds["norms, distances, assembly"] = _since(clock)
    total = [round(sum(part[i] for part in seconds.values()), 2) for i in (0, 1)]
    values = {m.name: m.value for m in measures}
    print(json.dumps({"wall_cpu_s": seconds, "total_wall_cpu_s": total, "measures": values}))


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(clock: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since `clock`: on a shared machine the CPU seconds are the steadier figure."""
    return round(time.perf_counter() - clock[0], 2), round(time.process_time() - clock[1], 2)


if __name__ == "__main__":
    main()
