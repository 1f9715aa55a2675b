"""Where outbound requests (webhooks) may go: never to our own or internal networks unless
an operator lists the network in ``OFFERTRACK_WEBHOOK_ALLOWED_NETWORKS``.

A URL is checked twice. When it is registered: scheme, no credentials, no address written as
a number that names an internal host (in any spelling the C library accepts: ``127.1``,
``0x7f000001``, ``2130706433``), no internal name (``localhost``, ``*.internal`` ...). When a
request is made: the host is resolved once, every address it resolves to is checked, and the
connection goes to the checked address (``pinned_address``), so a name that resolves
differently the second time (DNS rebinding) reaches nothing we did not check.
"""

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from app.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Names that only ever mean a host of one's own network (RFC 6761, RFC 6762, RFC 8375, and
# the ".internal" domain ICANN reserved for private use, which clouds use for metadata).
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
# Not covered by ipaddress's is_global in every Python version we support.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class EgressRefused(Unprocessable):
    """A URL or address an outbound request may not reach."""

    def __init__(self, reason: str, *, field: str = "url") -> None:
        super().__init__(f"The URL {reason}", loc=("body", field))
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where a checked request goes: the URL's host (for the Host header and TLS) and port,
    and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: str


def is_internal(address: IPAddress) -> bool:
    """Loopback, private, link-local, unique-local, shared (CGNAT), multicast, unspecified,
    reserved, or any other address not routed on the public internet."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_internal(embedded)
        # Site-local (fec0::/10) was deprecated, not given back to the internet: networks that
        # still number hosts in it are private ones, though ipaddress counts it as global.
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in SHARED_ADDRESS_SPACE
    )


def allowed(address: IPAddress, networks: Sequence[Network]) -> bool:
    return not is_internal(address) or any(address in network for network in networks)


def check_url(url: str, networks: Sequence[Network]) -> SplitResult:
    """Refuse a URL that no outbound request may take, without resolving its host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise EgressRefused("is not a valid URL.") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise EgressRefused("must be an absolute http or https URL.")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("must not contain a user name or password.")
    host = parts.hostname.rstrip(".")
    literal = _literal_address(host)
    if literal is not None and not allowed(literal, networks):
        raise EgressRefused(f"points to an internal address ({literal}), which is not allowed.")
    if literal is None and _is_internal_name(host) and not networks:
        raise EgressRefused(f"names an internal host ({host}), which is not allowed.")
    return parts


def resolve(url: str, networks: Sequence[Network]) -> Target:
    """Check the URL, resolve its host once and check every address it has; the Target holds
    the address to connect to."""
    parts = check_url(url, networks)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EgressRefused(f"has a host that does not resolve ({host}).") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [str(a) for a in addresses if not allowed(a, networks)]
    if refused or not addresses:
        shown = ", ".join(sorted(set(refused))) or "none"
        raise EgressRefused(f"resolves to an internal address ({shown}), which is not allowed.")
    return Target(parts.scheme.lower(), host, port, str(addresses[0]))


def _literal_address(host: str) -> IPAddress | None:
    """The address a host written as a number means, in every spelling resolvers accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        # inet_aton takes the old forms too: "127.1", "0x7f.1", "2130706433", "0177.0.0.1".
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_internal_name(host: str) -> bool:
    name = host.lower()
    return name == "localhost" or name.endswith(INTERNAL_SUFFIXES) or "." not in name
