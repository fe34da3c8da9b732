"""The dry-run's estimate against the measured time of the same audit, through the real server.

    python bench/dry_run_estimate.py [--repeats 1]

Starts `effcap serve` on a free loopback port (tests/integration/conftest.py's ServerProcess; one
worker thread with passive waits, as the test suite runs), uploads the demo's MLP 2x512 checkpoint and
digits, and for two audits — the demo's (true, corrupt(0.5), random; 2 seeds) and the README's
randomization example (true, corrupt(0.2), random, gaussian; 3 seeds), both with the standard preset's
defaults — asks EstimateAudit first, then runs the audit (cache skipped) and times it from CreateAudit
to the finished operation. Prints the expected and budget estimates, the measured seconds and their
ratios. The first EstimateAudit measures the device's calibration (its time is printed too).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

for _variable, _value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_variable, _value)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the server helper lives with the tests

from effcap.capacity.demo_assets import write_demo_checkpoint, write_digits_npz  # noqa: E402
from effcap.clients.demo import DEMO_SPEC  # noqa: E402
from effcap.clients.sdk import EffcapClient  # noqa: E402
from effcap.clients.spec_args import randomization_spec  # noqa: E402
from effcap.protos.v1 import spec_pb2  # noqa: E402
from tests.integration.conftest import ServerProcess  # noqa: E402

README_SPEC = spec_pb2.AuditSpec(
    seed=0, randomization=randomization_spec("true,corrupt(0.2),random,gaussian", 3, None, None, None, None, None)
)


def measure(client: EffcapClient, name: str, model, data, spec: spec_pb2.AuditSpec) -> None:
    started = time.perf_counter()
    estimate = client.estimate_audit(model, data, spec)
    estimate_s = time.perf_counter() - started
    started = time.perf_counter()
    operation = client.create_audit(model, data, spec, skip_cache=True)
    report = client.report_of(client.wait(operation.name))
    measured = time.perf_counter() - started
    steps = sum(t.steps_run for c in report.randomization.conditions for t in c.trials)
    print(
        f"{name}: expected {estimate.expected_seconds:.1f} s, at most {estimate.estimated_seconds:.1f} s, "
        f"measured {measured:.1f} s -> measured/expected {measured / estimate.expected_seconds:.2f}, "
        f"measured/at-most {measured / estimate.estimated_seconds:.2f}; budget {estimate.analyses[0].sgd_steps:,} steps, "
        f"run {steps:,} trial steps + probe; estimate answered in {estimate_s:.1f} s",
        flush=True,
    )
    print(f"  {estimate.calibration}", flush=True)
    print(f"  fitted: {[(c.label, c.fitted_fraction) for c in report.randomization.conditions]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="effcap-bench-") as scratch:
        root = Path(scratch)
        write_demo_checkpoint(root / "mlp.safetensors")
        write_digits_npz(root / "digits.npz")
        server = ServerProcess(root / "server").start()
        try:
            with EffcapClient(server.address) as client:
                model = client.upload(root / "mlp.safetensors")
                data = spec_pb2.DatasetRef(artifact=client.upload(root / "digits.npz"))
                for _ in range(args.repeats):
                    measure(client, "demo audit", model, data, DEMO_SPEC)
                    measure(client, "README randomization audit", model, data, README_SPEC)
        finally:
            server.stop()
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
