"""Consoles for the CLI's output: a terminal's own width, and no folding when output goes elsewhere."""

from __future__ import annotations

from typing import IO

from rich.console import Console

# Piped into a file or a CI log there is no width to fit: rich would assume 80 columns and fold rule
# names, metric paths and progress lines mid-word. Tables still size themselves to their content.
NOT_A_TERMINAL_WIDTH = 1000
# Emoji codes stay text: the CLI prints digests, paths and names, and `sha256:abc: ...` would print `sha256🔤 ...`.
EMOJI = False


def output_console(file: IO[str] | None = None, stderr: bool = False) -> Console:
    """A Console on standard output (or `file`, or standard error) that wraps only on a terminal, emoji codes off."""
    console = Console(file=file, stderr=stderr, emoji=EMOJI)
    if console.is_terminal:
        return console
    return Console(file=file, stderr=stderr, width=NOT_A_TERMINAL_WIDTH, emoji=EMOJI)
