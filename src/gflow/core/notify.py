"""Notification targets from gflow.toml, checked once, and the delivery rules (pure).

`[[notifications.webhooks]]`: url, events, users, headers, timeout (s), max_retries.
`[[notifications.emails]]`: smtp_url (smtp://, smtps://, smtp+starttls://), from, to (a
list), events, users, subject_prefix. A target being configured is what turns it on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from gflow.core.errors import InvalidInput

NAMES = frozenset(
    {
        "job_submitted", "job_started", "job_finished", "job_failed", "job_timeout",
        "job_cancelled", "job_held", "job_released", "job_updated", "job_retried",
        "reservation_created", "reservation_cancelled", "gpu_available", "daemon_started",
        "ended", "*",
    }
)  # fmt: skip
DEFAULT_EVENTS = frozenset({"ended"})
MAX_BACKOFF = 3600.0
SMTP_SCHEMES = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
# Per job (--notify-on): started, ended, failed (Failed or Timeout), and the names above.
JOB_NOTIFY = {
    "started": frozenset({"job_started"}),
    "ended": frozenset({"ended"}),
    "failed": frozenset({"job_failed", "job_timeout"}),
    "all": frozenset({"*"}),
}


@dataclass(frozen=True)
class Webhook:
    key: str  # "webhook:N", N its place in the config
    url: str
    events: frozenset[str]
    users: frozenset[str] | None
    headers: tuple[tuple[str, str], ...]
    timeout: float = 10.0
    max_retries: int = 5


@dataclass(frozen=True)
class EmailTarget:
    key: str  # "email:N"
    scheme: str
    host: str
    port: int
    username: str
    password: str
    sender: str
    to: tuple[str, ...]
    events: frozenset[str]
    users: frozenset[str] | None
    subject_prefix: str = "[gflow]"
    max_retries: int = 5
    timeout: float = 30.0


Target = Webhook | EmailTarget


def backoff(attempt: int) -> float:
    """Seconds before try `attempt + 1`: 1, 2, 4 … at most an hour."""
    return float(min(MAX_BACKOFF, 2.0 ** max(0, attempt - 1)))


def retryable(status: int | None) -> bool:
    """None: no answer at all (refused, timed out). A 4xx is final, but 429."""
    return status is None or status == 429 or status >= 500


def _names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return DEFAULT_EVENTS
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{where}.events must be a list of event names")
    unknown = sorted(set(value) - NAMES)
    if unknown:
        raise InvalidInput(
            f"{where}.events: unknown event {unknown[0]!r}",
            hint="known: " + ", ".join(sorted(NAMES)),
        )
    return frozenset(value)


def _users(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{where}.users must be a list of user names")
    return frozenset(value)


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{where} must be a number from {low:g} to {high:g}")
    return float(value)


def _known(table: dict[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise InvalidInput(
            f"unknown key {where}.{unknown[0]}", hint="known: " + ", ".join(sorted(keys))
        )


def webhook(table: Any, index: int) -> Webhook:
    where = f"notifications.webhooks[{index}]"
    if not isinstance(table, dict):
        raise InvalidInput(f"{where} must be a table ([[notifications.webhooks]])")
    _known(table, {"url", "events", "users", "headers", "timeout", "max_retries"}, where)
    url = table.get("url")
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).netloc
    ):
        raise InvalidInput(f"{where}.url must be an http:// or https:// URL", hint=f"got {url!r}")
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidInput(f"{where}.headers must be a table of strings")
    return Webhook(
        f"webhook:{index}",
        url,
        _names(table.get("events"), where),
        _users(table.get("users"), where),
        tuple(sorted(headers.items())),
        _number(table.get("timeout", 10), f"{where}.timeout", 0.1, 300),
        int(_number(table.get("max_retries", 5), f"{where}.max_retries", 0, 100)),
    )


def email(table: Any, index: int) -> EmailTarget:
    where = f"notifications.emails[{index}]"
    if not isinstance(table, dict):
        raise InvalidInput(f"{where} must be a table ([[notifications.emails]])")
    _known(table, {"smtp_url", "from", "to", "events", "users", "subject_prefix"}, where)
    raw = table.get("smtp_url")
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in SMTP_SCHEMES or not parts.hostname:
        raise InvalidInput(
            f"{where}.smtp_url must be smtp://HOST:PORT, smtps://… or smtp+starttls://…",
            hint=f"got {raw!r}",
        )
    try:
        port = parts.port or SMTP_SCHEMES[parts.scheme]
    except ValueError:
        raise InvalidInput(f"{where}.smtp_url has a bad port", hint=f"got {raw!r}") from None
    sender = table.get("from")
    to = table.get("to", [])
    if not isinstance(sender, str) or "@" not in sender:
        raise InvalidInput(f"{where}.from must be an e-mail address")
    if not isinstance(to, list) or not all(isinstance(t, str) and "@" in t for t in to):
        raise InvalidInput(f"{where}.to must be a list of e-mail addresses")
    prefix = table.get("subject_prefix", "[gflow]")
    if not isinstance(prefix, str):
        raise InvalidInput(f"{where}.subject_prefix must be a string")
    return EmailTarget(
        f"email:{index}",
        parts.scheme,
        parts.hostname,
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        sender,
        tuple(to),
        _names(table.get("events"), where),
        _users(table.get("users"), where),
        prefix,
    )


def check_targets(
    webhooks: tuple[Any, ...] | list[Any], emails: tuple[Any, ...] | list[Any]
) -> tuple[Target, ...]:
    """Every configured target, checked; a bad one is bad input naming its key."""
    return (
        *(webhook(t, i) for i, t in enumerate(webhooks)),
        *(email(t, i) for i, t in enumerate(emails)),
    )


def parse_notify_on(text: str) -> frozenset[str]:
    """--notify-on started,ended,failed (or notification names) -> notification names."""
    names: set[str] = set()
    for word in (w.strip() for w in text.split(",")):
        if word in JOB_NOTIFY:
            names |= JOB_NOTIFY[word]
        elif word in NAMES:
            names.add(word)
        else:
            raise InvalidInput(
                f"unknown --notify-on value {word!r}",
                hint="started, ended, failed, all, or event names such as job_held",
            )
    return frozenset(names)
