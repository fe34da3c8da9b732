"""How fast this device trains: two numbers measured once per device and cached, for wall-time estimates.

A trial's SGD step costs a fixed overhead (kernel launches, Python, the optimiser's per-tensor work)
plus time proportional to its multiply-adds (batch x the network's per-example count, models/flops.py).
Timing one step of a tiny MLP and one of a wide MLP gives both: seconds per step and seconds per
multiply-add. Both timings include the trainer's once-per-epoch evaluation, as real trials do.
The result is cached as JSON under the server's data dir, keyed by device, torch version, thread
count and how OpenMP threads wait (a spinning pool steps a small net about twice as fast as a passive
one on idle CPUs), because a second measurement costs seconds and would give the same answer.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from effcap.capacity.engine.device import describe_device, synchronize
from effcap.capacity.engine.trainer import DeviceData, train_trial
from effcap.capacity.models import MLPSpec, build_model
from effcap.capacity.models.flops import multiply_adds
from effcap.capacity.specs import TrainingSpec

# (input width, hidden widths): one overhead-bound and one compute-bound network.
# The environment variables that set how OpenMP threads wait (service/executors/threads.py chooses them).
OPENMP_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
_REFERENCES = ((16, (16,)), (256, (512, 512)))
_EXAMPLES, _BATCH, _EPOCHS = 1024, 128, 8


@dataclass(frozen=True)
class Calibration:
    device: str
    torch_version: str
    threads: int
    seconds_per_step: float
    seconds_per_multiply_add: float

    def step_seconds(self, batch_size: int, multiply_adds_per_example: int) -> float:
        """Predicted wall time of one SGD step of one trial (its share of the per-epoch evaluation included)."""
        return self.seconds_per_step + self.seconds_per_multiply_add * batch_size * multiply_adds_per_example

    def describe(self) -> str:
        return (
            f"calibrated on {self.device} ({self.threads} threads, torch {self.torch_version}): "
            f"{1e3 * self.seconds_per_step:.2f} ms per step + {1e12 * self.seconds_per_multiply_add:.1f} s per 10^12 multiply-adds"
        )


def measure_calibration(device: torch.device) -> Calibration:
    """Time whole trials of the two reference MLPs on random data and solve for the two costs."""
    timings = [_time_reference(width, hidden, device) for width, hidden in _REFERENCES]
    (steps_a, madds_a, seconds_a), (steps_b, madds_b, seconds_b) = timings
    # seconds = steps * per_step + steps * batch * madds * per_madd, for both networks.
    work_a, work_b = steps_a * _BATCH * madds_a, steps_b * _BATCH * madds_b
    per_madd = max((seconds_b - seconds_a * steps_b / steps_a) / (work_b - work_a * steps_b / steps_a), 0.0)
    per_step = max((seconds_a - work_a * per_madd) / steps_a, 0.0)
    return Calibration(describe_device(device), torch.__version__, torch.get_num_threads(), per_step, per_madd)


def _time_reference(width: int, hidden: tuple[int, ...], device: torch.device) -> tuple[int, int, float]:
    spec = MLPSpec(input_shape=(width,), num_classes=10, hidden_sizes=hidden)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(_EXAMPLES, width, generator=generator).to(device)
    y = torch.randint(0, 10, (_EXAMPLES,), generator=generator).to(device)
    data = DeviceData(x, y, x[:256], y[:256])
    training = TrainingSpec(learning_rate=0.01, max_epochs=_EPOCHS, fit_threshold=1.0)
    train_trial(
        build_model(spec, seed=0, device=device), data, training.model_copy(update={"max_epochs": 1}), 0
    )  # warm-up
    synchronize(device)
    started = time.perf_counter()
    outcome = train_trial(build_model(spec, seed=0, device=device), data, training, 0)
    synchronize(device)
    return (
        outcome.steps_run,
        multiply_adds(build_model(spec, device="meta"), spec.input_shape),
        time.perf_counter() - started,
    )


def cached_calibration(directory: Path, device: torch.device) -> Calibration:
    """The calibration of `device` from `directory`, measured and stored there the first time."""
    waits = ",".join(f"{name}={os.environ[name]}" for name in OPENMP_WAIT_VARIABLES if name in os.environ) or "default"
    key = f"{describe_device(device)}|torch {torch.__version__}|{torch.get_num_threads()} threads|waits {waits}"
    path = directory / "calibration.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    if isinstance(stored, dict) and isinstance(stored.get(key), dict):
        try:
            return Calibration(**stored[key])
        except TypeError:
            pass  # written by another version: measure again
    calibration = measure_calibration(device)
    stored = stored if isinstance(stored, dict) else {}
    stored[key] = asdict(calibration)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(stored, indent=2))
    temporary.replace(path)
    return calibration
