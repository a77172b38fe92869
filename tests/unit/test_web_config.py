"""[web] keys in gflow.toml: listen, public, session_idle, and the warning off loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gflow.config import Config, Paths, load_config, web_exposure_warning
from gflow.core.errors import InvalidInput


def config_of(tmp_path: Path, text: str) -> Config:
    (tmp_path / "gflow.toml").write_text(text)
    return load_config(Paths.from_env({"GFLOW_HOME": str(tmp_path)}), env={})


def test_web_defaults_and_keys(tmp_path: Path) -> None:
    assert (Config.web_public, Config.web_session_idle) == (True, 12 * 3600.0)
    config = config_of(
        tmp_path, '[web]\nlisten = "127.0.0.1:9090"\npublic = false\nsession_idle = "30m"\n'
    )
    assert (config.web_listen, config.web_public, config.web_session_idle) == (
        "127.0.0.1:9090", False, 1800.0,
    )  # fmt: skip


def test_a_bad_session_idle_names_the_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        config_of(tmp_path, '[web]\nlisten = "127.0.0.1:9090"\nsession_idle = "forever"\n')
    assert "gflow.toml:3: web.session_idle: invalid time 'forever'" in raised.value.message


@pytest.mark.parametrize(
    ("listen", "warned"),
    [("127.0.0.1:9090", False), ("localhost:9090", False), ("[::1]:9090", False),
     ("0.0.0.0:9090", True), ("192.168.1.5:9090", True), ("", False)],
)  # fmt: skip
def test_only_a_loopback_listener_goes_unwarned(listen: str, warned: bool) -> None:
    assert bool(web_exposure_warning(listen)) is warned
