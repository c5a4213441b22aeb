"""CURVE keys: who may talk to the broker when it is reachable from other machines.

The broker's sockets are CURVE servers with one key pair; every client (world, agent,
gateway, monitor) is a CURVE client holding the server's public key and a key pair of
its own, and the broker admits only client keys found in an allow-list directory (ZAP,
the "Ironhouse" model; the authenticator itself is ``broker.security``). Keys live in
ZeroMQ certificate files (``NAME.key`` public, ``NAME.key_secret`` secret), as
``arena keys`` writes them (:class:`CurveKeys` is that layout).

Nothing here imports ZeroMQ (DESIGN §1: ``protocol`` stays attrs and msgpack): the files
are read here, and keys are set through pyzmq's attribute-style socket options.

>>> keys = CurveKeys("keys")
>>> str(keys.server_secret), str(keys.allowed), str(keys.client_secret("agent"))
('keys/server.key_secret', 'keys/allowed', 'keys/clients/agent.key_secret')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

__all__ = ["ZAP_DOMAIN", "CurveClient", "CurveKeys", "CurveServer", "read_certificate"]

#: The ZAP domain of the broker's CURVE sockets. Setting a domain (with ZAP_ENFORCE_DOMAIN)
#: makes libzmq ask the authenticator for every handshake and refuse all when none runs;
#: without one, ZAP_ENFORCE_DOMAIN would skip authentication altogether.
ZAP_DOMAIN = "arena"

_Z85 = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
_KEY_LENGTH = 40  # a 32-byte Curve25519 key in Z85

PathLike = str | os.PathLike[str]


def _key(value: bytes, what: str, path: PathLike) -> bytes:
    if len(value) != _KEY_LENGTH or not set(value) <= _Z85:
        raise ValueError(f"{os.fspath(path)}: the {what} is not a 40-character Z85 key")
    return value


def read_certificate(path: PathLike) -> tuple[bytes, bytes | None]:
    """``(public key, secret key or None)`` from a ZeroMQ certificate file, both Z85.

    A missing, unreadable or malformed file is a ValueError that names it."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{os.fspath(path)}: cannot read the certificate: {error.strerror or error}") from None
    found: dict[bytes, bytes] = {}
    for line in text.splitlines():
        name, equals, value = line.strip().partition(b"=")
        name = name.strip()
        if equals and name in (b"public-key", b"secret-key"):
            found[name] = value.strip().strip(b"\"'")
    if b"public-key" not in found:
        raise ValueError(f"{os.fspath(path)}: not a ZeroMQ certificate (no public-key)")
    secret = found.get(b"secret-key")
    return _key(found[b"public-key"], "public key", path), None if secret is None else _key(secret, "secret key", path)


def _secret_certificate(path: PathLike) -> tuple[bytes, bytes]:
    public, secret = read_certificate(path)
    if secret is None:
        raise ValueError(f"{os.fspath(path)}: a public certificate; this needs the secret one (NAME.key_secret)")
    return public, secret


@attrs.frozen
class CurveServer:
    """The broker's side: its key pair and the directory of allowed client public
    certificates (``*.key``; read when the broker starts)."""

    public_key: bytes = attrs.field(repr=False)
    secret_key: bytes = attrs.field(repr=False)
    allowed: Path
    allowed_keys: frozenset[bytes] = attrs.field(repr=False)

    @classmethod
    def load(cls, secret_file: PathLike, allowed_dir: PathLike) -> CurveServer:
        """Read the server's secret certificate and check every allowed certificate
        (a malformed one is a ValueError here, not a silently skipped client)."""
        public, secret = _secret_certificate(secret_file)
        directory = Path(allowed_dir)
        if not directory.is_dir():
            raise ValueError(f"{directory}: the client allow-list is not a directory")
        keys = frozenset(read_certificate(path)[0] for path in sorted(directory.glob("*.key")))
        return cls(public, secret, directory, keys)

    def apply(self, socket: Any) -> None:
        """Make ``socket`` a CURVE server asking ZAP about every client (before bind)."""
        socket.curve_secretkey = self.secret_key
        socket.curve_publickey = self.public_key
        socket.curve_server = True
        socket.zap_domain = ZAP_DOMAIN.encode()
        socket.zap_enforce_domain = True


@attrs.frozen
class CurveClient:
    """A client's side: the server's public key and the client's own key pair."""

    server_key: bytes = attrs.field(repr=False)
    public_key: bytes = attrs.field(repr=False)
    secret_key: bytes = attrs.field(repr=False)

    @classmethod
    def load(cls, server_file: PathLike, secret_file: PathLike) -> CurveClient:
        """Read the server's public certificate and the client's secret certificate."""
        server_key, _ = read_certificate(server_file)
        public, secret = _secret_certificate(secret_file)
        return cls(server_key, public, secret)

    def apply(self, socket: Any) -> None:
        """Make ``socket`` a CURVE client of the server (before connect)."""
        socket.curve_serverkey = self.server_key
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key


@attrs.frozen
class CurveKeys:
    """The layout of an ``arena keys`` directory: ``server.key`` (for every client),
    ``server.key_secret`` (the broker only), ``clients/NAME.key[_secret]`` (one pair per
    client) and ``allowed/NAME.key`` (the allow-list: delete a file to refuse a client)."""

    directory: Path = attrs.field(converter=Path)

    @property
    def server_public(self) -> Path:
        return self.directory / "server.key"

    @property
    def server_secret(self) -> Path:
        return self.directory / "server.key_secret"

    @property
    def allowed(self) -> Path:
        return self.directory / "allowed"

    @property
    def clients(self) -> Path:
        return self.directory / "clients"

    def client_secret(self, name: str) -> Path:
        return self.clients / f"{name}.key_secret"

    def client_public(self, name: str) -> Path:
        return self.clients / f"{name}.key"

    def server(self) -> CurveServer:
        return CurveServer.load(self.server_secret, self.allowed)

    def client(self, name: str) -> CurveClient:
        return CurveClient.load(self.server_public, self.client_secret(name))
