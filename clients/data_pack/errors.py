"""The one error a pack raises for bad input: the file at fault, what is wrong, and a reason code."""

from __future__ import annotations

from pathlib import Path

from effcap.clients.errors import EffcapError


class PackError(EffcapError):
    """A source that cannot be packed; the CLI prints it and exits 2 (never a traceback).

    `reason` is an UPPER_SNAKE cause (e.g. IDX_BAD_MAGIC) shown in brackets so scripts and tests can
    tell errors apart; the message starts with the file or folder at fault.
    """

    def __init__(self, where: Path | str, message: str, reason: str) -> None:
        super().__init__(f"{where}: {message} [{reason}]", "INVALID_ARGUMENT", reason, str(where))
