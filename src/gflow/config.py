"""The daemon's settings from gflow.toml (a missing file means defaults)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gflow.core.errors import InvalidInput
from gflow.core.sharing import QUOTA_KEYS, Quota
from gflow.core.slurm import SlurmSettings
from gflow.paths import Paths

EXECUTORS = ("tmux", "process", "slurm")


@dataclass(frozen=True)
class Quotas:
    """[quota.default_user], [quota.users.NAME], [quota.default_project],
    [quota.projects.NAME]: who may run and queue how much (core/sharing.py)."""

    default_user: Quota | None = None
    users: Mapping[str, Quota] = field(default_factory=dict)
    default_project: Quota | None = None
    projects: Mapping[str, Quota] = field(default_factory=dict)

    def of_user(self, name: str) -> Quota | None:
        return self.users.get(name, self.default_user)

    def of_project(self, name: str) -> Quota | None:
        return self.projects.get(name, self.default_project) if name else None

    @property
    def any(self) -> bool:
        return bool(self.default_user or self.users or self.default_project or self.projects)


@dataclass(frozen=True)
class Config:
    """The daemon's settings. A missing file means these defaults."""

    executor: str = "tmux"
    kill_grace: float = 30.0  # seconds between SIGTERM and SIGKILL
    enforce_memory: bool = True  # stop a job whose processes use more RAM than its --mem
    fake_gpus: str = ""  # e.g. "2x24G,1x80G"; empty = real GPUs through NVML
    known_projects: tuple[str, ...] = ()  # [projects]: when set, only these names
    require_project: bool = False  # every job must name a project
    quotas: Quotas = field(default_factory=Quotas)
    fair_share: bool = False  # [fair_share] enabled: within a priority, less used first
    fair_share_half_life: float = 7 * 86400.0  # seconds
    users_may_reserve: bool = False  # [reservations]: users may reserve GPUs for themselves
    max_reservation_gpu_hours: float | None = None  # … up to this many GPU-hours each
    # Who may act on every job and change the daemon (root always may): user names, and
    # "@group" for a group's members.
    admins: tuple[str, ...] = ()
    # System mode: the socket only this group may use (0660); empty = every local user.
    socket_group: str = ""
    # System mode: the interpreter that runs the job's wrapper as its user (stdlib only);
    # empty = the daemon's own, if every user can run it.
    wrapper_python: str = ""
    # [history]: ended jobs (their logs too) forgotten once older than `keep` seconds and/or
    # beyond the newest `keep_jobs`; None = kept until `gctl purge`. gstats' per-day totals
    # stay.
    history_keep: float | None = None
    history_keep_jobs: int | None = None
    web_listen: str = ""  # "127.0.0.1:PORT": the dashboard and /metrics over TCP; empty = off
    web_public: bool = True  # the queue and GPUs read-only without a session
    web_session_idle: float = 12 * 3600.0  # seconds a dashboard session may stay idle
    webhooks: tuple[dict[str, Any], ...] = ()  # [[notifications.webhooks]], checked
    emails: tuple[dict[str, Any], ...] = ()  # [[notifications.emails]], checked
    # [slurm]: with executor = "slurm", where jobs are submitted (daemon/backends/slurm.py)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)


# section -> key -> type: the single list of accepted keys ([quota] is read on its own).
_SCHEMA: dict[str, dict[str, type]] = {
    "daemon": {
        "executor": str,
        "kill_grace": float,
        "enforce_memory": bool,
        "admins": list,
        "socket_group": str,
        "wrapper_python": str,
    },
    "gpu": {"fake": str},
    "projects": {"known_projects": list, "require_project": bool},
    "fair_share": {"enabled": bool, "half_life": str},
    "quota": {},
    "reservations": {"users_may_reserve": bool, "max_gpu_hours": float},
    "history": {"keep": str, "keep_jobs": int},
    "web": {"listen": str, "public": bool, "session_idle": str},
    "notifications": {"webhooks": list, "emails": list},
    "slurm": {"partition": str, "account": str, "qos": str, "extra": list},
}


def load_config(paths: Paths, env: dict[str, str] | None = None) -> Config:
    """Read gflow.toml; a malformed file raises InvalidInput naming the file, line and key."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    if paths.config_file.exists():
        values = _read_toml(paths.config_file)
    daemon = values.get("daemon", {})
    where = f"{paths.config_file}"
    projects = values.get("projects", {})
    known = projects.get("known_projects", [])
    if not all(isinstance(p, str) and p.strip() for p in known):
        line = _line_of(paths.config_file, "known_projects")
        raise InvalidInput(f"{where}:{line}: projects.known_projects must be a list of names")
    fair = values.get("fair_share", {})
    history = values.get("history", {})
    config = Config(
        executor=daemon.get("executor", Config.executor),
        kill_grace=float(daemon.get("kill_grace", Config.kill_grace)),
        enforce_memory=daemon.get("enforce_memory", Config.enforce_memory),
        fake_gpus=env.get("GFLOW_FAKE_GPUS") or values.get("gpu", {}).get("fake", ""),
        known_projects=tuple(p.strip() for p in known),
        require_project=projects.get("require_project", False),
        quotas=_quotas(values.get("quota", {}), paths.config_file),
        fair_share=fair.get("enabled", False),
        fair_share_half_life=_duration(
            fair.get("half_life"), paths.config_file, "fair_share.half_life"
        )
        or Config.fair_share_half_life,
        history_keep=_duration(history.get("keep"), paths.config_file, "history.keep"),
        history_keep_jobs=_count(history.get("keep_jobs"), paths.config_file, "history.keep_jobs"),
        users_may_reserve=values.get("reservations", {}).get("users_may_reserve", False),
        max_reservation_gpu_hours=values.get("reservations", {}).get("max_gpu_hours"),
        admins=tuple(daemon.get("admins", ())),
        socket_group=daemon.get("socket_group", ""),
        wrapper_python=daemon.get("wrapper_python", ""),
        web_listen=values.get("web", {}).get("listen", ""),
        web_public=values.get("web", {}).get("public", True),
        web_session_idle=_duration(
            values.get("web", {}).get("session_idle"), paths.config_file, "web.session_idle"
        )
        or Config.web_session_idle,
        webhooks=tuple(values.get("notifications", {}).get("webhooks", ())),
        emails=tuple(values.get("notifications", {}).get("emails", ())),
        slurm=_slurm(values.get("slurm", {}), paths.config_file),
    )
    for admin in config.admins:
        if not isinstance(admin, str) or not re.fullmatch(r"@?[A-Za-z0-9_.][A-Za-z0-9_.-]*", admin):
            line = _line_of(paths.config_file, "admins")
            raise InvalidInput(
                f"{where}:{line}: daemon.admins: {admin!r} is not a user or @group name",
                hint='e.g. admins = ["alice", "@gpu-admins"]',
            )
    if config.wrapper_python and not config.wrapper_python.startswith("/"):
        line = _line_of(paths.config_file, "wrapper_python")
        raise InvalidInput(
            f"{where}:{line}: daemon.wrapper_python must be an absolute path",
            hint='e.g. wrapper_python = "/usr/bin/python3"',
        )
    if config.executor not in EXECUTORS:
        line = _line_of(paths.config_file, "executor")
        raise InvalidInput(
            f"{where}:{line}: daemon.executor = {config.executor!r} is not an executor",
            hint='use "tmux", "process" or "slurm"',
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


def _quotas(table: dict[str, Any], path: Path) -> Quotas:
    """[quota.default_user] / [quota.users.NAME] / [quota.default_project] /
    [quota.projects.NAME], each of QUOTA_KEYS with a number of 0 or more."""

    def quota(name: str, caps: Any) -> Quota:
        if not isinstance(caps, dict):
            raise InvalidInput(f"{path}:{_line_of(path, name)}: quota.{name} must be a table")
        for key, value in caps.items():
            if key not in QUOTA_KEYS:
                raise InvalidInput(
                    f"{path}:{_line_of(path, key)}: unknown key quota.{name}.{key}",
                    hint=f"known keys: {', '.join(QUOTA_KEYS)}",
                )
            integral = key != "max_gpu_hours_per_day"
            number = isinstance(value, int) if integral else isinstance(value, int | float)
            if isinstance(value, bool) or not number or value < 0:
                raise InvalidInput(
                    f"{path}:{_line_of(path, key)}: quota.{name}.{key} must be "
                    f"{'a whole number' if integral else 'a number'} of 0 or more"
                )
        return Quota(**caps)

    def named(kind: str) -> dict[str, Quota]:
        tables = table.get(kind, {})
        if not isinstance(tables, dict):
            raise InvalidInput(f"{path}:{_line_of(path, kind)}: quota.{kind} must be tables")
        return {name: quota(f"{kind}.{name}", caps) for name, caps in tables.items()}

    unknown = set(table) - {"default_user", "users", "default_project", "projects"}
    if unknown:
        key = sorted(unknown)[0]
        raise InvalidInput(
            f"{path}:{_line_of(path, key)}: unknown key quota.{key}",
            hint="use [quota.default_user], [quota.users.NAME], [quota.default_project], "
            "[quota.projects.NAME]",
        )
    return Quotas(
        default_user=quota("default_user", table["default_user"])
        if "default_user" in table
        else None,
        users=named("users"),
        default_project=quota("default_project", table["default_project"])
        if "default_project" in table
        else None,
        projects=named("projects"),
    )


def _slurm(table: dict[str, Any], path: Path) -> SlurmSettings:
    extra = table.get("extra", [])
    if not all(isinstance(word, str) and word.startswith("-") for word in extra):
        line = _line_of(path, "extra")
        raise InvalidInput(
            f"{path}:{line}: slurm.extra must be a list of sbatch options",
            hint='e.g. extra = ["--constraint=a100", "--nice=10"]',
        )
    return SlurmSettings(
        table.get("partition", ""), table.get("account", ""), table.get("qos", ""), tuple(extra)
    )


def _duration(text: str | None, path: Path, key: str) -> float | None:
    """A time in any of the time-limit forms ("90d", "12:00:00"), in seconds; None if unset."""
    if text is None:
        return None
    from gflow.core.parse import parse_time_limit

    try:
        return float(parse_time_limit(text))
    except InvalidInput as exc:
        line = _line_of(path, key.rpartition(".")[2])
        raise InvalidInput(f"{path}:{line}: {key}: {exc.message}", exc.hint) from None


def _count(value: int | None, path: Path, key: str) -> int | None:
    if value is not None and value < 1:
        line = _line_of(path, key.rpartition(".")[2])
        raise InvalidInput(f"{path}:{line}: {key} must be 1 or more", hint=f"e.g. {key} = 100000")
    return value


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
        if section == "quota":
            continue  # nested tables, checked by _quotas
        for key, value in table.items():
            kind = _SCHEMA[section].get(key)
            if kind is None:
                raise InvalidInput(
                    f"{path}:{_line_of(path, key)}: unknown key {section}.{key}",
                    hint=f"known keys in [{section}]: {', '.join(_SCHEMA[section])}",
                )
            ok = (
                isinstance(value, int | float if kind is float else int)
                and not isinstance(value, bool)
                if kind in (int, float)
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


def web_exposure_warning(listen: str) -> str:
    """What `gflowd status` and the daemon's log say when the dashboard listens beyond
    this machine ('' for a loopback address)."""
    if not listen:
        return ""
    import ipaddress

    host, _ = split_listen(listen)
    if host == "localhost":
        return ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return ""
    except ValueError:
        pass
    return (
        f"the dashboard listens on {listen}, beyond this machine: anyone who can reach it "
        "sees the public queue, and sessions travel unencrypted"
    )
