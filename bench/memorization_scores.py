"""Per-example memorisation scores through the real server: planted label noise and duplicates on digits.

    python bench/memorization_scores.py [--models 64] [--epochs 400] [--skip-doubled]

Flips 5% of the digits train labels (seed 11) and copies 5 test examples, relabelled, into the train
split (seed 12; capacity/data/planted.py says why relabelled), uploads that dataset and an MLP 64-128-10
checkpoint to an `effcap serve` started on a free loopback port (effcap.clients.demo.server_process),
and runs `memorization_scores` audits (r = 0.7, SGD lr 0.1 without decay, to train
accuracy 1 or --epochs): audit seeds 0 and 1 with --models networks, and seed 2 with twice as many.
From each report's .npz it computes the AUROC of mem(i) for the flipped examples, the share of flipped
examples whose held-out prediction is their original label, how many duplicates get their top influence
from their copy, the Spearman correlation of mem between seeds 0 and 1, and the mean-s.e. ratio between
m and 2m (1/sqrt(m) predicts sqrt 2). It then trains the same --models networks (same subsets, seeds and
data orders) one at a time in the reference loop (trainer.train_trial), in this process, and times it.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
from pathlib import Path

# One thread, passive waits, for this process and the server's workers (inherited), as the test suite runs:
# on a shared two-core machine a two-thread pool spin-waits for descheduled siblings (issue 17).
for _variable, _value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_variable, _value)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from effcap.capacity.analyses.memorization_scores import plan_models  # noqa: E402
from effcap.capacity.checkpoint import save_checkpoint  # noqa: E402
from effcap.capacity.data.datasets import digits, subset_rows  # noqa: E402
from effcap.capacity.data.planted import auroc, flip_labels, plant_duplicates  # noqa: E402
from effcap.capacity.engine.trainer import DeviceData, train_trial  # noqa: E402
from effcap.capacity.models import build_model, parse_architecture  # noqa: E402
from effcap.capacity.specs import MemorizationScoresSpec, TrainingSpec  # noqa: E402
from effcap.clients.demo import server_process  # noqa: E402
from effcap.clients.sdk import EffcapClient  # noqa: E402
from effcap.protos.v1 import spec_pb2  # noqa: E402

ARCH = {"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [128], "num_classes": 10}


def audit(client: EffcapClient, model, data, models: int, seed: int, epochs: int) -> tuple[dict[str, np.ndarray], float, str]:
    training = spec_pb2.TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=epochs)
    spec = spec_pb2.AuditSpec(seed=seed, memorization_scores=spec_pb2.MemorizationScoresSpec(models=models, training=training))
    started = time.perf_counter()
    operation = client.create_audit(model, spec_pb2.DatasetRef(artifact=data), spec, skip_cache=True)
    report = client.report_of(client.wait(operation.name))
    seconds = time.perf_counter() - started
    section = report.memorization_scores
    print(f"  audit seed {seed}, m = {models}: {seconds:.1f} s, engine {section.engine_strategy}, fitted {section.fitted_fraction:.2f}, "
          f"share mem > 0.5 {section.share_above_0_5:.4f}, warnings {list(report.warnings)}", flush=True)
    archive = np.load(io.BytesIO(section.scores.npz), allow_pickle=False)
    return {k: archive[k] for k in archive.files}, seconds, section.engine_strategy


def reference_loop(dataset, models: int, epochs: int) -> float:
    """The same networks trained one at a time by the plain trainer, each on its subset's tensors."""
    spec = MemorizationScoresSpec(models=models, training=TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=epochs))
    architecture = parse_architecture(ARCH)
    x_test, y_test = torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test)
    started = time.perf_counter()
    for plan in plan_models(spec, 0, len(dataset.x_train)):
        rows = subset_rows(len(dataset.x_train), plan.subset.size, plan.subset.seed)
        data = DeviceData(torch.from_numpy(dataset.x_train[rows]), torch.from_numpy(dataset.y_train[rows]), x_test, y_test)
        model = build_model(architecture, seed=plan.seed)
        train_trial(model, data, spec.training, plan.seed)
        with torch.no_grad():  # the predictions the scores need, as the engine records them
            model.eval()
            model(torch.from_numpy(dataset.x_train)).argmax(dim=1)
            model(x_test).argmax(dim=1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--skip-doubled", action="store_true", help="skip the 2m audit (the s.e. scaling)")
    args = parser.parse_args()
    noise = flip_labels(digits(), 0.05, seed=11)
    planted = plant_duplicates(noise.dataset, 5, seed=12)
    d = planted.dataset
    print(f"digits: {len(d.y_train)} train ({len(noise.flipped)} flipped, {len(planted.train_rows)} planted copies), {len(d.y_test)} test; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        np.savez(root / "planted.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
        architecture = parse_architecture(ARCH)
        save_checkpoint(root / "mlp.safetensors", architecture, build_model(architecture, seed=0).state_dict())
        with server_process(root / "server", Console(stderr=True)) as address, EffcapClient(address) as client:
            model, data = client.upload(root / "mlp.safetensors"), client.upload(root / "planted.npz")
            first, first_seconds, strategy = audit(client, model, data, args.models, 0, args.epochs)
            second, _, _ = audit(client, model, data, args.models, 1, args.epochs)
            doubled = None if args.skip_doubled else audit(client, model, data, 2 * args.models, 2, args.epochs)[0]
    reference_seconds = reference_loop(d, args.models, args.epochs)
    report(noise, planted, first, second, doubled, first_seconds, reference_seconds, strategy, args.models)


def report(noise, planted, first, second, doubled, first_seconds, reference_seconds, strategy, models) -> None:
    from scipy.stats import spearmanr

    n = len(first["memorization"])
    flipped = np.zeros(n, dtype=bool)
    flipped[noise.flipped] = True
    mem = first["memorization"].copy()
    mem[planted.train_rows] = np.nan  # the planted copies are scored by the duplicate check, not here
    area = auroc(mem[~np.isin(np.arange(n), planted.train_rows)], flipped[~np.isin(np.arange(n), planted.train_rows)])
    recovered = float(np.mean(first["held_out_prediction"][noise.flipped] == noise.original_labels))
    found = first["test_top_train_index"][planted.test_rows] == planted.train_rows
    defined = np.isfinite(first["memorization"]) & np.isfinite(second["memorization"])
    rho = spearmanr(first["memorization"][defined], second["memorization"][defined]).statistic
    rho_flipped = spearmanr(first["memorization"][noise.flipped], second["memorization"][noise.flipped]).statistic
    print()
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| AUROC of mem(i) for the {flipped.sum()} flipped labels (m = {models}, seed 0) | {area:.4f} |")
    print(f"| flipped examples whose held-out prediction is the original label | {recovered:.3f} |")
    print(f"| planted duplicates whose top influence is their copy | {found.sum()}/{len(found)} (influence {np.round(first['test_top_influence'][planted.test_rows], 2).tolist()}) |")
    print(f"| Spearman of mem, seeds 0 vs 1 (all examples / flipped only) | {rho:.3f} / {rho_flipped:.3f} |")
    if doubled is not None:
        ratio = np.nanmean(first["memorization_se"]) / np.nanmean(doubled["memorization_se"])
        print(f"| mean s.e. of mem at m = {models} / at m = {2 * models} (sqrt 2 = 1.414) | {ratio:.3f} |")
        # 1/sqrt(m) holds where the shares are inside (0, 1); an always-right example's smoothed s.e. falls as 1/m.
        inside = lambda a: ((a["accuracy_in"] > 0) & (a["accuracy_in"] < 1)) | ((a["consistency"] > 0) & (a["consistency"] < 1))  # noqa: E731
        both = inside(first) & inside(doubled)
        interior = np.nanmean(first["memorization_se"][both]) / np.nanmean(doubled["memorization_se"][both])
        print(f"| the same over the {both.sum()} examples with a share inside (0, 1) at both m | {interior:.3f} |")
    print(f"| audit wall time through the server, m = {models} (engine {strategy}) | {first_seconds:.1f} s |")
    print(f"| the same {models} networks one at a time in the reference loop | {reference_seconds:.1f} s ({reference_seconds / first_seconds:.2f}x the audit) |")


if __name__ == "__main__":
    main()
