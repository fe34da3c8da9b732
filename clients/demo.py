"""`effcap demo`: the whole product once, end to end, on embedded defaults.

Starts a real server process on a free loopback port, writes an MLP checkpoint and the digits
dataset, uploads both through the client, runs a randomization test (true, corrupt(0.5), random;
2 seeds each) while streaming progress, and returns the report.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from effcap.clients.errors import EffcapError, server_extras_missing
from effcap.clients.progress_view import ProgressView
from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import dataset_ref, randomization_spec
from effcap.protos.v1 import report_pb2, spec_pb2

# Training options unset: the standard preset counts the schedule in SGD steps and probes the learning
# rate (capacity/presets.py), so the defaults a user gets are the ones the demo shows fitting.
DEMO_SPEC = spec_pb2.AuditSpec(
    seed=0,
    randomization=randomization_spec("true,corrupt(0.5),random", 2, None, None, None, None, None),
)
SERVER_START_TIMEOUT_S = 120


def run_demo(work_dir: Path | None, console: Console) -> report_pb2.AuditReport:
    with tempfile.TemporaryDirectory(prefix="effcap-demo-") as scratch:
        root = work_dir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        model_path, data_path = root / "mlp-digits.safetensors", root / "digits.npz"
        console.print("writing the demo checkpoint (MLP 2x512, briefly trained on digits) and the digits dataset", highlight=False)
        try:
            from effcap.capacity.demo_assets import write_demo_checkpoint, write_digits_npz
        except ImportError as error:
            raise server_extras_missing("effcap demo", error) from None

        write_demo_checkpoint(model_path)
        write_digits_npz(data_path)
        with server_process(root / "server", console) as address:
            with EffcapClient(address) as client:
                model, data = client.upload(model_path), client.upload(data_path)
                console.print(f"uploaded model sha256:{model.sha256[:12]} and dataset sha256:{data.sha256[:12]}", highlight=False)
                operation = client.create_audit(model, dataset_ref(str(data_path), data), DEMO_SPEC)
                console.print(f"audit {operation.name}: randomization test, 3 conditions x 2 seeds", highlight=False)
                with ProgressView(console) as view:
                    operation = client.wait(operation.name, on_event=view.on_event)
                return client.report_of(operation)


class server_process:  # noqa: N801 - used as a context manager
    """`effcap serve --port 0 [serve_args]` in a child process; yields its address, stops it on exit.

    `environment` replaces the inherited one (benchmarks compare thread settings with it).
    """

    def __init__(
        self, data_dir: Path, console: Console, serve_args: tuple[str, ...] = (), environment: dict[str, str] | None = None
    ) -> None:
        self._data_dir = data_dir
        self._console = console
        self._serve_args = serve_args
        self._environment = environment
        self._ready = data_dir / "ready"
        self._log = data_dir / "server.log"

    def __enter__(self) -> str:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._ready.unlink(missing_ok=True)
        command = [sys.executable, "-m", "effcap.clients.cli", "serve", "--port", "0", "--data-dir", str(self._data_dir)]
        command += ["--ready-file", str(self._ready), *self._serve_args]
        self._log_handle = self._log.open("w")
        self._process = subprocess.Popen(command, stdout=self._log_handle, stderr=subprocess.STDOUT, env=self._environment)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not self._ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise EffcapError(f"the demo server did not start; see {self._log}:\n{self._log.read_text()[-2000:]}", "UNAVAILABLE")
            time.sleep(0.1)
        address = self._ready.read_text().strip()
        self._console.print(f"server listening on {address} (pid {self._process.pid}, log {self._log})", highlight=False)
        return address

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log_handle.close()
