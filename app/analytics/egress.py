"""One outbound POST to an address that app.netguard checked, never to another.

http.client rather than urllib or an HTTP client library: it connects where we say (the
checked address) while the Host header and TLS (SNI and certificate check) use the URL's host
name, and it never follows a redirect. A library would need its own transport for the same.
"""

import http.client
import socket
import ssl
from functools import cache
from urllib.parse import urlsplit

from app.netguard import Target


@cache
def _tls() -> ssl.SSLContext:
    # On first use, not on import: loading the system's CA certificates delayed the start.
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=_tls())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, as if we had connected by name.
        self.sock = _tls().wrap_socket(sock, server_hostname=self.host)


def post(target: Target, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` through ``target.address``; returns the status code."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout)
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # the body is not ours to keep; reading a little lets it close
        return response.status
    finally:
        connection.close()
