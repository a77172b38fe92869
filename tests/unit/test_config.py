"""gflow.config paths and gflow.toml, and fake GPU lists (SPEC §4, §7, §10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gflow.config import Config, Paths, load_config
from gflow.core.errors import InvalidInput
from gflow.resources.gpu import FakeGpuBackend, parse_fake_gpus

# ---- Paths ---------------------------------------------------------------------------------


def test_gflow_home_holds_config_and_state(tmp_path: Path) -> None:
    """GFLOW_HOME=/dir puts gflow.toml, the database, logs and the socket under /dir."""
    home = tmp_path / "gf"
    paths = Paths.from_env({"GFLOW_HOME": str(home), "HOME": str(tmp_path / "nobody")})
    assert paths.config_file == home / "gflow.toml"
    assert paths.state_dir == home
    assert paths.database == home / "gflow.db"
    assert paths.logs_dir == home / "logs"
    assert paths.socket.parent == home


def test_gflow_home_relative_path_is_made_absolute(tmp_path: Path) -> None:
    """A relative GFLOW_HOME is resolved to an absolute directory."""
    paths = Paths.from_env({"GFLOW_HOME": "rel/dir", "HOME": str(tmp_path)})
    assert paths.state_dir.is_absolute()
    assert paths.state_dir.parts[-2:] == ("rel", "dir")


def test_xdg_dirs_are_used_without_gflow_home(tmp_path: Path) -> None:
    """Without GFLOW_HOME, config goes under XDG_CONFIG_HOME and state under XDG_DATA_HOME."""
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    paths = Paths.from_env(env)
    assert paths.config_file == tmp_path / "cfg" / "gflow" / "gflow.toml"
    assert paths.state_dir == tmp_path / "data" / "gflow"


def test_home_dirs_are_used_without_gflow_home_or_xdg(tmp_path: Path) -> None:
    """Without GFLOW_HOME or XDG vars: ~/.config/gflow/gflow.toml and ~/.local/share/gflow."""
    paths = Paths.from_env({"HOME": str(tmp_path)})
    assert paths.config_file == tmp_path / ".config" / "gflow" / "gflow.toml"
    assert paths.state_dir == tmp_path / ".local" / "share" / "gflow"


def test_empty_gflow_home_is_ignored(tmp_path: Path) -> None:
    """GFLOW_HOME set to the empty string falls back to the XDG/HOME layout."""
    paths = Paths.from_env({"GFLOW_HOME": "", "HOME": str(tmp_path)})
    assert paths.state_dir == tmp_path / ".local" / "share" / "gflow"


def test_each_state_dir_gets_its_own_tmux_server(tmp_path: Path) -> None:
    """Two state directories never share a tmux socket, and it lives inside the state
    directory (not in /tmp/tmux-<uid>, which another user can create first)."""
    one = Paths.from_env({"GFLOW_HOME": str(tmp_path / "a")})
    two = Paths.from_env({"GFLOW_HOME": str(tmp_path / "b")})
    assert one.tmux_socket.parent == one.state_dir
    assert one.tmux_socket != two.tmux_socket


def test_too_long_socket_path_is_invalid_input(tmp_path: Path) -> None:
    """A state dir too deep for a Unix socket path is refused with a hint to shorten it."""
    paths = Paths.from_env({"GFLOW_HOME": str(tmp_path / ("d" * 120))})
    with pytest.raises(InvalidInput) as caught:
        paths.check_socket_path()
    assert "GFLOW_HOME" in caught.value.hint


# ---- load_config ---------------------------------------------------------------------------


def paths_with(tmp_path: Path, text: str | None) -> Paths:
    """Paths under tmp_path, with gflow.toml holding `text` (or absent for None)."""
    paths = Paths.from_env({"GFLOW_HOME": str(tmp_path)})
    if text is not None:
        paths.config_file.write_text(text)
    return paths


def assert_names(error: InvalidInput, path: Path, line: int, key: str) -> None:
    """The message names the file, the line (as 'file:N:' or 'line N') and the key."""
    message = error.message
    assert str(path) in message, message
    assert f"{path}:{line}:" in message or re.search(rf"\bline {line}\b", message), message
    assert key in message, message


def test_missing_config_file_gives_defaults(tmp_path: Path) -> None:
    """No gflow.toml is not an error: every setting has its default."""
    assert load_config(paths_with(tmp_path, None), env={}) == Config()
    assert Config() == Config(executor="tmux", kill_grace=30.0, fake_gpus="")


def test_empty_config_file_gives_defaults(tmp_path: Path) -> None:
    """An empty gflow.toml means the defaults too."""
    assert load_config(paths_with(tmp_path, ""), env={}) == Config()


def test_valid_config_file_is_read(tmp_path: Path) -> None:
    """Every known key is read from its section."""
    text = '# my gflow\n[daemon]\nexecutor = "process"\nkill_grace = 5\n\n[gpu]\nfake = "2x24G"\n'
    config = load_config(paths_with(tmp_path, text), env={})
    assert config == Config(executor="process", kill_grace=5.0, fake_gpus="2x24G")


def test_unknown_section_names_file_line_and_section(tmp_path: Path) -> None:
    """An unknown [section] is refused naming the file, its line and its name."""
    paths = paths_with(tmp_path, '[daemon]\nexecutor = "tmux"\n\n[scheduler]\ntick = 1\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 4, "scheduler")


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    """An unknown key in a known section is refused naming the file, line and key."""
    paths = paths_with(tmp_path, '[daemon]\nexecutor = "tmux"\nexecuter = "tmux"\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 3, "executer")
    assert "executor" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('[daemon]\nkill_grace = "x"\n', 2, "kill_grace"),
        ("[daemon]\n\nkill_grace = true\n", 3, "kill_grace"),
        ("[daemon]\nexecutor = 5\n", 2, "executor"),
        ("[gpu]\nfake = 2\n", 2, "fake"),
        ('daemon = "tmux"\n', 1, "daemon"),
    ],
)
def test_wrong_type_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str) -> None:
    """A value of the wrong type is refused naming the file, line and key."""
    paths = paths_with(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, line, key)


def test_bad_executor_names_file_line_and_key(tmp_path: Path) -> None:
    """An executor other than tmux/process is refused naming the file, line and key."""
    paths = paths_with(tmp_path, '# comment\n[daemon]\nexecutor = "docker"\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 3, "executor")
    assert "docker" in caught.value.message
    assert "tmux" in caught.value.hint and "process" in caught.value.hint


def test_out_of_range_kill_grace_names_file_line_and_key(tmp_path: Path) -> None:
    """A negative kill_grace is refused naming the file, line and key."""
    paths = paths_with(tmp_path, "[daemon]\nkill_grace = -1\n")
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 2, "kill_grace")


def test_toml_syntax_error_names_file_line_and_key(tmp_path: Path) -> None:
    """A TOML syntax error (an unquoted string) is refused naming the file, line and key."""
    paths = paths_with(tmp_path, "[daemon]\nkill_grace = 5\nexecutor = tmux\n")
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 3, "executor")


def test_malformed_fake_gpu_list_names_file_line_and_key(tmp_path: Path) -> None:
    """A malformed [gpu] fake value stops config loading naming the file, line and key."""
    paths = paths_with(tmp_path, '[gpu]\nfake = "two GPUs"\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 2, "fake")


def test_gflow_fake_gpus_env_overrides_the_config(tmp_path: Path) -> None:
    """GFLOW_FAKE_GPUS in the environment wins over [gpu] fake."""
    paths = paths_with(tmp_path, '[gpu]\nfake = "2x24G"\n')
    assert load_config(paths, env={"GFLOW_FAKE_GPUS": "1x80G"}).fake_gpus == "1x80G"
    assert load_config(paths, env={}).fake_gpus == "2x24G"
    assert load_config(paths_with(tmp_path / "x", None), env={"GFLOW_FAKE_GPUS": "1x8G"}) == (
        Config(fake_gpus="1x8G")
    )


# ---- fake GPUs -----------------------------------------------------------------------------


def test_parse_fake_gpus_numbers_gpus_and_sizes_them() -> None:
    """'2x24G,1x80G' is three GPUs, indices 0, 1, 2, with 24 GiB, 24 GiB and 80 GiB."""
    gpus = parse_fake_gpus("2x24G,1x80G")
    assert [g.index for g in gpus] == [0, 1, 2]
    assert [g.total_mb for g in gpus] == [24576, 24576, 81920]
    assert all(g.used_mb == 0 and g.processes == () for g in gpus)


def test_parse_fake_gpus_tolerates_spaces_and_capital_x() -> None:
    """' 1X512M , 1 x 1G ' is accepted."""
    assert [g.total_mb for g in parse_fake_gpus(" 1X512M , 1 x 1G ")] == [512, 1024]


def test_fake_gpu_backend_reports_the_parsed_gpus() -> None:
    """FakeGpuBackend.gpus() lists the GPUs from its spec."""
    assert [g.index for g in FakeGpuBackend("3x1G").gpus()] == [0, 1, 2]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "x",
        "2",
        "2x",
        "x24G",
        "0x24G",
        "65x1G",
        "2x24Q",
        "2*24G",
        "2x24G,",
        "2x24G,,1x8G",
        "-1x8G",
        "2x0G",
    ],
)
def test_parse_fake_gpus_rejects_malformed_specs(spec: str) -> None:
    """Malformed fake GPU lists raise InvalidInput."""
    with pytest.raises(InvalidInput):
        parse_fake_gpus(spec)


def test_history_bounds_are_read_in_any_time_form(tmp_path: Path) -> None:
    """[history] keep takes every time-limit form; keep_jobs a count."""
    config = load_config(paths_with(tmp_path, '[history]\nkeep = "90d"\nkeep_jobs = 100000\n'), {})
    assert (config.history_keep, config.history_keep_jobs) == (90 * 86400.0, 100_000)
    config = load_config(paths_with(tmp_path, '[history]\nkeep = "1:30:00"\n'), {})
    assert (config.history_keep, config.history_keep_jobs) == (5400.0, None)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('[history]\nkeep = "forever"\n', 2, "history.keep"),
        ("[history]\nkeep = 90\n", 2, "keep"),
        ("[history]\n\nkeep_jobs = 0\n", 3, "history.keep_jobs"),
        ("[history]\nkeep_jobs = true\n", 2, "keep_jobs"),
        ('[history]\nkeep_jobs = "10"\n', 2, "keep_jobs"),
    ],
)
def test_bad_history_bounds_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    paths = paths_with(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, line, key)


def test_slurm_executor_and_its_settings(tmp_path: Path) -> None:
    """executor = "slurm" with [slurm] partition, account, qos and extra sbatch options."""
    from gflow.core.slurm import SlurmSettings

    text = (
        '[daemon]\nexecutor = "slurm"\n[slurm]\npartition = "gpu"\naccount = "lab"\n'
        'qos = "high"\nextra = ["--constraint=a100", "--nice=5"]\n'
    )
    config = load_config(paths_with(tmp_path, text), env={})
    assert config.executor == "slurm"
    assert config.slurm == SlurmSettings("gpu", "lab", "high", ("--constraint=a100", "--nice=5"))


def test_slurm_extra_must_be_sbatch_options(tmp_path: Path) -> None:
    """extra words that are not options (or not text) name the file, line and key."""
    paths = paths_with(tmp_path, '[slurm]\npartition = "gpu"\nextra = ["constraint=a100"]\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(paths, env={})
    assert_names(caught.value, paths.config_file, 3, "slurm.extra")
