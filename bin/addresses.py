"""Addresses on the command line: checked before anything binds, failures in one line.

A mistyped address is a usage error (exit 2) found before a socket exists; an address
that is well formed but cannot be served (a busy port, an address of another machine)
is a failure to serve (exit 1). Both are one line naming the flag, the value and the
reason, never a traceback (DESIGN §7). :func:`exposed` decides which bound sockets other
machines can reach, for the warning the servers print when they run without protection.

>>> endpoint_problem("tcp://127.0.0.1:*", bind=True) is None
True
>>> endpoint_problem("tcp://127.0.0.1:99999", bind=True)
'port 99999 is out of range (0-65535)'
>>> exposed({"--frontend": "tcp://0.0.0.0:5570", "--backend": "tcp://127.0.0.1:5571"})
['--frontend tcp://0.0.0.0:5570']
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["AddressUsageError", "Endpoint", "ListenAddress", "ServeError", "bind_broker", "endpoint_problem",
           "exposed", "exposure_warning", "listen_problem", "serve_error", "split_listen"]

#: Longest ``ipc://`` path Linux takes (``sun_path`` holds 108 bytes with the final NUL).
IPC_PATH_MAX = 107
_SCHEMES = ("tcp", "ipc", "inproc")
_HOST = re.compile(r"^[A-Za-z0-9_.%:-]+$")  # a name, an interface, an IPv4 or a bare IPv6 address


class AddressUsageError(click.ClickException):
    """A malformed address: one line, exit code 2 (click's code for usage errors)."""

    exit_code = 2


class ServeError(click.ClickException):
    """A well-formed address this machine cannot serve (busy, not its own): one line, exit 1."""

    exit_code = 1


def _port_problem(port: str, *, bind: bool, wildcard: bool) -> str | None:
    if port == "*" and wildcard:
        return None if bind else "port * binds a free port; to connect, name the port"
    if not port.isdigit():
        return f"port {port!r} is not a number" + (" or *" if wildcard else "")
    if int(port) > 65535:
        return f"port {port} is out of range (0-65535)"
    if int(port) == 0 and not bind:
        return "port 0 binds a free port; to connect, name the port"
    return None


def _host_problem(host: str, *, bind: bool) -> str | None:
    if not host:
        return "the host is missing"
    if host == "*":
        return None if bind else "host * binds every interface; to connect, name a host"
    if host.startswith("["):
        if not host.endswith("]"):
            return f"host {host!r} misses its closing ]"
        try:
            ipaddress.IPv6Address(host[1:-1].split("%")[0])
        except ValueError:
            return f"host {host!r} is not an IPv6 address"
        return None
    if not _HOST.match(host):
        return f"host {host!r} is not a host name or an IP address"
    return None


def endpoint_problem(value: str, *, bind: bool) -> str | None:
    """Why ``value`` is not a ZeroMQ endpoint to bind (``bind``) or connect to, or None:
    ``tcp://HOST:PORT`` (``*`` host and port for a bind), ``ipc://PATH``, ``inproc://NAME``."""
    scheme, separator, rest = value.partition("://")
    if not separator:
        return "expected tcp://HOST:PORT, ipc://PATH or inproc://NAME"
    if scheme not in _SCHEMES:
        return f"scheme {scheme!r} is not served; use tcp://, ipc:// or inproc://"
    if scheme == "inproc":
        return None if rest else "the inproc name is missing"
    if scheme == "ipc":
        if not rest:
            return "the ipc path is missing"
        if len(rest.encode()) > IPC_PATH_MAX and not rest.startswith("@"):
            return f"the ipc path is {len(rest.encode())} bytes long (at most {IPC_PATH_MAX})"
        return None
    address = rest.rpartition(";")[2]  # tcp://SOURCE;HOST:PORT connects from SOURCE
    host, colon, port = address.rpartition(":")
    if not colon:
        return "expected tcp://HOST:PORT" + (" (PORT * for a free one)" if bind else "")
    return _host_problem(host, bind=bind) or _port_problem(port, bind=bind, wildcard=True)


def listen_problem(value: str) -> str | None:
    """Why ``value`` is not a ``HOST:PORT`` to listen on (port 0: a free one), or None."""
    host, colon, port = value.rpartition(":")
    if not colon:
        return "expected HOST:PORT (port 0 for a free one)"
    if host == "*":
        return "host * is a ZeroMQ form; use 0.0.0.0 (or [::]) to listen on every interface"
    return _host_problem(host, bind=True) or _port_problem(port, bind=True, wildcard=False)


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (checked by :func:`listen_problem`) as ``(host, port)``, IPv6 brackets off."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _flag(param: click.Parameter | None, fallback: str) -> str:
    names = [name for name in getattr(param, "opts", ()) if name.startswith("--")]
    return names[0] if names else fallback


class Endpoint(click.ParamType):
    """A ZeroMQ endpoint flag, checked before anything binds or connects. ``optional``:
    the empty string is allowed (it means "none")."""

    name = "endpoint"

    def __init__(self, *, bind: bool, optional: bool = False) -> None:
        self.bind = bind
        self.optional = optional

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if self.optional and text == "":
            return text
        problem = endpoint_problem(text, bind=self.bind)
        if problem is not None:
            raise AddressUsageError(f"{_flag(param, 'address')} {text!r}: {problem}")
        return text


class ListenAddress(click.ParamType):
    """A ``HOST:PORT`` flag (TCP, port 0 for a free one), checked before anything listens."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = listen_problem(text)
        if problem is not None:
            raise AddressUsageError(f"{_flag(param, 'address')} {text!r}: {problem}")
        return text


_SERVE_REASONS = {
    errno.EADDRINUSE: "the address is in use (another process serves there; pick another port, or {free} "
                      "for a free one)",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address",
    errno.ENODEV: "no interface or address of that name on this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.ENOENT: "its folder does not exist",
    errno.ENAMETOOLONG: "the path is too long",
}


def serve_error(flag: str, value: str, error: OSError | Any) -> ServeError:
    """A failure to bind ``value`` (``OSError`` or ``zmq.ZMQError``) as one line."""
    if isinstance(error, socket.gaierror):  # a host name that does not resolve
        reason = "no interface or address of that name on this machine"
    else:
        number = getattr(error, "errno", None)
        reason = _SERVE_REASONS.get(number) if isinstance(number, int) else None
        reason = reason or getattr(error, "strerror", None) or str(error)
    reason = reason.replace("{free}", "*" if "://" in value else "0")
    return ServeError(f"{flag} {value!r}: cannot serve there: {reason}")


def bind_broker(server: Any) -> dict[str, str]:
    """``server.bind()`` for a :class:`broker.Broker`, a failure as one line naming the
    flag whose socket would not bind (they bind in this order: frontend, backend, trace
    input, trace); the server is closed then."""
    import zmq

    try:
        return dict(server.bind())
    except zmq.ZMQError as error:
        sockets = [("--frontend", "frontend", server.frontend), ("--backend", "backend", server.backend)]
        if server.trace_proxy is not None:
            sockets += [("--trace-input", "trace_input", server.trace_proxy.input),
                        ("--trace", "trace", server.trace_proxy.output)]
        flag, name = next(((flag, name) for flag, name, socket in sockets
                           if not socket.getsockopt_string(zmq.LAST_ENDPOINT)), ("--frontend", "frontend"))
        server.close()
        raise serve_error(flag, server.addresses[name], error) from None


# ---------------------------------------------------------------------- exposure
def _loopback(host: str) -> bool:
    host = host.strip("[]").split("%")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or an interface we cannot judge: assume others can reach it


def exposed(bound: Mapping[str, str]) -> list[str]:
    """Which of the ``bound`` sockets (flag -> bound address, a ZeroMQ endpoint or
    ``HOST:PORT``) other machines may reach: anything TCP that is not loopback (``*``,
    ``0.0.0.0`` and ``::`` are every interface). ``ipc://`` and ``inproc://`` stay on
    this machine. Returns ``"FLAG ADDRESS"`` items, in the given order."""
    found = []
    for flag, address in bound.items():
        if not address:
            continue
        scheme, separator, rest = address.partition("://")
        if separator and scheme != "tcp":
            continue
        host = (rest if separator else address).rpartition(":")[0]
        if not _loopback(host):
            found.append(f"{flag} {address}")
    return found


def exposure_warning(command: str, items: list[str], *, remedy: str, who: str) -> str | None:
    """The one warning line a server prints when ``items`` (from :func:`exposed`) are
    reachable from other machines without protection, or None."""
    if not items:
        return None
    verb = "is" if len(items) == 1 else "are"
    return (f"{command}: warning: {', '.join(items)} {verb} reachable from other machines without protection: "
            f"{who}; {remedy}")
