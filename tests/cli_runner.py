"""Run the console entry point in-process, as a user would from a shell."""

from __future__ import annotations

import sys


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``tomoforge ARGS`` in-process through the console entry point; returns (exit code, stdout, stderr)."""
    from tomoforge import cli

    sys.argv = ["tomoforge", *args]
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
