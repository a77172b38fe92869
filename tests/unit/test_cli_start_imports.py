"""The light CLIs' start path stays light: building the parser (`--version`) imports none of
the modules that would cost a cold start milliseconds each (docs/architecture.md, "The CLI's
start path"). A fresh interpreter per command: this process has imported everything."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = frozenset(
    {
        "typing",  # ~3 ms: annotation-only imports sit under TYPE_CHECKING
        "shutil",  # argparse's default help width; common.HelpFormatter asks os
        "dataclasses",
        "datetime",
        "statistics",
        "socket",  # the client uses _socket
        "http.client",
        "email",
        "ssl",
        "subprocess",
        "threading",
        "logging",
        "asyncio",
        "aiohttp",
    }
)

SHOW_IMPORTS = """
import sys
from gflow.cli.{command} import main
try:
    main(["--version"])
except SystemExit:
    pass
print(" ".join(sys.modules))
"""


# Every CLI but gflowd, which starts the daemon (subprocess, the config) and may.
COMMANDS = ["gqueue", "gbatch", "gcancel", "gjob", "gctl", "gstats", "ginfo", "grun", "taskflow"]


@pytest.mark.parametrize("command", COMMANDS)
def test_start_path_imports_nothing_heavy(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_IMPORTS.format(command=command)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = set(done.stdout.split())
    assert f"gflow.cli.{command}" in imported
    assert sorted(HEAVY & imported) == []
