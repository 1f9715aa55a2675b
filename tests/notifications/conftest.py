"""A real SMTP server (aiosmtpd) in the test process, and the mail worker pointed at it."""

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.notifications import delivery


@dataclass
class Inbox:
    """What the server received; ``refuse_next`` answers that many DATA commands with 451."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: list[EmailMessage] = field(default_factory=list)
    refuse_next: int = 0
    reject_recipients: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject_recipients:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused.append(message)
            return "451 4.3.0 Try again later"
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def body_text(mail: EmailMessage, subtype: str = "plain") -> str:
    """The text of the mail's plain (or ``subtype``) body; fails if it has none."""
    body = mail.get_body((subtype,))
    assert body is not None, f"no text/{subtype} body"
    text = body.get_content()
    assert isinstance(text, str)
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


InboxT = TypeVar("InboxT", bound=Inbox)


def running(controller: Controller, handler: InboxT) -> Iterator[InboxT]:
    """``handler``'s server, started, with the port it listens on; stopped afterwards."""
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    yield from running(Controller(handler, hostname="127.0.0.1", port=free_port()), handler)


@pytest.fixture
def mail_settings(settings: Settings, inbox: Inbox) -> Settings:
    """Settings that send to the in-process server, retrying at once."""
    return settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{inbox.port}",  # type: ignore[attr-defined]
            "mail_retry_base_seconds": 0.001,
            "mail_retry_max_seconds": 0.001,
            "mail_from": "Acme Sales <sales@acme.example>",
        }
    )


def deliver_all(engine: Engine, settings: Settings, passes: int = 5) -> None:
    """Run the worker's delivery until nothing is due (a retry is due after its backoff)."""
    import time

    for _ in range(passes):
        delivery.deliver_batch(engine, settings)
        time.sleep(0.01)


@pytest.fixture
def web(app: FastAPI, _running_client: TestClient, committed: Engine) -> TestClient:
    """A browser on the public site: no session override, everything really committed."""
    from app.notifications.router import FormLimits
    from app.tracking.ratelimit import MissLimiter
    from app.tracking.scans import visitor_keys

    app.dependency_overrides.clear()
    app.state.miss_limiter = MissLimiter(20)
    app.state.notification_limits = FormLimits()
    visitor_keys.forget()
    app.state.page_cache.clear()
    _running_client.headers.clear()
    _running_client.cookies.clear()
    return _running_client


def run_worker(engine: Engine, settings: Settings) -> None:
    """The mail worker's passes until it finds nothing more to do."""
    from app.notifications.worker import MailWorker

    worker = MailWorker(engine, settings)
    for _ in range(50):
        if not worker.run_once():
            return
    raise AssertionError("the mail worker did not settle")
