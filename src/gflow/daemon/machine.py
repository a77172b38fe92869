"""The machine as the scheduler sees it: usable GPUs, foreign GPU processes, free host RAM."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from gflow.core.errors import InvalidInput, NotFound
from gflow.core.model import GpuInfo, Job
from gflow.core.parse import format_size_mb
from gflow.core.policy import GpuState, Machine, gpu_matches
from gflow.core.spec import JobSpec, Resources
from gflow.resources import host
from gflow.resources.gpu import GpuBackend
from gflow.store import ignored
from gflow.store.db import Store
from gflow.store.ignored import IgnoredProcess

ALLOWED_GPUS = "allowed_gpus"  # settings key: JSON list of indices; absent = all


class MachineView:
    def __init__(self, backend: GpuBackend, store: Store) -> None:
        self.backend = backend
        self.store = store
        saved = store.get_setting(ALLOWED_GPUS)
        self.allowed: frozenset[int] | None = frozenset(json.loads(saved)) if saved else None
        self.ignored = {entry.pid: entry for entry in ignored.load(store)}

    def gpus(self) -> list[GpuInfo]:
        return self.backend.gpus()

    def usable(self, gpus: Sequence[GpuInfo]) -> list[GpuInfo]:
        return [g for g in gpus if self.allowed is None or g.index in self.allowed]

    def set_allowed(self, indices: list[int] | None) -> None:
        """`gctl set-gpus`: which GPUs new jobs may use (running jobs keep theirs)."""
        known = {g.index for g in self.gpus()}
        if indices is not None:
            unknown = sorted(set(indices) - known)
            if unknown:
                raise InvalidInput(
                    f"no GPU {', '.join(map(str, unknown))} on this machine",
                    hint=f"GPUs here: {', '.join(map(str, sorted(known))) or 'none'}",
                )
        self.store.set_setting(ALLOWED_GPUS, None if indices is None else json.dumps(indices))
        self.allowed = None if indices is None else frozenset(indices)

    def ignore(self, pid: int, by: str, now: float) -> None:
        """`gctl ignore-gpu-process PID`: its GPU use no longer bars whole-GPU jobs (its
        memory still counts as used). Remembered across restarts, for that process only."""
        found = host.process_owner_and_start(pid)
        # A pid NVML reports from outside our pid namespace (a container) cannot be looked
        # up; it is still on the GPU, so it can be ignored while it stays so.
        on_a_gpu = any(pid == p for gpu in self.gpus() for p, _ in gpu.processes)
        if found is None and not on_a_gpu:
            raise NotFound(f"no process {pid} on this machine", hint="see ginfo for GPU pids")
        user, started = found if found is not None else ("?", None)
        entry = IgnoredProcess(pid, started, user, by, now)
        ignored.add(self.store, entry)
        self.ignored[pid] = entry

    def unignore(self, pid: int) -> None:
        """`gctl ignore-gpu-process PID --undo`."""
        if not ignored.remove(self.store, pid):
            raise NotFound(
                f"process {pid} is not ignored", hint="gctl ignore-gpu-process lists them"
            )
        self.ignored.pop(pid, None)

    def ignored_list(self) -> list[dict[str, Any]]:
        """The ignored processes, each said to be still alive (the same process) or gone."""
        listed = []
        for entry in self.ignored.values():
            now = host.process_owner_and_start(entry.pid)
            listed.append(
                {
                    "pid": entry.pid,
                    "user": entry.user,
                    "started_at": entry.started_at,
                    "added_by": entry.added_by,
                    "added_at": entry.added_at,
                    "alive": entry.is_process(now[1] if now else None),
                }
            )
        return listed

    def _is_ignored(self, pid: int) -> bool:
        entry = self.ignored.get(pid)
        if entry is None:
            return False
        now = host.process_owner_and_start(pid)
        return entry.is_process(now[1] if now else None)

    def snapshot(self, running: Sequence[Job]) -> Machine:
        """GPUs with what foreign processes use, and the host RAM new jobs can have."""
        ours = {job.pid for job in running if job.pid is not None}
        gpus = tuple(_gpu_state(gpu, ours, self._is_ignored) for gpu in self.usable(self.gpus()))
        # Declared memory a running job has not touched yet is still promised to it.
        unclaimed = sum(
            max(0, job.resources.memory_mb - host.descendants_rss_mb(job.pid))
            for job in running
            if job.resources.memory_mb and job.pid is not None
        )
        return Machine(gpus, host.available_memory_mb() - unclaimed, self.cpus())

    def blocked_gpus(self, running: Sequence[Job]) -> frozenset[int]:
        """GPUs a foreign process (not ignored) bars whole-GPU jobs from."""
        ours = {job.pid for job in running if job.pid is not None}
        return frozenset(
            gpu.index for gpu in self.gpus() if _gpu_state(gpu, ours, self._is_ignored).foreign_pids
        )

    def cpus(self) -> tuple[int, ...]:
        """The cores jobs may be pinned to: those the daemon itself may run on."""
        return tuple(sorted(os.sched_getaffinity(0)))

    def check_feasible(self, specs: Sequence[JobSpec]) -> None:
        """Refuse at submission what this machine could never run (the machine is read once
        per submission: an array of 10,000 alike jobs costs one look)."""
        gpus = self.usable(self.gpus())
        total_ram = host.total_memory_mb()
        cores = len(self.cpus())
        for res in {spec.resources for spec in specs}:
            _check_request(res, gpus, total_ram)
            if res.cpus > cores:
                raise InvalidInput(
                    f"the job asks for {res.cpus} CPUs but {cores} can be used here",
                    hint="lower --cpus-per-task / --ntasks",
                )

    def resolve_gpu_models(self, specs: list[JobSpec]) -> tuple[list[JobSpec], list[str]]:
        """A GPU type no usable GPU has is ignored and the count used (one note says so)."""
        gpus = self.usable(self.gpus())
        notes: list[str] = []
        missing: dict[str, bool] = {}
        for spec in specs:
            model = spec.resources.gpu_model
            if model and model not in missing:
                missing[model] = not any(gpu_matches(model, g.name) for g in gpus)
                if missing[model]:
                    names = ", ".join(sorted({g.name for g in gpus})) or "none"
                    notes.append(f"no GPU of type {model} here ({names}); the type is ignored")
        if not any(missing.values()):
            return specs, notes
        return [
            replace(s, resources=s.resources._replace(gpu_model=""))
            if missing.get(s.resources.gpu_model)
            else s
            for s in specs
        ], notes

    def describe_cpus(self, running: Sequence[Job]) -> dict[str, Any]:
        """ginfo's CPU line: the cores jobs may use and which job is pinned to which."""
        return {
            "cpus": list(self.cpus()),
            "jobs": {str(job.id): list(job.cpu_ids) for job in running if job.cpu_ids},
        }

    def describe(self, running: Sequence[Job]) -> list[dict[str, Any]]:
        """Each GPU for ginfo / gctl show-gpus: memory, our jobs on it, foreign processes."""
        ours = {job.pid for job in running if job.pid is not None}
        described = []
        for gpu in self.gpus():
            state = _gpu_state(gpu, ours, self._is_ignored)
            jobs = [job for job in running if gpu.index in job.gpu_ids]
            promised = sum(j.resources.gpu_memory_mb or 0 for j in jobs if j.resources.shared)
            exclusive = any(not j.resources.shared for j in jobs)
            described.append(
                {
                    **gpu.to_dict(),
                    "allowed": self.allowed is None or gpu.index in self.allowed,
                    "jobs": [job.id for job in jobs],
                    "holders": [_holder(job) for job in jobs],
                    "exclusive": exclusive,
                    "foreign_pids": list(state.foreign_pids),
                    "foreign": [
                        self._foreign(pid, used)
                        for pid, used in gpu.processes
                        if not ours & host.ancestors(pid)
                    ],
                    "foreign_used_mb": state.foreign_used_mb,
                    # A whole-GPU job's GPU has nothing free for anyone else.
                    "free_mb": 0 if exclusive else gpu.total_mb - state.foreign_used_mb - promised,
                }
            )
        return described

    def _foreign(self, pid: int, used_mb: int) -> dict[str, Any]:
        """A process on the GPU that is not one of our jobs: whose, since when, ignored?"""
        found = host.process_owner_and_start(pid)
        return {
            "pid": pid,
            "used_mb": used_mb,
            "user": found[0] if found else None,
            "started_at": found[1] if found else None,
            "ignored": self._is_ignored(pid),
        }


def _holder(job: Job) -> dict[str, Any]:
    """One of our jobs on a GPU: whole or shared, and the memory it declared."""
    res = job.resources
    return {"job": job.id, "shared": res.shared, "declared_mb": res.gpu_memory_mb}


def _gpu_state(
    gpu: GpuInfo, our_wrappers: set[int], is_ignored: Callable[[int], bool] | None = None
) -> GpuState:
    """Split a GPU's processes into ours (descendants of our wrappers) and foreign ones; a
    foreign one an admin ignores still uses its memory but does not bar whole-GPU jobs."""
    ours_used = 0
    foreign: list[int] = []
    for pid, used in gpu.processes:
        if our_wrappers & host.ancestors(pid):
            ours_used += used
        elif is_ignored is None or not is_ignored(pid):
            foreign.append(pid)
    return GpuState(
        gpu.index, gpu.total_mb, max(0, gpu.used_mb - ours_used), tuple(foreign), gpu.name
    )


def _check_request(res: Resources, gpus: Sequence[GpuInfo], total_ram: int) -> None:
    indices = {g.index for g in gpus}
    if res.gpu_model:
        gpus = [g for g in gpus if gpu_matches(res.gpu_model, g.name)]
    if res.gpus > len(gpus):
        raise InvalidInput(
            f"the job asks for {res.gpus} {res.gpu_model + ' ' if res.gpu_model else ''}GPU(s)"
            f" but {len(gpus)} can be used here",
            hint="see ginfo; lower --gpus",
        )
    missing = sorted(set(res.gpu_pin) - indices)
    if missing:
        raise InvalidInput(
            f"no usable GPU {', '.join(map(str, missing))} on this machine",
            hint=f"usable GPUs: {', '.join(map(str, sorted(indices))) or 'none'}",
        )
    largest = max((g.total_mb for g in gpus), default=0)
    if res.gpu_memory_mb and res.gpu_memory_mb > largest:
        raise InvalidInput(
            f"the job asks for {format_size_mb(res.gpu_memory_mb)} of GPU memory; "
            f"the largest GPU here has {format_size_mb(largest)}"
        )
    if res.memory_mb and res.memory_mb > total_ram:
        raise InvalidInput(
            f"the job asks for {format_size_mb(res.memory_mb)} of RAM; "
            f"this machine has {format_size_mb(total_ram)}"
        )
