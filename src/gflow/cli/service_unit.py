"""`gflowd service install [--system]`: write a systemd unit and say how to enable it.

Nothing is enabled or started here: the line printed does that, when the admin (or the
user) chooses. The system unit delegates cgroups to gflowd (`Delegate=yes`, for per-job
limits) and stops only the daemon, never the jobs (`KillMode=process`): jobs outlive a
restart and are re-adopted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gflow.cli.common import EXIT_OK
from gflow.core.errors import Forbidden
from gflow.paths import system_root

UNIT_NAME = "gflowd.service"


def unit_text(system: bool, env: dict[str, str]) -> str:
    args = " --system" if system else ""
    lines = [
        "[Unit]",
        "Description=gflow job scheduler daemon" + (" (shared, system mode)" if system else ""),
        *(["After=network.target"] if system else []),
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={sys.executable} -m gflow.daemon{args}",
        "Restart=on-failure",
        # Stop the daemon only: running jobs keep running and are re-adopted at its restart.
        "KillMode=process",
    ]
    if system:
        lines += ["Delegate=yes", "RuntimeDirectory=gflow", "RuntimeDirectoryPreserve=yes"]
    for name in ("GFLOW_HOME",) if not system else ():
        if env.get(name):
            lines.append(f"Environment={name}={env[name]}")
    lines += [
        "",
        "[Install]",
        "WantedBy=multi-user.target" if system else "WantedBy=default.target",
    ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def unit_path(system: bool, env: dict[str, str]) -> Path:
    if system:
        return system_root(env) / "etc" / "systemd" / "system" / UNIT_NAME
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", ""), ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def install(system: bool) -> int:
    env = dict(os.environ)
    if system and os.geteuid() != 0:
        raise Forbidden(
            "only root can install the system unit", hint="sudo gflowd service install --system"
        )
    path = unit_path(system, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(unit_text(system, env))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    print(f"wrote {path}")
    ctl = "systemctl" if system else "systemctl --user"
    print(f"enable and start it with: {ctl} daemon-reload && {ctl} enable --now {UNIT_NAME}")
    return EXIT_OK
