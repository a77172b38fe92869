"""The daemon's settings from gflow.toml (a missing file means defaults)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gflow.core.errors import InvalidInput
from gflow.paths import Paths

EXECUTORS = ("tmux", "process")


@dataclass(frozen=True)
class Config:
    """The daemon's settings. A missing file means these defaults."""

    executor: str = "tmux"
    kill_grace: float = 30.0  # seconds between SIGTERM and SIGKILL
    enforce_memory: bool = True  # stop a job whose processes use more RAM than its --mem
    fake_gpus: str = ""  # e.g. "2x24G,1x80G"; empty = real GPUs through NVML
    web_listen: str = ""  # "127.0.0.1:PORT": /metrics (read-only) over TCP; empty = off
    webhooks: tuple[dict[str, Any], ...] = ()  # [[notifications.webhooks]], checked
    emails: tuple[dict[str, Any], ...] = ()  # [[notifications.emails]], checked


# section -> key -> (type, check) ; the single list of accepted keys.
_SCHEMA: dict[str, dict[str, type]] = {
    "daemon": {"executor": str, "kill_grace": float, "enforce_memory": bool},
    "gpu": {"fake": str},
    "web": {"listen": str},
    "notifications": {"webhooks": list, "emails": list},
}


def load_config(paths: Paths, env: dict[str, str] | None = None) -> Config:
    """Read gflow.toml; a malformed file raises InvalidInput naming the file, line and key."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    if paths.config_file.exists():
        values = _read_toml(paths.config_file)
    daemon = values.get("daemon", {})
    config = Config(
        executor=daemon.get("executor", Config.executor),
        kill_grace=float(daemon.get("kill_grace", Config.kill_grace)),
        enforce_memory=daemon.get("enforce_memory", Config.enforce_memory),
        fake_gpus=env.get("GFLOW_FAKE_GPUS") or values.get("gpu", {}).get("fake", ""),
        web_listen=values.get("web", {}).get("listen", ""),
        webhooks=tuple(values.get("notifications", {}).get("webhooks", ())),
        emails=tuple(values.get("notifications", {}).get("emails", ())),
    )
    where = f"{paths.config_file}"
    if config.executor not in EXECUTORS:
        line = _line_of(paths.config_file, "executor")
        raise InvalidInput(
            f"{where}:{line}: daemon.executor = {config.executor!r} is not an executor",
            hint='use "tmux" or "process"',
        )
    if not 0 <= config.kill_grace <= 3600:
        line = _line_of(paths.config_file, "kill_grace")
        raise InvalidInput(f"{where}:{line}: daemon.kill_grace must be 0 to 3600 seconds")
    if config.web_listen:
        try:
            split_listen(config.web_listen)
        except InvalidInput as exc:
            line = _line_of(paths.config_file, "listen")
            raise InvalidInput(f"{where}:{line}: web.listen: {exc.message}", exc.hint) from None
    if config.webhooks or config.emails:
        from gflow.core.notify import check_targets

        try:
            check_targets(config.webhooks, config.emails)
        except InvalidInput as exc:
            line = _line_of(paths.config_file, "notifications")
            raise InvalidInput(f"{where}:{line}: {exc.message}", exc.hint) from None
    if config.fake_gpus:
        from gflow.resources.gpu import parse_fake_gpus

        try:
            parse_fake_gpus(config.fake_gpus)
        except InvalidInput as exc:
            source = (
                "GFLOW_FAKE_GPUS"
                if env.get("GFLOW_FAKE_GPUS")
                else (f"{where}:{_line_of(paths.config_file, 'fake')}: gpu.fake")
            )
            raise InvalidInput(f"{source}: {exc.message}", hint=exc.hint) from None
    return config


def split_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9090' -> ('127.0.0.1', 9090); '[::1]:9090' too."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{text!r} is not HOST:PORT", hint='e.g. listen = "127.0.0.1:9090"')
    return host, int(port)


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        text = path.read_text()
        values = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            _syntax_error(path, text, str(exc)), hint="fix the TOML syntax"
        ) from None
    for section, table in values.items():
        if section not in _SCHEMA or not isinstance(table, dict):
            raise InvalidInput(
                f"{path}:{_line_of(path, section)}: unknown section {section!r}",
                hint=f"known sections: {', '.join(_SCHEMA)}",
            )
        for key, value in table.items():
            kind = _SCHEMA[section].get(key)
            if kind is None:
                raise InvalidInput(
                    f"{path}:{_line_of(path, key)}: unknown key {section}.{key}",
                    hint=f"known keys in [{section}]: {', '.join(_SCHEMA[section])}",
                )
            ok = (
                isinstance(value, int | float) and not isinstance(value, bool)
                if kind is float
                else isinstance(value, kind)
            )
            if not ok:
                raise InvalidInput(
                    f"{path}:{_line_of(path, key)}: {section}.{key} must be a {kind.__name__}"
                )
    return values


def _syntax_error(path: Path, text: str, message: str) -> str:
    """'file:3: Invalid value in key 'executor'' from tomllib's '… (at line 3, column 12)'."""
    m = re.search(r"\(at line (\d+), column \d+\)", message)
    if not m:
        return f"{path}: {message}"
    number = int(m.group(1))
    lines = text.splitlines()
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    key = line.split("=", 1)[0].strip() if "=" in line else line.strip()
    return f"{path}:{number}: {message[: m.start()].strip()} in {key!r}"


def _line_of(path: Path, key: str) -> int | str:
    try:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(rf"\s*(\[\s*)?{re.escape(key)}\b", line):
                return number
    except OSError:
        pass
    return "?"
