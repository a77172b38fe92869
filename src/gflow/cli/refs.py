"""Job references on gjob's command line: ids and id lists, or `@` / `@~N` (your last
submission, or the one N before it), which the daemon resolves for the caller."""

from __future__ import annotations

import re

from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.parse import ID_LIST_FORMS, parse_id_list

REF_FORMS = f"{ID_LIST_FORMS}, @ (your last submission) or @~N (the one N before it)"
JobRefs = list[int] | str  # ids, or '@' / '@~N' until the daemon says which jobs


def parse_job_refs(text: str) -> JobRefs:
    """'1,3-5' -> [1, 3, 4, 5]; '@', '@~0' and '@~N' are kept for the daemon."""
    raw = text.strip()
    if raw in ("@", "@~0"):
        return "@"
    if re.fullmatch(r"@~[1-9][0-9]{0,8}", raw):
        return raw
    if raw.startswith("@"):
        raise InvalidInput(f"invalid job reference {text!r}", hint=f"use {REF_FORMS}")
    return parse_id_list(text)


def parse_job_ref(text: str) -> JobRefs:
    """One job: an id, or `@` / `@~N` (the last job of that submission)."""
    refs = parse_job_refs(text)
    if isinstance(refs, list) and len(refs) != 1:
        raise InvalidInput(f"expected one job id, got {text!r}", hint="e.g. 12, @ or @~1")
    return refs


def resolve(client: Client, refs: JobRefs) -> list[int]:
    """The job ids: as given, or every job of the submission `@` / `@~N` names."""
    if isinstance(refs, list):
        return refs
    ids: list[int] = client.request("GET", "/resolve", query={"ref": refs})["ids"]
    return ids


def resolve_one(client: Client, ref: JobRefs) -> int:
    """One job: the id given, or the last job of the submission `@` / `@~N` names (an
    array's last task: the job you submitted last)."""
    return resolve(client, ref)[-1]
