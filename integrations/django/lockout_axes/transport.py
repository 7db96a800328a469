"""HTTP/1.1 to the lockout service over one kept-alive socket per thread, spoken directly.

``request(method, base_url, target, headers, body, timeout) -> (status, body bytes)``; anything
that keeps an answer from arriving (no connection, a timeout, a closed or garbled answer) raises
``Unreachable``; the headers (a token among them) stay out of its messages and of Django's error
reports. What the service's answers need and no more: ``http://`` and ``https://`` (the system's
CAs), a path prefix, answers framed by ``Content-Length`` (the service frames every answer so;
one without, such as a chunked one from a proxy, is ``Unreachable``), ``Connection: close``.
Connecting and reading share one ``timeout`` (seconds), and no request is resent: a connection
is reused only if the service has not closed it meanwhile (the socket is checked first, as
urllib3 does), so a service that restarts costs the next request a new connection, not an error.

Why not urllib3, which this replaced: its request machinery (header containers, ``http.client``'s
response parser, retry and pool bookkeeping) cost the Django process about 250 µs of CPU per
call, against about 20 µs for this module, and a failed login makes two calls
(docs/performance.md, "A Django site").
"""

import os
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from django.views.decorators.debug import sensitive_variables

# One answer's head may not exceed this; the service's are a few hundred bytes.
MAX_HEAD_BYTES = 64 * 1024
READ_SIZE = 64 * 1024


class Unreachable(Exception):
    """No answer: the service could not be reached, timed out or broke the exchange."""


@sensitive_variables("headers")
def request(method, base_url, target, headers, body, timeout):
    """Sends one request to ``base_url`` (``scheme://host[:port][/path]``) and answers (status,
    body).

    ``headers`` is the header lines' text, each ending in CRLF (no Host, no Content-Length).
    """
    deadline = time.monotonic() + timeout
    connection = _connections.get(base_url, timeout)
    try:
        answer = connection.exchange(method, target, headers, body, deadline)
    except Unreachable:
        _connections.drop(base_url)
        raise
    if not connection.reusable:
        _connections.drop(base_url)
    return answer


class _Connection:
    """One socket to the service and the host header it is known by."""

    def __init__(self, base_url, timeout):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise Unreachable(f"unsupported URL scheme {parts.scheme!r} (http or https)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise Unreachable(f"bad URL: {error}") from None
        host = parts.hostname or ""
        self.host_header = parts.netloc.rpartition("@")[2]
        # A service behind a proxy under a path: ``LOCKOUT_URL = "https://host/lockout"``.
        self.path_prefix = parts.path.rstrip("/")
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "https":
                sock = _tls_context().wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as error:
            raise Unreachable(f"cannot connect to {host}:{port}: {error}") from None
        self.sock = sock
        self.reusable = True
        self.buffer = b""
        self.deadline = None

    def closed_by_peer(self):
        """Whether the service closed (or wrote unasked to) this idle connection."""
        if self.buffer:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    @sensitive_variables("headers", "head", "data")
    def exchange(self, method, target, headers, body, deadline):
        self.deadline = deadline
        head = f"{method} {self.path_prefix}{target} HTTP/1.1\r\n"
        head += f"Host: {self.host_header}\r\n{headers}"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1") + (body or b"")
        try:
            self._wait_until_deadline()
            self.sock.sendall(data)
            return self._read_answer()
        except TimeoutError:
            raise Unreachable("no answer within LOCKOUT_TIMEOUT") from None
        except (OSError, ValueError) as error:
            raise Unreachable(f"{type(error).__name__}: {error}") from None

    def _read_answer(self):
        end = self.buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise Unreachable("an answer's head is too long")
            self._receive()
            end = self.buffer.find(b"\r\n\r\n")
        head = self.buffer[:end].decode("latin-1")
        self.buffer = self.buffer[end + 4 :]
        status_line, _, header_lines = head.partition("\r\n")
        version, _, rest = status_line.partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise Unreachable(f"not an HTTP answer: {status_line[:100]!r}") from None
        length = None
        close = version != "HTTP/1.1"
        for line in header_lines.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise Unreachable(f"an answer in Transfer-Encoding {value.strip()[:50]!r}")
            elif name == "connection":
                close = close or "close" in value.lower()
        if length is None:
            raise Unreachable("an answer without Content-Length")
        body = self._read_exactly(length)
        self.reusable = not close
        return status, body

    def _wait_until_deadline(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)

    def _receive(self):
        self._wait_until_deadline()
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise Unreachable("the service closed the connection before its answer ended")
        self.buffer += data

    def _read_exactly(self, length):
        while len(self.buffer) < length:
            self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class _Connections:
    """This thread's connection to each service URL (one per thread: no locking, no pool)."""

    def __init__(self):
        self._local = threading.local()

    def get(self, base_url, timeout):
        table = self._table()
        connection = table.get(base_url)
        if connection is not None and connection.closed_by_peer():
            connection.close()
            connection = None
        if connection is None:
            connection = table[base_url] = _Connection(base_url, timeout)
        return connection

    def drop(self, base_url):
        connection = self._table().pop(base_url, None)
        if connection is not None:
            connection.close()

    def _table(self):
        try:
            return self._local.table
        except AttributeError:
            self._local.table = {}
            return self._local.table


_tls = None


def _tls_context():
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


_connections = _Connections()


def _forget_parent_connections():
    # A forked child must not share the parent's sockets.
    global _connections
    _connections = _Connections()


os.register_at_fork(after_in_child=_forget_parent_connections)
