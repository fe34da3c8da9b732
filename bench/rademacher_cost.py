"""Cost of the default rademacher analysis on the digits MLP: another git ref's code against this tree's, one run.

    python bench/rademacher_cost.py [--ref main] [--threads 2]

Each code runs in its own child process (the other ref exported with `git archive`, imported ahead of this tree), on
the demo checkpoint (MLP 2x512 briefly trained on digits, written once by this process), the default RademacherSpec,
on CPU with `--threads` torch threads. A child does what an audit worker does: it loads the checkpoint file and the
builtin digits, then runs the analysis. It reports its wall and CPU seconds, its peak RSS (ru_maxrss over its whole
life; and its resident set just before the analysis) and the analysis' numbers, so the two codes' results are
compared in the same run. Each child also reports, per phase of the analysis (the functions `run_rademacher` calls,
where the code has them), its CPU seconds, its resident set after and the peak so far, and its resident set after
each import stage; and the run ends with this CPU's float32 batched-GEMM rate (the arithmetic floor the section in
bench/RESULTS.md reasons from). Local R̂ differs by design (issue 18: this tree scores each draw's increment over
w₀, and its ascents adapt their steps); every other number should agree.
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


PHASES = ("norm_measures", "local_rademacher", "local_rademacher_radii", "global_rademacher", "sharpness",
          "_sharpness_bound", "_ntk", "_generalization_measures")  # fmt: skip


def _resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed_phases(module: object) -> list[dict]:
    """Wrap the analysis' phase functions in `module` (those this code has) to record each call."""
    records: list[dict] = []
    for name in PHASES:
        function = getattr(module, name, None)
        if function is None:
            continue

        def timed(*args, _function=function, _name=name, **kwargs):
            before_cpu, before_rss = _cpu_s(), _resident_mib()
            result = _function(*args, **kwargs)
            records.append({"phase": _name, "cpu_s": _cpu_s() - before_cpu, "rss_before_mib": before_rss,
                            "rss_after_mib": _resident_mib(),
                            "peak_so_far_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})  # fmt: skip
            return result

        setattr(module, name, timed)
    return records


def child(threads: int, checkpoint: Path) -> None:
    stages = {"python": _resident_mib()}
    import torch

    torch.set_num_threads(threads)
    stages["torch"] = _resident_mib()
    import effcap.capacity.analyses.rademacher as analysis
    from effcap.capacity.checkpoint import load_checkpoint
    from effcap.capacity.data.datasets import digits
    from effcap.capacity.demo_assets import DEMO_ARCHITECTURE
    from effcap.capacity.specs import RademacherSpec

    stages["analysis modules"] = _resident_mib()
    run_rademacher = analysis.run_rademacher
    phases = _timed_phases(analysis)
    state = load_checkpoint(checkpoint).state_dict
    stages["checkpoint loaded"] = _resident_mib()
    data = digits()
    stages["digits loaded"] = _resident_mib()
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
        "import_stages_mib": stages,
        "phases": phases,
    }))  # fmt: skip


def gemm_rate(threads: int, repeats: int = 20) -> float:
    """This CPU's float32 rate on the local ascents' largest product, in GFLOP per CPU-second."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(8, 1000, 512), torch.randn(8, 512, 512)
    torch.bmm(a, b)  # warm-up
    start = _cpu_s()
    for _ in range(repeats):
        torch.bmm(a, b)
    return repeats * 2 * 8 * 1000 * 512 * 512 / (_cpu_s() - start) / 1e9


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
        if key not in ("phases", "import_stages_mib"):
            print(f"{key}: {args.ref} {before[key]}  |  this tree {after[key]}")
    for label, result in ((args.ref, before), ("this tree", after)):
        print(f"{label}: resident set after each import stage (MiB): {result['import_stages_mib']}")
        print(f"{label}: phase, CPU s, resident before -> after, peak so far (MiB)")
        for phase in result["phases"]:
            print(f"  {phase['phase']:26s} {phase['cpu_s']:7.1f}  {phase['rss_before_mib']:6.0f} -> "
                  f"{phase['rss_after_mib']:6.0f}  {phase['peak_so_far_mib']:6.0f}")  # fmt: skip
    print(f"float32 batched GEMM (8 x 1000x512 @ 512x512), {args.threads} threads: {gemm_rate(args.threads):.0f} "
          "GFLOP per CPU-second")
    print(
        f"speed-up (CPU s): {before['cpu_s'] / after['cpu_s']:.1f}x, (wall s): {before['wall_s'] / after['wall_s']:.1f}x"
    )


if __name__ == "__main__":
    main()
