"""The API survives bad input: every route of daemon/app.py, fuzzed with hypothesis.

One real daemon (two fake GPUs) serves the whole module. Requests are raw HTTP over its
Unix socket, so a body can be anything at all: malformed or deeply nested JSON, non-JSON
bytes, wrong types, huge numbers (past 2**63, inf, nan, 1e308), unicode (NUL, lone
surrogates, RTL marks, very long strings), missing and extra fields, wrong methods, bad
path ids and bad query strings. For every case: the status is never 5xx, a 4xx answer is
JSON `{"error": {"code", "message", "hint"}}`, the daemon is still alive, and a refused
request changed nothing (the full job listing is the same). At the end `health` answers
and a normal submission runs.

Reproduce: `pytest tests/reliability/test_api_fuzz.py -s` (derandomized: the same cases
every run; the summary line gives cases run and 5xx seen).
"""

from __future__ import annotations

import json
import math
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gflow.client import parse_response
from tests.helpers import Gflow, wait_for

SETTINGS = settings(
    derandomize=True,  # the same cases every run: a failure is reproducible as is
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STATS: Counter[str] = Counter()  # cases run, by status class: the figure for the report

API = "/api/v1"
# Every route of app.py but shutdown (one explicit test at the end) and the event stream:
# method, path template.
ROUTES = [
    ("GET", "/health"),
    ("GET", "/status"),
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("PATCH", "/jobs/{id}"),
    ("POST", "/jobs/{id}/redo"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/jobs/{id}/hold"),
    ("POST", "/jobs/{id}/release"),
    ("POST", "/jobs/{id}/group-limit"),
    ("GET", "/gpus"),
    ("POST", "/gpus"),
    ("POST", "/purge"),
    ("GET", "/resolve"),
    ("GET", "/gpus/ignored"),
    ("POST", "/gpus/ignored"),
    ("POST", "/jobs/cancel"),
    ("GET", "/quota"),
    ("GET", "/fairshare"),
    ("GET", "/reservations"),
    ("POST", "/reservations"),
    ("GET", "/reservations/{id}"),
    ("POST", "/reservations/{id}/cancel"),
    ("GET", "/events/history"),
    ("GET", "/stats"),
    ("POST", "/notify/test"),  # no targets configured here: always refused, nothing changes
    ("GET", "/stats/timeline"),
    ("POST", "/web/token"),  # no [web] listen here: always refused, nothing changes
]
# GET /events is a stream that never ends by itself: tests/integration/test_event_stream.py
# checks its bad queries.
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
BAD_IDS = [
    "-1", "0", "99999999999999999999", "abc", "1.5", "1e3", "+1", "%201", "0x10",
    "9007199254740993",
    "%00", "%ff", "%EF%BC%91",  # fullwidth 1
    "%D9%A3",  # arabic-indic 3
    "1,2", "1-3", "@", "%F0%9F%98%80", "x" * 3000,
]  # fmt: skip

# ---- values -------------------------------------------------------------------------------

HUGE_INTS = [2**63, 2**64, -(2**63) - 1, 10**30, -(10**30), 2**53 + 1, 2**40]
ODD_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -1e308, 5e-324, -0.0, 1.5]
ODD_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "a\udfffb", "\udc80", "\u202e", "\u200f", "\u202eabc",
    "\n", "x" * 100_000, "é" * 10_000, "\U0001f600", "\ufeff", "%00", "NaN", "null", "-1",
]  # fmt: skip

odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(HUGE_INTS),
    st.integers(),
    st.sampled_from(ODD_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_TEXT),
    st.text(max_size=20),
)
json_values = st.recursive(
    odd_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)

MALFORMED_BODIES = [
    b"",
    b"{",
    b'{"jobs": [',
    b"[" * 100_000,
    b'{"a":' * 50_000,
    b"\xff\xfe\x00",
    b"\xef\xbb\xbf{}",  # a BOM
    b'{"a": 1}{"b": 2}',
    b"1" * 5000,  # past Python's int-from-string digit limit
    b"1e99999",
    b"-",
    b"NaN",
    b"nul",
    b'"\\ud800"',
    b'{"jobs": "\\u0000"}',
    b"\x00" * 100,
    b"<xml/>",
    b"jobs=1",
    b"{'jobs': []}",
    b'{"jobs": [] /* comment */}',
]


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: NaN / Infinity literals and escaped lone surrogates kept."""
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    json_values.map(dumps),
    st.sampled_from(MALFORMED_BODIES),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def quote(text: str) -> str:
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
    return "".join(
        chr(b) if b in safe else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass")
    )


# ---- the daemon, and one request --------------------------------------------------------


class Api:
    """One daemon, raw HTTP requests to it, and the checks every answer must pass."""

    def __init__(self, gflow: Gflow) -> None:
        self.gflow = gflow
        self.pid = gflow.daemon_pid()
        self.fixtures: dict[str, int] = {}
        self.snapshot: list[dict[str, Any]] = []

    def raw(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        try:
            sock.connect(str(self.gflow.paths.socket))
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        finally:
            sock.close()
        data = b"".join(chunks)
        assert data, f"the daemon closed the connection without an answer to {request[:200]!r}"
        status, body = parse_response(data)
        head = data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(b":") for h in head)}
        return status, headers, body

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        query: str = "",
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        target = API + path + (f"?{query}" if query else "")
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: gflowd\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status, headers, data = self.raw(request)
        return status, self.check(method, target, body, status, headers, data)

    def check(
        self,
        method: str,
        target: str,
        body: bytes,
        status: int,
        headers: dict[bytes, bytes],
        data: bytes,
    ) -> Any:
        """Never 5xx; 4xx is a JSON error; the daemon lives. Returns the decoded answer."""
        STATS["cases"] += 1
        STATS[f"{status // 100}xx"] += 1
        case = f"{method} {target[:300]} body={body[:300]!r}"
        assert status < 500, f"{status} for {case}: {data[:500]!r}"
        assert self.alive(), f"the daemon died on {case}"
        if method == "HEAD":
            return None
        assert headers.get(b"content-type", b"").startswith(b"application/json"), (case, headers)
        decoded = json.loads(data)
        if status >= 400:
            error = decoded.get("error") if isinstance(decoded, dict) else None
            assert isinstance(error, dict), (case, decoded)
            assert isinstance(error.get("code"), str) and error["code"], (case, decoded)
            assert isinstance(error.get("message"), str) and error["message"], (case, decoded)
            assert isinstance(error.get("hint"), str), (case, decoded)
        return decoded

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def jobs(self) -> list[dict[str, Any]]:
        status, answer = self.send("GET", "/jobs", query="all=1&user=all")
        assert status == 200
        jobs: list[dict[str, Any]] = answer["jobs"]
        return jobs

    def expect_refused(self, method: str, path: str, body: bytes = b"", query: str = "") -> None:
        """A 4xx that changed nothing at all."""
        status, answer = self.send(method, path, body, query)
        assert 400 <= status < 500, f"{status} for {method} {path} {query} {body[:300]!r}: {answer}"
        assert self.jobs() == self.snapshot, f"{method} {path} {body[:300]!r} changed the jobs"

    def tolerate(self, method: str, path: str, body: bytes = b"", query: str = "") -> int:
        """Any answer but 5xx; a 4xx changed nothing; after a 2xx the new state is the norm."""
        status, _ = self.send(method, path, body, query)
        if status >= 400:
            assert self.jobs() == self.snapshot, f"refused {method} {path} {body!r} changed jobs"
        else:
            self.snapshot = self.jobs()
        return status


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    gflow = Gflow(fake_gpus="2x24G")
    try:
        gflow.start()
        api = Api(gflow)
        ended = gflow.submit("true")
        gflow.wait_state(ended, "Finished")
        held = gflow.submit("--hold", "true")
        queued = gflow.submit("--depends-on", str(held), "true")  # waits on the held one
        group = gflow.submit("--hold", "--max-concurrent", "2", "true")
        api.fixtures = {"ended": ended, "held": held, "queued": queued, "group": group}
        api.snapshot = api.jobs()
        yield api
    finally:
        gflow.cleanup()


# ---- targeted: values each route must refuse (400 and nothing changed) -------------------

BAD_SPEC_FIELDS: dict[str, list[Any]] = {
    "command": [1, None, [], {}, "", "   ", "x\x00", "\ud800", "a\udfffb", "x" * 1_000_001],
    "script": [1, "relative.sh", "/a\x00", "/\ud800"],
    "script_body": [1, "\x00", "\ud800", "x" * 1_000_001],
    "workdir": ["", "relative", 1, None, "/a\x00b", "/\ud800", []],
    "env": [[], "A=b", {"A": 1}, {"A": None}, {"A=B": "x"}, {"": "x"}, {"A\x00": "x"},
            {"A": "\x00"}, {"A\udc00": "b"}, {"A": "\ud800"}],
    "name": [1, "x" * 201, "\n", "\x00", "\ud800", "\u202e"],
    "priority": [-1, 256, *HUGE_INTS, *ODD_FLOATS, "10", True, None],
    "gpus": [-1, 1025, 3, 2**64, 1.5, math.nan, "1", True],
    "shared": ["yes", 1, True],  # True without --gpus and --gpu-memory
    "gpu_memory_mb": [0, -5, 2**63, 1.0, math.inf, 1024],  # 1024 without gpus
    "gpu_pin": ["0", [0, 0], [-1], [True], [1024], [2**70], [1.5], {}, [5]],
    "memory_mb": [-1, 2**63, 1e308, math.nan, 1024**3, "5G"],  # 0: all of it (--mem=0)
    "cpus": [-1, 4097, 2**63, 1.5, "2", True, 99],  # 99: more cores than the machine
    "exclusive": ["yes", 1, None],
    "gpu_model": [1, "a 100", "x" * 65, "\ud800", "a/b"],
    "batch": ["x", [], {"nope": 1}, {"args": "x"}, {"args": [1]}, {"output": "a\nb"},
              {"signal": [0, 1, False]}, {"signal": [10, -1, False]}, {"signal": "USR1"},
              {"ntasks": 0}, {"cpus_per_task": -1}, {"array": [1, 2]}, {"append": 1},
              {"args": ["\x00"]}],
    "singleton": ["yes", 1, None],
    "time_limit": [0, -1, 2**63, 1e308, math.nan, math.inf, "1h", True, 10**10],
    "dependencies": [
        "1", [1], [{"job": 0}], [{"job": -1}], [{"job": 2**63}], [{"job": "abc"}],
        [{"job": "@~"}], [{"job": 1, "array": "yes"}], [{"job": 4242}],
        [{"job": 1, "kind": "bogus"}],
        [{"job": 1, "extra": 1}], [{"kind": "afterok"}], [{"job": True}], [{"job": 1.0}],
        [{"job": "@~99999999999999999999"}], [{"job": "\ud800"}], [{"job": None}],
    ],
    "dependency_mode": ["some", 1, "", None],
    "auto_cancel": ["no", 0, None],
    "begin_at": [-1, 2**40, 2**64, 1e308, math.nan, math.inf, "now", True],
    "max_concurrent": [0, -1, 10**6 + 1, 2**63, 1.5, "2"],
    "conda_env": ["a b", "\x00", "/x\ny", "x" * 201, 1, "\ud800", "../x"],
    "max_retries": [-1, 101, 2**63, 1.5, "1"],
    "retry_on_timeout": ["yes", 1],
    "project": ["a,b", "x" * 65, "a\nb", 1, "\ud800"],
    "hold": ["true", 1, None],
    "keep_session": ["x", 0],
    "array_task_id": [-1, 2**54, 1.5, "1"],
}  # fmt: skip


def base_spec(api: Api) -> dict[str, Any]:
    return {"command": "true", "workdir": str(api.gflow.workdir), "env": {"A": "b"}, "hold": True}


@st.composite
def bad_submissions(draw: st.DrawFn, api: Api) -> bytes:
    """A submission with exactly one thing wrong (so it must be refused as a whole)."""
    spec = base_spec(api)
    kind = draw(st.sampled_from(["field", "unknown", "missing", "wrapper", "one_bad_of_two"]))
    if kind in ("field", "one_bad_of_two"):
        key = draw(st.sampled_from(sorted(BAD_SPEC_FIELDS)))
        spec[key] = draw(st.sampled_from(BAD_SPEC_FIELDS[key]))
        if key == "script":  # one of command or script
            spec.pop("command")
        jobs = [base_spec(api), spec] if kind == "one_bad_of_two" else [spec]
        return dumps({"jobs": jobs})
    if kind == "unknown":
        name = draw(st.text(min_size=1, max_size=12) | st.sampled_from(["id", "state", "uid"]))
        spec[name if name not in BAD_SPEC_FIELDS else name + "_"] = draw(json_values)
        return dumps({"jobs": [spec]})
    if kind == "missing":
        spec.pop(draw(st.sampled_from(["command", "workdir"])))
        return dumps({"jobs": [spec]})
    body: Any = draw(
        st.sampled_from(
            [
                [spec],
                {"job": [spec]},
                {"jobs": spec},
                {"jobs": []},
                {"jobs": [spec], "extra": 1},
                {"jobs": [[spec]]},
                {"jobs": [None]},
                {"jobs": None},
                {},
            ]
        )
    )
    return dumps(body)


def test_bad_submissions_are_refused_whole(api: Api) -> None:
    @SETTINGS
    @given(body=bad_submissions(api))
    def case(body: bytes) -> None:
        api.expect_refused("POST", "/jobs", body)

    case()


def test_every_listed_bad_field_value_is_refused(api: Api) -> None:
    """Not left to chance: each value of the table, once."""
    for key, values in BAD_SPEC_FIELDS.items():
        for value in values:
            spec = {**base_spec(api), key: value}
            if key == "script":
                spec.pop("command")
            api.expect_refused("POST", "/jobs", dumps({"jobs": [spec]}))


UPDATABLE = {
    "gpus", "shared", "gpu_memory_mb", "gpu_pin", "memory_mb", "time_limit", "priority",
    "dependencies", "dependency_mode", "auto_cancel", "conda_env", "max_retries",
}  # fmt: skip


@st.composite
def bad_updates(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "not_updatable", "unknown", "shape"]))
    if kind == "field":
        key = draw(st.sampled_from(sorted(UPDATABLE)))
        return dumps({key: draw(st.sampled_from(BAD_SPEC_FIELDS[key]))})
    if kind == "not_updatable":
        key = draw(st.sampled_from(sorted(set(BAD_SPEC_FIELDS) - UPDATABLE)))
        return dumps({key: draw(json_values)})
    if kind == "unknown":
        return dumps({"priority": 5, draw(st.text(min_size=1, max_size=8)) + "?": 1})
    return draw(st.sampled_from([dumps([]), dumps({}), dumps(None), dumps(5), *MALFORMED_BODIES]))


def test_bad_updates_are_refused(api: Api) -> None:
    held = api.fixtures["held"]

    @SETTINGS
    @given(body=bad_updates())
    def case(body: bytes) -> None:
        api.expect_refused("PATCH", f"/jobs/{held}", body)

    case()
    # A job may not depend on itself (a cycle).
    api.expect_refused("PATCH", f"/jobs/{held}", dumps({"dependencies": [{"job": held}]}))


BAD_TIMES = [-1, 2**40, 2**64, 1e308, math.nan, math.inf, -math.inf, "now", "1", True, [], {}]
SMALL_BODIES: dict[str, tuple[str, str, list[bytes]]] = {
    # route: (path fixture, field, bodies that must be refused)
    "release": ("held", "at", [*(dumps({"at": v}) for v in BAD_TIMES), dumps([1]),
                                  dumps("x"), dumps({"at": 5, "at_": 1}), dumps({"when": 5})]),
    "redo": ("ended", "cascade", [*(dumps({"cascade": v}) for v in (1, "yes", None, [], 0)),
                                  dumps([True]), dumps(True), dumps({"cascade": True, "x": 1})]),
    "group-limit": ("group", "max_concurrent", [
        *(dumps({"max_concurrent": v}) for v in (0, -1, 10**6 + 1, 2**63, 1.5, "2", True,
                                                 None, [], math.nan, math.inf)),
        dumps({}), dumps([2]), dumps({"max_concurrent": 2, "x": 1})]),
    "gpus": ("", "allowed", [
        *(dumps({"allowed": v}) for v in ("0", "all", [-1], [True], [1.5], [2**70], [0, "1"],
                                          [None], {}, 5, [5])),
        dumps({}), dumps([0]), dumps({"allowed": [0], "x": 1})]),
    "purge": ("", "older_than", [
        *(dumps({"older_than": v}) for v in BAD_TIMES), dumps({}), dumps([0]),
        dumps({"older_than": 10**9, "x": 1})]),
}  # fmt: skip


def small_body_path(api: Api, route: str) -> str:
    fixture = SMALL_BODIES[route][0]
    if route in ("gpus", "purge"):
        return f"/{route}"
    return f"/jobs/{api.fixtures[fixture]}/{route}"


@pytest.mark.parametrize("route", sorted(SMALL_BODIES))
def test_small_bodies_with_one_wrong_thing_are_refused(api: Api, route: str) -> None:
    """Wrong type, out of range, missing, extra field or not an object: 400, no change."""
    path = small_body_path(api, route)
    for body in [*SMALL_BODIES[route][2], *MALFORMED_BODIES[1:]]:
        api.expect_refused("POST", path, body)
    gpus_before = api.send("GET", "/gpus")[1]

    @SETTINGS
    @given(value=json_values)
    def case(value: Any) -> None:
        # Any value of the field that is not of its accepted type and range is refused;
        # the ones that are valid are of no interest here.
        field = SMALL_BODIES[route][1]
        if valid_small_value(route, value):
            return
        api.expect_refused("POST", path, dumps({field: value}))

    case()
    assert api.send("GET", "/gpus")[1] == gpus_before


def valid_small_value(route: str, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if route == "release":  # null: no time given, release now
        return value is None or (number and 0 <= value < 2**40)
    if route == "purge":
        return number and 0 <= value < 2**40
    if route == "redo":
        return isinstance(value, bool)
    if route == "group-limit":
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 10**6
    return value is None or (
        isinstance(value, list)
        and all(isinstance(i, int) and not isinstance(i, bool) and i in (0, 1) for i in value)
    )


BAD_QUERIES = [
    "states=runing", "states=%00", "states=%zz", "states=,,x", "states=" + "r," * 2000 + "x",
    "ids=abc", "ids=0", "ids=-1", "ids=1-", "ids=99999999999999999999", "ids=1-999999999",
    "ids=%ff", "ids=%00", "limit=-1", "limit=abc", "limit=99999999999999999999", "limit=1.5",
    "limit=%00", "since=abc", "since=-1", "since=1e308", "since=nan", "since=inf",
    "since=99999999999999", "since=%00", "fields=NOPE", "fields=id,NOPE", "fields=,",
    "fields=%00", "fields=id%00", "user=no_such_user_hopefully", "user=%00", "user=a%00b",
    "user=%ff", "user=" + "x" * 5000, "user=..%2F..%2Fetc",
]  # fmt: skip


def test_bad_list_queries_are_refused(api: Api) -> None:
    for query in BAD_QUERIES:
        api.expect_refused("GET", "/jobs", query=query)


query_keys = st.sampled_from(
    ["states", "all", "user", "ids", "limit", "since", "project", "names", "fields"]
) | st.text(max_size=6)
SHORT_ODD_TEXT = [t for t in ODD_TEXT if len(t) < 100]
query_values = st.sampled_from([*SHORT_ODD_TEXT, "1", "all", "abc", "1-3", "-1"]) | st.text(
    max_size=12
)


def test_fuzzed_list_queries(api: Api) -> None:
    @SETTINGS
    @given(pairs=st.lists(st.tuples(query_keys, query_values), max_size=4), raw=st.booleans())
    def case(pairs: list[tuple[str, str]], raw: bool) -> None:
        if raw:  # not even percent-encoded right: '%zz', bare '&', '=' without a name
            query = "&".join(f"{k}={v}" for k, v in pairs).replace(" ", "%20")
            query = "".join(c if 0x21 <= ord(c) < 0x7F else quote(c) for c in query) + "%z&&="
        else:
            query = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
        api.tolerate("GET", "/jobs", query=query)

    case()


def test_bad_path_ids_on_every_id_route(api: Api) -> None:
    """-1, 0, 2**66, 'abc', unicode digits …: 4xx on every route with an id, no change."""
    for method, template in ROUTES:
        if "{id}" not in template:
            continue
        for bad in [*BAD_IDS, "4242"]:
            api.expect_refused(method, template.replace("{id}", bad), b"{}")


def test_wrong_methods_on_every_route(api: Api) -> None:
    allowed: dict[str, set[str]] = {}
    for method, template in ROUTES:
        allowed.setdefault(template, set()).add(method)
    for template, methods in allowed.items():
        path = template.replace("{id}", str(api.fixtures["held"]))
        for method in METHODS:
            if method in methods or (method == "HEAD" and "GET" in methods):
                continue
            api.expect_refused(method, path, b"{}")
    api.expect_refused("GET", "/shutdown")
    api.expect_refused("GET", "/nowhere")
    api.expect_refused("POST", "/jobs/1/bogus-action")


def test_fuzzed_bodies_on_every_route(api: Api) -> None:
    """Anything at all, to any route: never 5xx; a refused request changed nothing."""

    # Real ids where a valid request changes nothing that moves on by itself: a job that
    # starts running would change the listing between two requests.
    real = {
        "PATCH": ("held", "group"),
        "group-limit": ("held", "group"),
        "release": ("queued",),
        "redo": ("held", "queued", "group"),
        "cancel": (),
        "hold": (),
    }
    everyone = ("ended", "held", "queued", "group")

    @settings(SETTINGS, max_examples=1500)
    @given(
        route=st.sampled_from(ROUTES),
        bad_id=st.sampled_from(BAD_IDS),
        pick=st.integers(0, 3),
        use_real=st.booleans(),
        body=bodies,
        query=st.lists(st.tuples(query_keys, query_values), max_size=2),
        content_type=st.sampled_from(
            ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
        ),
    )
    def case(
        route: tuple[str, str],
        bad_id: str,
        pick: int,
        use_real: bool,
        body: bytes,
        query: list[tuple[str, str]],
        content_type: str,
    ) -> None:
        method, template = route
        kinds = real.get(method if method == "PATCH" else template.rsplit("/", 1)[-1], everyone)
        job = str(api.fixtures[kinds[pick % len(kinds)]]) if use_real and kinds else bad_id
        path = template.replace("{id}", job)
        q = "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
        target = API + path + (f"?{q}" if q else "")
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: gflowd\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("utf-8", "surrogatepass") + body
        status, headers, data = api.raw(request)
        api.check(method, target, body, status, headers, data)
        if status >= 400:
            assert api.jobs() == api.snapshot, f"refused {method} {path} {body!r} changed jobs"
        else:
            api.snapshot = api.jobs()

    case()


MALFORMED_HTTP = [
    b"GET /api/v1/health HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"GET /api/v1/health HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    b"POST /api/v1/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}",  # body cut short
    b"GET /api/v1/health HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /api/v1/health\r\n\r\n",
    b"\x00\x01\x02\r\n\r\n",
    b"GET " + b"/api/v1/jobs?" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /api/v1/health HTTP/9.9\r\n\r\n",
    b"FOO /api/v1/health HTTP/1.1\r\n\r\n",  # a method llhttp does not know
    b"GET /api/v1/jobs?states=" + b"r," * 5000 + b" HTTP/1.1\r\n\r\n",  # past 8190 bytes
    b"GET /api/v1/health HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n",
]


def test_malformed_http_never_harms_the_daemon(api: Api) -> None:
    """Broken HTTP itself (aiohttp's parser answers it, before any route): 4xx or the
    connection closed, never 5xx, and the daemon goes on."""
    for request in MALFORMED_HTTP:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        try:
            sock.connect(str(api.gflow.paths.socket))
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        except (BrokenPipeError, ConnectionResetError):
            data = b""
        finally:
            sock.close()
        STATS["cases"] += 1
        if data:
            status = parse_response(data)[0]
            STATS[f"{status // 100}xx"] += 1
            assert status < 500, (request[:100], data[:300])
        assert api.alive(), request[:100]
        assert api.jobs() == api.snapshot


def test_after_all_that_the_daemon_works(api: Api) -> None:
    """health answers, a normal submission runs to the end, the GPUs are as they were."""
    assert api.alive()
    status, answer = api.send("GET", "/health")
    assert status == 200 and answer["pid"] == api.pid
    job = api.gflow.submit("echo", "still here")
    assert api.gflow.wait_state(job, "Finished")["exit_code"] == 0
    log = Path(api.gflow.job(job)["log_path"])
    assert "still here" in log.read_text()
    status, answer = api.send("GET", "/gpus")
    assert [gpu["allowed"] for gpu in answer["gpus"]] == [True, True]
    # The routes refused so much still take a good request (group-limit was once shadowed
    # by /jobs/{id}/{action}, so every request to it was a 404).
    group = api.fixtures["group"]
    status, answer = api.send("POST", f"/jobs/{group}/group-limit", b'{"max_concurrent": 3}')
    assert status == 200 and answer["updated_jobs"] == 1
    assert api.gflow.job(group)["max_concurrent"] == 3
    print(
        f"\nAPI fuzz: {STATS['cases']} cases run, {STATS['5xx']} answered 5xx "
        f"(2xx {STATS['2xx']}, 4xx {STATS['4xx']}); hypothesis derandomized"
    )
    assert STATS["5xx"] == 0


def test_shutdown_stops_the_daemon_whatever_the_body(api: Api) -> None:
    """The one route left out above: it ends the daemon (the owner asks; jobs keep running)."""
    status, answer = api.send("POST", "/shutdown", b"\xff not json")
    assert status == 200 and answer["status"] == "stopping"
    wait_for(lambda: not api.alive(), what="the daemon to stop")
    assert api.gflow.run("gflowd", "status").returncode != 0
