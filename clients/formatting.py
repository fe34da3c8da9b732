"""Number formats shared by every report renderer, so a number reads the same everywhere."""

from __future__ import annotations

from collections.abc import Callable

from effcap.protos.v1 import report_pb2


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def mean_std(stat: report_pb2.Statistic, fmt: Callable[[float], str] = percent) -> str:
    """"—" without values; the mean alone for one value or no spread; else "mean ± std"."""
    if stat.count == 0:
        return "—"
    return fmt(stat.mean) if stat.count == 1 or stat.std == 0 else f"{fmt(stat.mean)} ± {fmt(stat.std)}"
