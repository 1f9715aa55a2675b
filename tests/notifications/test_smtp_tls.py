"""OFFERTRACK_SMTP_URL's two secure forms against a real server: smtp:// upgrades with STARTTLS
before it logs in, smtps:// speaks TLS from the first byte; the server's certificate is checked.

The server is aiosmtpd in the test process with a certificate from a throwaway CA (trustme);
the client trusts that CA the way a deployment trusts a private one, through SSL_CERT_FILE.
"""

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import Engine, select
from sqlmodel import Session

from app.config import Settings
from app.notifications import delivery
from app.notifications.models import MailOutbox
from tests.notifications.conftest import Inbox, free_port, running
from tests.notifications.test_mail import _queue

pytestmark = [
    pytest.mark.concurrency,
    # aiosmtpd counts only STARTTLS as encryption, so its implicit-TLS server must be told
    # not to require it for AUTH, and warns; the tests check each session's TLS themselves.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]
USER, PASSWORD = "mailer@acme.example", "s3cret/with:odd@chars"


@dataclass
class SecureInbox(Inbox):
    """Also remembers, per accepted mail, whether it came over TLS and who logged in."""

    sessions: list[tuple[bool, str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        user = self.logins[-1][0] if session.authenticated else ""
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append((encrypted, user))
        return answer

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (USER, PASSWORD))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client trusts the test CA (OpenSSL reads SSL_CERT_FILE when a context loads its
    default certificates, as ssl.create_default_context does)."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


def _serve(handler: SecureInbox, **options: Any) -> Iterator[SecureInbox]:
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="localhost",
        authenticator=handler.authenticate,
        **options,
    )
    yield from running(controller, handler)


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[SecureInbox]:
    """A submission server (port 587's kind): plain at first, STARTTLS required before
    anything else, AUTH only over TLS."""
    yield from _serve(
        SecureInbox(),
        tls_context=_server_context(ca),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
    )


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[SecureInbox]:
    """A submissions server (port 465's kind): TLS from the first byte."""
    yield from _serve(
        SecureInbox(), ssl_context=_server_context(ca), auth_required=True, auth_require_tls=False
    )


def _settings(settings: Settings, url: str) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": url,
            "mail_from": "Acme Sales <sales@acme.example>",
            "mail_timeout_seconds": 5,
        }
    )


def _credentials() -> str:
    return f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"


def _outbox(engine: Engine) -> MailOutbox:
    with Session(engine) as session:
        return session.execute(select(MailOutbox)).scalar_one()


def test_smtp_url_upgrades_with_starttls_then_logs_in(
    committed: Engine, settings: Settings, starttls_server: SecureInbox, trusted: None
) -> None:
    port = starttls_server.port  # type: ignore[attr-defined]
    local = _settings(settings, f"smtp://{_credentials()}@localhost:{port}")
    message_id = _queue(committed, local)

    delivery.deliver_batch(committed, local)

    [mail] = starttls_server.messages
    assert mail["Message-ID"] == message_id
    assert starttls_server.logins == [(USER, PASSWORD)]  # the URL's escapes undone
    assert starttls_server.sessions == [(True, USER)]  # sent over TLS, after logging in
    assert _outbox(committed).sent_at is not None


def test_smtps_url_speaks_tls_from_the_start_and_logs_in(
    committed: Engine, settings: Settings, tls_server: SecureInbox, trusted: None
) -> None:
    port = tls_server.port  # type: ignore[attr-defined]
    local = _settings(settings, f"smtps://{_credentials()}@localhost:{port}")
    message_id = _queue(committed, local)

    delivery.deliver_batch(committed, local)

    [mail] = tls_server.messages
    assert mail["Message-ID"] == message_id
    assert tls_server.sessions == [(True, USER)]
    assert _outbox(committed).sent_at is not None


def test_a_certificate_nobody_vouches_for_sends_nothing_and_the_mail_waits(
    committed: Engine, settings: Settings, tls_server: SecureInbox
) -> None:
    port = tls_server.port  # type: ignore[attr-defined]
    local = _settings(settings, f"smtps://{_credentials()}@localhost:{port}")
    _queue(committed, local)

    delivery.deliver_batch(committed, local)

    assert tls_server.messages == [] and tls_server.logins == []
    row = _outbox(committed)
    assert row.sent_at is None and row.failed_at is None  # tried again later
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_a_server_without_starttls_never_sees_the_password(
    committed: Engine, settings: Settings
) -> None:
    plain = SecureInbox()
    for server in _serve(plain, auth_require_tls=False):
        port = server.port  # type: ignore[attr-defined]
        local = _settings(settings, f"smtp://{_credentials()}@127.0.0.1:{port}")
        _queue(committed, local)
        delivery.deliver_batch(committed, local)

    assert plain.messages == [] and plain.logins == []
    row = _outbox(committed)
    assert row.sent_at is None and row.failed_at is None
    assert "no STARTTLS" in row.last_error
