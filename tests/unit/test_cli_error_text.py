"""The CLI prints an error's text as written: no rich emoji codes (`sha256:abc:` is a digest, not 🔤)."""

from __future__ import annotations

from effcap.clients.cli import main


def test_an_error_naming_a_digest_prints_it_as_written(capsys, tmp_path):
    source = f"{tmp_path}/sha256:abc"
    assert main(["report", source]) == 2
    error = capsys.readouterr().err
    assert f"{source}: no such file" in error, error
    assert "🔤" not in error
