"""The gateway's ``--allow CIDR`` list: the only access control for NetSecGame clients,
which carry no keys (README "NetSecGame agents through the gateway"; `arena gateway
--allow`, broker/gateway.py ``Gateway(allow=...)``).

A real broker and a real world worker run in threads (tests/threaded_stack.py, on loopback `*`
ports), the gateway in a thread on a free port, and a raw TCP client speaks NetSecGame's
framing (tests/test_gateway.py). A refused client must get nothing: its connection is
closed before any byte is served and no seat is taken (checked with the broker's STATUS).
Every wait is bounded; every thread and socket is closed by the fixtures."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.status import query_status
from broker.gateway import Gateway

from .threaded_stack import ThreadedStack

ROOT = Path(__file__).resolve().parents[1]
SOLO = ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml"
SOLO_TASK = "scenario1_small_attacker"
WAIT = 10.0  # seconds: the bound of every blocking wait
JOIN = json.dumps({"action_type": "ActionType.JoinGame",
                   "parameters": {"agent_info": {"name": "Outsider", "role": "Attacker"}}})


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll another thread's state (no event to wait on) until ``condition()`` is truthy."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def frontend() -> Iterator[str]:
    """A broker and one world serving the solo attacker task; yields the frontend."""
    with ThreadedStack([str(SOLO)], name="w-allow") as stack:
        yield stack.endpoints["frontend"]


@pytest.fixture
def gateway(frontend: str) -> Iterator[Callable[..., tuple[Gateway, tuple[str, int]]]]:
    """Start gateways (each in its own thread) on free ports; stopped and joined at the end."""
    running: list[tuple[Gateway, threading.Thread]] = []

    def start(host: str = "127.0.0.1", **options: Any) -> tuple[Gateway, tuple[str, int]]:
        server = Gateway(frontend, (host, 0), task=SOLO_TASK, **options)
        address = server.bind()
        thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        thread.start()
        running.append((server, thread))
        return server, address

    yield start
    for server, thread in running:
        server.stop()
        thread.join(WAIT)
        assert not thread.is_alive(), "the gateway did not stop"
        server.close()


def _seats(frontend: str) -> dict[str, dict[str, int]]:
    """The broker's games and their taken seats (STATUS), roles with none left out."""
    status = query_status(frontend)
    assert status, "the broker answers STATUS"
    return {g["game"]: {role: n for role, n in g["seats"].items() if n} for g in status.get("games", [])
            if any(g["seats"].values())}


def _join_over_tcp(address: tuple[str, int]) -> bytes:
    """Connect, send a JoinGame, and return every byte the gateway sends before it closes
    the connection (b"" when it closes at once); a reply ends the read at its ``EOF``."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(address)
        received = b""
        try:
            sock.sendall(JOIN.encode())
            while b"EOF" not in received:
                chunk = sock.recv(8192)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed with our JoinGame unread: refused, nothing served
        return received


def test_a_client_outside_the_allow_list_is_closed_unserved_and_takes_no_seat(gateway, frontend: str) -> None:
    """``allow=["10.0.0.0/8"]``: a loopback client is refused: closed, not one byte sent,
    its JoinGame never reaches the broker (no game, no seat in STATUS)."""
    server, address = gateway(allow=["10.0.0.0/8"])
    before = _seats(frontend)
    for _ in range(3):  # refused every time, not only the first
        received = _join_over_tcp(address)
        assert received == b"", f"a client outside the allow-list was served: {received[:120]!r}"
    assert server.connections == 0 and server.in_flight == 0
    time.sleep(0.3)  # a JoinGame that slipped through would have created its game by now
    assert _seats(frontend) == before, "a refused client took a seat"


def test_a_client_inside_the_allow_list_is_served(gateway, frontend: str) -> None:
    """``allow=["127.0.0.0/8"]`` (and a list where only a later network matches): the
    loopback client joins (CREATED) and its seat shows in STATUS until it leaves."""
    _, address = gateway(allow=["10.0.0.0/8", "127.0.0.0/8"], game="allowed")
    with socket.create_connection(address, timeout=WAIT) as sock:
        sock.sendall(JOIN.encode())
        received = b""
        while b"EOF" not in received:
            chunk = sock.recv(8192)
            assert chunk, "closed before the reply"
            received += chunk
        reply = json.loads(received.replace(b"EOF", b""))
        assert reply["status"] == "GameStatus.CREATED", reply
        assert _seats(frontend).get("allowed") == {"Attacker": 1}
    _wait_for(lambda: "allowed" not in _seats(frontend), "the seat quit when the connection closed")


def test_no_allow_list_serves_everyone_and_an_empty_one_nobody(gateway) -> None:
    """``allow=None`` (the default, no ``--allow``) admits all; ``allow=[]`` admits none."""
    _, open_address = gateway()
    assert b"GameStatus.CREATED" in _join_over_tcp(open_address)
    _, closed_address = gateway(allow=[])
    assert _join_over_tcp(closed_address) == b""


@pytest.mark.parametrize(("allow", "host", "expected"), [
    (["127.0.0.0/8"], "127.0.0.1", True),
    (["127.0.0.0/8"], "127.255.255.254", True),
    (["127.0.0.0/8"], "128.0.0.1", False),
    (["10.0.0.0/8"], "127.0.0.1", False),
    (["10.0.0.5/8"], "10.200.1.1", True),             # host bits in the CIDR are ignored (strict=False)
    (["192.168.1.7"], "192.168.1.7", True),           # a bare address is a /32
    (["192.168.1.7"], "192.168.1.8", False),
    (["10.0.0.0/8", "::1/128"], "::1", True),
    (["::1/128"], "::2", False),
    (["127.0.0.0/8"], "::1", False),                  # IPv6 loopback is not in an IPv4 network
    (["fe80::/10"], "fe80::1%eth0", True),            # a scope id is not part of the address
    (["fe80::/10"], "fe90::1", True),
    (["fe80::/10"], "fec0::1", False),
    (["0.0.0.0/0"], "203.0.113.9", True),
    (["0.0.0.0/0"], "2001:db8::1", False),
    (["::/0"], "2001:db8::1", True),
    (["127.0.0.0/8"], "", False),                     # bad hosts are refused, never an exception
    (["127.0.0.0/8"], "localhost", False),
    (["127.0.0.0/8"], "127.0.0.1.5", False),
    (["127.0.0.0/8"], "999.0.0.1", False),
    ([], "127.0.0.1", False),
])
def test_allowed_matches_addresses_against_the_networks(allow: list[str], host: str, expected: bool) -> None:
    """``Gateway._allowed``: the peer address (as ``accept`` reports it) in any listed network."""
    server = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), allow=allow)
    try:
        assert server._allowed(host) is expected
    finally:
        server.close()


def test_a_malformed_cidr_is_refused_when_the_gateway_is_made() -> None:
    """A typo in ``--allow`` must fail at start, not admit or refuse everyone silently."""
    for bad in ("10.0.0.0/33", "not-a-network", "10.0.0/8x"):
        with pytest.raises(ValueError):
            Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), allow=[bad])
