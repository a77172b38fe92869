"""Sending one notification: a webhook POST (aiohttp) or an e-mail (smtplib, in a thread).

Each answers a `Sent`: delivered, or why not and whether trying again may help."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiohttp

from gflow.core.notify import EmailTarget, Webhook, retryable


@dataclass(frozen=True)
class Sent:
    ok: bool
    retry: bool = False
    why: str = ""


def payload(event: dict[str, Any], job: dict[str, Any] | None) -> dict[str, Any]:
    return {"event": event["name"], **event, "job": job}


async def post(session: aiohttp.ClientSession, hook: Webhook, body: dict[str, Any]) -> Sent:
    headers = {"Content-Type": "application/json", "User-Agent": "gflowd", **dict(hook.headers)}
    headers["X-Gflow-Event"] = str(body["event"])
    headers["X-Gflow-Event-Id"] = str(body["id"])  # the same on a retry: receivers can dedupe
    try:
        async with session.post(
            hook.url,
            data=json.dumps(body),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=hook.timeout),
            allow_redirects=False,
        ) as answer:
            await answer.read()
            if 200 <= answer.status < 300:
                return Sent(True)
            return Sent(False, retryable(answer.status), f"HTTP {answer.status}")
    except TimeoutError:
        return Sent(False, True, f"no answer within {hook.timeout:g} s")
    except aiohttp.ClientError as exc:
        return Sent(False, True, str(exc) or type(exc).__name__)


def message(target: EmailTarget, to: tuple[str, ...], body: dict[str, Any]) -> EmailMessage:
    job = body.get("job") or {}
    what = body["event"].replace("job_", "").replace("_", " ")
    subject = f"{target.subject_prefix} job {body['job_id']} {what}".strip()
    if job.get("name"):
        subject += f" ({job['name']})"
    if body["job_id"] == 0:
        subject = f"{target.subject_prefix} {what}".strip()
    lines = [
        f"Event:   {body['event']} (#{body['id']})",
        f"Job:     {body['job_id']} {job.get('name', '')}".rstrip(),
        f"State:   {body.get('state') or '-'}",
        f"Detail:  {body.get('detail') or '-'}",
    ]
    for key in ("user", "exit_code", "reason", "log_path"):
        if job.get(key) is not None:
            lines.append(f"{key.replace('_', ' ').capitalize() + ':':<9}{job[key]}")
    mail = EmailMessage()
    mail["From"] = target.sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = subject
    mail["X-Gflow-Event-Id"] = str(body["id"])
    mail.set_content("\n".join(lines) + "\n")
    return mail


def _smtp_send(target: EmailTarget, mail: EmailMessage) -> Sent:
    try:
        smtp: smtplib.SMTP
        if target.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=target.timeout,
                                    context=ssl.create_default_context())  # fmt: skip
        else:
            smtp = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
        with smtp:
            if target.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
            if target.username:
                smtp.login(target.username, target.password)
            smtp.send_message(mail)
        return Sent(True)
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        return Sent(False, 400 <= exc.smtp_code < 500, f"SMTP {exc.smtp_code} {text}")
    except smtplib.SMTPRecipientsRefused as exc:
        return Sent(False, False, f"recipients refused: {', '.join(exc.recipients)}")
    except (OSError, smtplib.SMTPException) as exc:
        return Sent(False, True, str(exc) or type(exc).__name__)


async def send_mail(target: EmailTarget, to: tuple[str, ...], body: dict[str, Any]) -> Sent:
    if not to:
        return Sent(False, False, "no recipients (to = [])")
    return await asyncio.to_thread(_smtp_send, target, message(target, to, body))
