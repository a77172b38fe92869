"""Job dependencies: Slurm's kinds (afterok, afterany, afternotok), all/any, and the verdict.

Stdlib-light (no dataclasses, no typing): `gbatch` parses dependency flags with this module.
"""

from __future__ import annotations

import re
from enum import StrEnum

from gflow.core.errors import InvalidInput
from gflow.core.parse import DEPENDENCY_FORMS, MAX_DEPENDENCIES, parse_dependency_refs
from gflow.core.states import JobState


class DependencyKind(StrEnum):
    AFTER_OK = "afterok"  # the parent Finished
    AFTER_ANY = "afterany"  # the parent ended, however
    AFTER_NOT_OK = "afternotok"  # the parent Failed, was Cancelled or timed out


class DependencyMode(StrEnum):
    ALL = "all"
    ANY = "any"


class Dependency:
    """One reference as the user wrote it; the daemon turns it into job ids.

    `@` / `@~N` stand for every job of that submission. `whole_array`: Slurm's forms
    (`afterok:133`) name an array by its id (its first job's, as `SLURM_ARRAY_JOB_ID`), so
    there the id of an array's or sweep's first job stands for all of its jobs; gflow's
    bare ids (`--depends-on 133`) name one job.

    A plain class, not a typing.NamedTuple: gbatch imports this module on its start path,
    and typing costs ~3 ms there. Compared and hashed by its fields; never changed.
    """

    __slots__ = ("job", "kind", "whole_array")

    def __init__(
        self,
        job: int | str,
        kind: DependencyKind = DependencyKind.AFTER_OK,
        whole_array: bool = False,
    ) -> None:
        self.job = job  # an id, or '@' / '@~N' until the daemon resolves it
        self.kind = kind
        self.whole_array = whole_array

    def _fields(self) -> tuple[int | str, DependencyKind, bool]:
        return self.job, self.kind, self.whole_array

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dependency) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Dependency({self.job!r}, {self.kind!r}, whole_array={self.whole_array!r})"

    def to_dict(self) -> dict[str, int | str | bool]:
        """The API's shape: {"job": 12, "kind": "afterok"} (+ "array": true when set)."""
        shape: dict[str, int | str | bool] = {"job": self.job, "kind": self.kind.value}
        if self.whole_array:
            shape["array"] = True
        return shape


class Verdict(StrEnum):
    READY = "ready"
    WAITING = "waiting"
    IMPOSSIBLE = "impossible"


SLURM_FORMS = (
    "afterok:ID[:ID…] (an ID may be a range, 5-9, or an array's id: all its tasks), "
    "afterany:…, afternotok:…, joined by ',' (all) or '?' (any)"
)


def parse_slurm_dependency(text: str) -> tuple[list[Dependency], DependencyMode]:
    """'afterok:1:2,afterany:3' -> all of them; 'afterok:1?afterok:2' -> any of them.

    A bare id list ('3', '1,2', '@') means afterok on each, as gflow's --depends-on.
    """
    raw = text.strip()
    if "," in raw and "?" in raw:
        raise InvalidInput(
            f"invalid dependency {text!r}: mix of ',' and '?'", hint=f"use {SLURM_FORMS}"
        )
    mode = DependencyMode.ANY if "?" in raw else DependencyMode.ALL
    deps: list[Dependency] = []
    for part in re.split(r"[,?]", raw):
        kind_text, colon, ids = part.strip().partition(":")
        if not colon:
            deps += [Dependency(ref) for ref in parse_dependency_refs(kind_text)]
            continue
        try:
            kind = DependencyKind(kind_text.lower())
        except ValueError:
            raise InvalidInput(
                f"invalid dependency type {kind_text!r} in {text!r}",
                hint=f"use {SLURM_FORMS}, or {DEPENDENCY_FORMS}",
            ) from None
        for ref_text in ids.split(":"):
            deps += [
                Dependency(ref, kind, whole_array=isinstance(ref, int))
                for ref in parse_dependency_refs(ref_text)
            ]
        if len(deps) > MAX_DEPENDENCIES:
            raise InvalidInput(f"more than {MAX_DEPENDENCIES} dependencies in {text[:40]!r}…")
    return list(dict.fromkeys(deps)), mode


def _one(dep_kind: DependencyKind, state: JobState | None) -> Verdict:
    if state is None or not state.is_ended:
        return Verdict.WAITING
    ok = state is JobState.FINISHED
    if dep_kind is DependencyKind.AFTER_OK:
        return Verdict.READY if ok else Verdict.IMPOSSIBLE
    if dep_kind is DependencyKind.AFTER_NOT_OK:
        return Verdict.IMPOSSIBLE if ok else Verdict.READY
    return Verdict.READY


def dependency_verdict(
    deps: tuple[tuple[int, DependencyKind], ...],
    mode: DependencyMode,
    states: dict[int, JobState],
) -> tuple[Verdict, int | None]:
    """Ready, still waiting, or impossible (with the parent that made it so)."""
    if not deps:
        return Verdict.READY, None
    verdicts = [(_one(kind, states.get(job_id)), job_id) for job_id, kind in deps]
    if mode is DependencyMode.ALL:
        for verdict, job_id in verdicts:
            if verdict is Verdict.IMPOSSIBLE:
                return Verdict.IMPOSSIBLE, job_id
        done = all(v is Verdict.READY for v, _ in verdicts)
        return (Verdict.READY if done else Verdict.WAITING), None
    if any(v is Verdict.READY for v, _ in verdicts):
        return Verdict.READY, None
    if all(v is Verdict.IMPOSSIBLE for v, _ in verdicts):
        return Verdict.IMPOSSIBLE, verdicts[-1][1]
    return Verdict.WAITING, None
