"""Finished trial batches' results, on disk under the data directory, keyed by the batch's digest.

A batch's results are a pure function of its key (trial_executor.batch_key), so a stored result is as good
as a rerun: an audit re-queued after a server restart, or retried after its worker died, reads the batches it
already trained instead of training them again. Each file is written whole or not at all (a temporary file
renamed over the final name), so a crash mid-write leaves no half result to trust.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class FileBatchStore:
    """`<root>/<key[:2]>/<key>.json`: the two-letter fan-out keeps directories small over thousands of batches."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, key: str) -> Path:
        return self._root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored results, or None when absent or unreadable (an unreadable file is recomputed, not trusted)."""
        try:
            return json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, results: dict[str, Any]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".json")
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(results, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
