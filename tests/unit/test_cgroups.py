"""resources/cgroups.py on a fake cgroup tree: limits written, OOM counts read, and the
wrapper's name for its job's cgroup (no real cgroup is touched)."""

from __future__ import annotations

from pathlib import Path

from gflow.resources.cgroups import CgroupMemory, parse_cgroups


def test_v1_limit_and_oom_count(tmp_path: Path) -> None:
    memory = CgroupMemory(1, tmp_path, "/ours/gflow-x")
    job = memory.path(7)
    job.mkdir()
    (job / "memory.limit_in_bytes").write_text("")
    (job / "cgroup.procs").write_text("")
    memory.create(7, 100)
    assert (job / "memory.limit_in_bytes").read_text() == str(100 * 1024 * 1024)
    memory.add(7, 4242)
    assert (job / "cgroup.procs").read_text() == "4242"
    (job / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not memory.oom_killed(7)
    (job / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert memory.oom_killed(7)
    assert memory.member_name(7) == "/ours/gflow-x/job-7"
    assert memory.describe() == "cgroup v1 memory.limit_in_bytes"


def test_v2_limit_and_oom_count(tmp_path: Path) -> None:
    memory = CgroupMemory(2, tmp_path, "/ours/gflow-x")
    job = memory.path(3)
    job.mkdir()
    (job / "memory.max").write_text("")
    memory.create(3, 2048)
    assert (job / "memory.max").read_text() == str(2048 * 1024 * 1024)
    (job / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    assert memory.oom_killed(3)
    assert memory.describe() == "cgroup v2 memory.max"
    memory.remove(3)  # not empty (the fake files): kept, and no error
    assert job.exists()


def test_proc_cgroup_is_read_for_both_hierarchies() -> None:
    text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/\n"
    assert parse_cgroups(text) == {
        "name=systemd": "/", "memory": "/process_api/abc", "cpu": "/x", "cpuacct": "/x", "": "/",
    }  # fmt: skip
