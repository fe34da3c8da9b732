"""Cost of the default rademacher analysis on the digits MLP: another git ref's code against this tree's, one run.

    python bench/rademacher_cost.py [--ref main] [--threads 2]

Each code runs in its own child process (the other ref exported with `git archive`, imported ahead of
this tree), on the demo checkpoint (MLP 2x512 briefly trained on digits, written once by this process), the
default RademacherSpec, on CPU with `--threads` torch threads. A child does what an audit worker does: it loads
the checkpoint file and the builtin digits, then runs the analysis. It reports its wall and CPU seconds, its
peak RSS (ru_maxrss over its whole life; and its resident set just before the analysis) and the analysis'
numbers, so the two codes' results are compared in the same run. Local R̂ differs by design (issue 18: this
tree scores each draw's increment over w₀, and its ascents adapt their steps); every other number should
agree.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(threads: int, checkpoint: Path) -> None:
    import torch

    torch.set_num_threads(threads)
    from effcap.capacity.analyses.rademacher import run_rademacher
    from effcap.capacity.checkpoint import load_checkpoint
    from effcap.capacity.data.datasets import digits
    from effcap.capacity.demo_assets import DEMO_ARCHITECTURE
    from effcap.capacity.specs import RademacherSpec

    state = load_checkpoint(checkpoint).state_dict
    data = digits()
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20
    wall, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = run_rademacher(DEMO_ARCHITECTURE, state, data, RademacherSpec(), 0, torch.device("cpu"))
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "wall_s": time.perf_counter() - wall,
        "cpu_s": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
        "peak_rss_mib": after.ru_maxrss / 1024,
        "rss_before_analysis_mib": resident,
        "local": [p.estimate.mean for p in result.local],
        "local_per_layer": [p.estimate.mean for p in result.local_per_layer],
        "global": result.global_estimate.mean,
        "sharpness_sigma": result.sharpness.sigma,
        "ntk": [result.ntk.true_labels, result.ntk.random_labels],
        "bounds": {b.name: b.value for b in result.bounds},
    }))  # fmt: skip


def run(code: Path, threads: int, checkpoint: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    command = [sys.executable, __file__, "--child", "--threads", str(threads), "--checkpoint", str(checkpoint)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=code)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.threads, args.checkpoint)
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "old"
        (old / "effcap").mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old / "effcap")], input=archive, check=True)
        new = Path(folder) / "new"
        new.mkdir()
        (new / "effcap").symlink_to(ROOT)
        checkpoint = Path(folder) / "mlp.safetensors"
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from effcap.capacity.demo_assets "
                        "import write_demo_checkpoint; write_demo_checkpoint(Path(sys.argv[1]))", str(checkpoint)],
                       env={**os.environ, "PYTHONPATH": str(new)}, check=True)  # fmt: skip
        before, after = run(old, args.threads, checkpoint), run(new, args.threads, checkpoint)
    for key in before:
        print(f"{key}: {args.ref} {before[key]}  |  this tree {after[key]}")
    print(
        f"speed-up (CPU s): {before['cpu_s'] / after['cpu_s']:.1f}x, (wall s): {before['wall_s'] / after['wall_s']:.1f}x"
    )


if __name__ == "__main__":
    main()
