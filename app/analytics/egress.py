"""One outbound POST to an address that app.netguard checked, never to another.

http.client rather than urllib or an HTTP client library: it connects where we say (the
checked address) while the Host header and TLS (SNI and certificate check) use the URL's host
name, and it never follows a redirect. A library would need its own transport for the same.

The timeout bounds the whole request. A socket's timeout bounds each read alone, so a receiver
that sends its answer a byte at a time, each within it, would hold the request (a worker's
delivery, or a staff user's "Send test event" and its server thread) as long as it liked:
``_Deadline`` shuts the socket down when the time is up, which ends any read under way.
"""

import contextlib
import http.client
import socket
import ssl
import threading
from functools import cache
from urllib.parse import urlsplit

from app.netguard import Target


@cache
def _tls() -> ssl.SSLContext:
    # On first use, not on import: loading the system's CA certificates delayed the start.
    return ssl.create_default_context()


class _Deadline:
    """Shuts down the socket it watches once ``seconds`` have passed, from a timer thread."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.passed = False
        self._timer = threading.Timer(seconds, self._cut_off)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """The socket to shut down (a TLS one replaces the plain one it wraps)."""
        with self._lock:
            self._socket, passed = sock, self.passed
        if passed:  # the time ran out while it was being opened
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _cut_off(self) -> None:
        with self._lock:
            self.passed, sock = True, self._socket
        if sock is not None:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, or detached by the TLS wrapper
        sock.shutdown(socket.SHUT_RDWR)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float, deadline: _Deadline) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self._deadline.watch(self.sock)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, deadline: _Deadline) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=_tls())
        self._address = target.address
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self._deadline.watch(sock)  # the handshake too
        # The certificate is checked against the host name, as if we had connected by name.
        self.sock = _tls().wrap_socket(sock, server_hostname=self.host)
        self._deadline.watch(self.sock)


def post(target: Target, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` through ``target.address``; returns the status code."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = _Deadline(timeout)
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout, deadline)
    else:
        connection = _PinnedHTTPConnection(target, timeout, deadline)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        if deadline.passed:  # its headers cut short, which http.client takes for their end
            raise TimeoutError(f"no answer within {timeout:g} seconds")
        response.read(64 * 1024)  # the body is not ours to keep; reading a little lets it close
        return response.status
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if deadline.passed:  # whatever the cut-off read raised, the receiver was too slow
            raise TimeoutError(f"no answer within {timeout:g} seconds") from exc
        raise
    finally:
        deadline.cancel()
        connection.close()
