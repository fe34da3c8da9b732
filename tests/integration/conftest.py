"""A real effcap server in a child process, on a free loopback port, with a real SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import randomization_spec
from effcap.protos.v1 import spec_pb2

START_TIMEOUT_S = 60


class ServerProcess:
    """`effcap serve` as a user runs it; restartable on the same data directory."""

    def __init__(self, data_dir: Path, *extra_args: str, environment: dict[str, str] | None = None, cpus: set[int] | None = None) -> None:
        """`environment` replaces the inherited one; `cpus` pins the server (and so its workers) to those CPUs."""
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.environment = environment
        self.cpus = cpus
        self.process: subprocess.Popen | None = None
        self.address = ""

    def start(self) -> ServerProcess:
        ready = self.data_dir / "ready"
        ready.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").open("a")
        logged_before = log.tell()  # a restart appends to the same log
        command = [sys.executable, "-m", "effcap.clients.cli", "serve", "--port", "0", "--data-dir", str(self.data_dir), "--ready-file", str(ready), *self.extra_args]
        pin = (lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus is not None else None
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.environment, preexec_fn=pin)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            assert self.process.poll() is None, f"server exited: {self.log()}"
            assert time.monotonic() < deadline, f"server did not start: {self.log()}"
            time.sleep(0.05)
        self.address = ready.read_text().strip()
        # SERVING comes before the input-validation process has imported torch (seconds on a busy machine); tests
        # wait for it here, as they waited for the server's own import before, so that no first CreateAudit
        # spends its deadline on it.
        while b"input-validation process" not in (self.data_dir / "server.log").read_bytes()[logged_before:]:
            assert self.process.poll() is None, f"server exited: {self.log()}"
            assert time.monotonic() < deadline, f"the input-validation process did not start: {self.log()}"
            time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> None:
        """Signal the server and wait for it; a server that outlives `timeout` is killed and reported."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the server did not stop within {timeout:g} s of signal {sig}: {self.log()}") from None

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def worker_pids(self) -> list[int]:
        """Child processes running an audit (spawned multiprocessing workers)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and "spawn_main" in cmdline:
                pids.append(int(entry.name))
        return pids

    def rss_peak_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path_factory.mktemp("server")).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[EffcapClient]:
    with EffcapClient(server.address) as c:
        yield c


def digits_spec(conditions: str = "true,corrupt(0.5),random", seeds: int = 2, epochs: int = 300, seed: int = 0) -> spec_pb2.AuditSpec:
    """The demo's training set-up: fits random digits labels in about 100 epochs on a 2-core CPU."""
    return spec_pb2.AuditSpec(seed=seed, randomization=randomization_spec(conditions, seeds, 0.1, 1.0, 128, epochs, 1.0))


def wait_for(predicate, timeout: float = 180.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")






QUICK_AUDIT_ARGS = ["--conditions", "true,random", "--seeds", "1", "--epochs", "3", "--lr", "0.1", "--lr-decay", "1", "--no-progress"]


@pytest.fixture(scope="module")
def saved_report(server: ServerProcess, demo_files, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short audit's report, saved as JSON by `effcap audit --format json -o`."""
    path = tmp_path_factory.mktemp("reports") / "report.json"
    command = [sys.executable, "-m", "effcap.clients.cli", "audit", str(demo_files[0]), "--data", str(demo_files[1])]
    result = subprocess.run([*command, "--server", server.address, "--format", "json", "-o", str(path), *QUICK_AUDIT_ARGS], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return path
