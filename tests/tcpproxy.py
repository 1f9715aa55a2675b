"""A TCP proxy for outage tests: it forwards to a real server until told to go silent, then
forwards nothing and closes nothing, as a server that hangs or a network that fails."""

import ctypes
import socket
import struct
import threading
from types import TracebackType

# Linux's SO_ATTACH_FILTER, SO_DETACH_FILTER (Python's socket module does not name them), and a
# classic BPF program of one instruction, "return 0": the kernel discards every packet.
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
_DROP_EVERYTHING = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``, each connection on threads of its own."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._facing_clients: list[socket.socket] = [self._listener]
        self._sockets: list[socket.socket] = []
        self._dropping = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="tcp proxy", daemon=True).start()

    def silence(self, *, drop_packets: bool = False) -> None:
        """Stop forwarding, and accepting: connections stay open, nothing answers them.

        Our kernel still acknowledges what clients send (only the server is silent, as a
        stopped process). With ``drop_packets`` it discards every packet from the clients
        instead, acknowledgements and keepalive probes included, as a network partition or a
        host that is gone does: only then do the clients' TCP timeouts apply."""
        self._flowing.clear()
        if drop_packets:
            with self._lock:
                self._dropping = True
                for sock in self._facing_clients:
                    _attach(sock)

    def resume(self) -> None:
        with self._lock:
            if self._dropping:
                for sock in self._facing_clients:
                    sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
                self._dropping = False
        self._flowing.set()

    def close(self) -> None:
        """Close everything: a client still waiting on the proxy sees its connection end."""
        self._closed = True
        self.resume()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                _shut(sock)  # wakes the pumps blocked on it, and tells the client
                sock.close()

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while self._flowing.wait() and not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                if self._closed:
                    return
                continue
            server.settimeout(None)
            with self._lock:
                self._facing_clients.append(client)
                self._sockets += [client, server]
                if self._dropping:
                    _attach(client)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while self._flowing.wait() and not self._closed:
                data = source.recv(65536)
                self._flowing.wait()
                if not data or self._closed:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            _shut(sock)


def _attach(sock: socket.socket) -> None:
    program = struct.pack("HL", 1, ctypes.addressof(_DROP_EVERYTHING))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
