"""The raw SGD step under OpenMP wait policies, idle and beside CPU-bound processes (issue 17).

    python bench/wait_policy_step.py [--steps 1500] [--burners 2]

Each setting runs in a fresh interpreter (libgomp reads its environment once, at load): an MLP
64-512-512-10, batch 128, SGD with momentum, on random data; it prints samples/s for every setting idle,
then again beside `--burners` `while True` processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

SETTINGS = {
    "2 threads, libgomp default spin": {"GOMP_SPINCOUNT": "300000"},
    "2 threads, 10,000 spins": {"GOMP_SPINCOUNT": "10000"},
    "2 threads, 1,000 spins": {"GOMP_SPINCOUNT": "1000"},
    "2 threads, passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread, passive": {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
}
VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def train(steps: int) -> float:
    import torch

    torch.manual_seed(0)
    x, y = torch.randn(1280, 64), torch.randint(0, 10, (1280,))
    layers = [torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(512, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for step in range(steps):
        i = (step * 128) % 1280
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 128]), y[i : i + 128])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * 128 / (time.perf_counter() - start)


def run_all(steps: int, label: str) -> None:
    clean = {name: value for name, value in os.environ.items() if name not in VARIABLES}
    for name, variables in SETTINGS.items():
        command = [sys.executable, __file__, "--child", "--steps", str(steps)]
        rate = subprocess.run(command, env=clean | variables, capture_output=True, text=True, check=True).stdout
        print(f"{label:5s} {name:32s} {float(rate):9,.0f} samples/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(train(args.steps))
        return
    print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    run_all(args.steps, "idle")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
    try:
        time.sleep(0.5)
        run_all(args.steps, "busy")
    finally:
        for process in burners:
            process.kill()


if __name__ == "__main__":
    main()
