"""The broker's door when CURVE is on: a ZAP authenticator with a client-key allow-list,
and the key files ``arena keys`` writes.

A CURVE server with no ZAP handler lets in anyone who knows its public key; so the
broker runs pyzmq's authenticator (a thread of its own: it only sees handshakes, never
a step) in the context of its sockets, and their ZAP domain with ZAP_ENFORCE_DOMAIN makes
libzmq refuse every client should the authenticator not be running.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     created = write_keys(directory, ["agent"])
...     sorted(path.relative_to(directory).as_posix() for path in created)
['allowed/agent.key', 'clients/agent.key', 'clients/agent.key_secret', 'server.key', 'server.key_secret']
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from protocol.security import ZAP_DOMAIN, CurveKeys, CurveServer

__all__ = ["DEFAULT_CLIENTS", "start_authenticator", "write_keys"]

log = logging.getLogger(__name__)

#: The clients ``arena keys`` makes a key pair for unless told otherwise.
DEFAULT_CLIENTS = ("world", "agent", "gateway", "monitor")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class _AllowList:
    """Answers the authenticator: is this client key (Z85) in the allow-list?"""

    def __init__(self, keys: frozenset[bytes]) -> None:
        self.keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        log.warning("CURVE client refused: its public key %s... is not in the allow-list", key[:8].decode())
        return False


def start_authenticator(context: zmq.Context, curve: CurveServer) -> ThreadAuthenticator:
    """Start ZAP for ``context``: only ``curve.allowed_keys`` get in. Stop it before
    terminating the context."""
    if not curve.allowed_keys:
        log.warning("the CURVE allow-list %s is empty: no client can connect", curve.allowed)
    authenticator = ThreadAuthenticator(context, log=logging.getLogger("broker.zap"))
    authenticator.start()
    authenticator.configure_curve_callback(ZAP_DOMAIN, _AllowList(curve.allowed_keys))
    log.info("CURVE on: %d client keys allowed (from %s)", len(curve.allowed_keys), curve.allowed)
    return authenticator


def write_keys(directory: str | os.PathLike[str], clients: Iterable[str] = DEFAULT_CLIENTS) -> list[Path]:
    """Create the server's key pair and a pair per client in ``directory`` (the
    :class:`~protocol.security.CurveKeys` layout), each client's public certificate also
    in the allow-list. Files already there are kept, so a later call adds clients
    without changing anyone's keys. Returns the files created. Secret files are 0600,
    written in a private directory first so they are never readable by others."""
    names = list(dict.fromkeys(clients))
    for name in names:
        if not _NAME.fullmatch(name) or name == "server":
            raise ValueError(f"bad client name {name!r}: letters, digits, '.', '_' or '-', not 'server'")
    keys = CurveKeys(directory)
    keys.directory.mkdir(parents=True, exist_ok=True)
    keys.clients.mkdir(mode=0o700, exist_ok=True)
    keys.allowed.mkdir(exist_ok=True)
    created: list[Path] = []
    if not keys.server_secret.exists():
        created += _key_pair(keys.directory, "server")
    for name in names:
        if not keys.client_secret(name).exists():
            created += _key_pair(keys.clients, name)
        allowed = keys.allowed / f"{name}.key"
        if not allowed.exists():
            shutil.copyfile(keys.client_public(name), allowed)
            created.append(allowed)
    return created


def _key_pair(directory: Path, name: str) -> list[Path]:
    with tempfile.TemporaryDirectory(dir=directory, prefix=".keys-") as private:  # mode 0700
        public, secret = (Path(path) for path in zmq.auth.create_certificates(private, name))
        secret.chmod(0o600)
        targets = [directory / public.name, directory / secret.name]
        public.replace(targets[0])
        secret.replace(targets[1])
    return targets
