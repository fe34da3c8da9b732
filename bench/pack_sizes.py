"""Sizes and times of `effcap data pack` on full-size CIFAR-10 and MNIST shapes, and the server's load of them.

    python bench/pack_sizes.py

The sources are synthetic (random pixels in the real record layouts: 50,000 + 10,000 CIFAR-10 binary
records, 60,000 + 10,000 gzipped MNIST IDX images), since nothing is downloaded here. Each is packed
through the CLI in a child process (its peak RSS measured), then loaded by the server's loader (peak
RSS again). Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RNG = np.random.default_rng(0)


def write_cifar10(root: Path) -> None:
    root.mkdir()
    for name, count in [*((f"data_batch_{i}.bin", 10_000) for i in range(1, 6)), ("test_batch.bin", 10_000)]:
        labels = RNG.integers(0, 10, (count, 1), dtype=np.uint8)
        pixels = RNG.integers(0, 256, (count, 3072), dtype=np.uint8)
        (root / name).write_bytes(np.concatenate([labels, pixels], axis=1).tobytes())


def write_mnist(root: Path) -> None:
    root.mkdir()
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = RNG.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, count, dtype=np.uint8)
        header = struct.pack(">BBBBIII", 0, 0, 8, 3, count, 28, 28)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes(), 1))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, count) + labels.tobytes(), 1)
        )


def peak_rss_of(code: str) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of a Python child running `code` (the child reports its own peak)."""
    report = "; import resource; print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + report], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = next(line for line in done.stdout.splitlines() if line.startswith("PEAK "))
    return seconds, int(peak.split()[1]) * 1024


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, write, values in (("CIFAR-10", write_cifar10, 60_000 * 3072), ("MNIST", write_mnist, 70_000 * 784)):
            source, packed = root / name, root / f"{name}.safetensors"
            write(source)
            pack = (
                f"from effcap.clients.cli import main; main(['data', 'pack', {str(source)!r}, '-o', {str(packed)!r}])"
            )
            pack_seconds, pack_rss = peak_rss_of(pack)
            load = (
                f"from effcap.capacity.data.datasets import load_dataset_file; load_dataset_file({str(packed)!r}, 'x')"
            )
            load_seconds, load_rss = peak_rss_of(load)
            rows.append((name, packed.stat().st_size, 4 * values, pack_seconds, pack_rss, load_seconds, load_rss))
    print("| dataset | packed bytes | as float32 | pack s | pack peak RSS | server load s | load peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, size, floats, pack_s, pack_rss, load_s, load_rss in rows:
        mib = lambda n: f"{n / 2**20:,.0f} MiB"  # noqa: E731
        print(f"| {name} | {size:,} | {floats:,} | {pack_s:.1f} | {mib(pack_rss)} | {load_s:.1f} | {mib(load_rss)} |")

if __name__ == "__main__":
    main()
