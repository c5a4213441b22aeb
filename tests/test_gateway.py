"""The NetSecGame gateway end to end: a real broker and world (in threads:
tests/threaded_stack.py; `arena gateway` as a process is in tests/test_integration.py), the
gateway in a thread (its own ZeroMQ context) on a free port, and a raw TCP client that
speaks exactly NetSecGame's framing (reference netsecgame.md §2.1): bare JSON out; read
until ``EOF``, delete every ``EOF``, ``json.loads``. Every wait is bounded; every socket,
thread and process is closed by the fixtures."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import BaseAgent, generate_valid_actions
from agents.monitor import TraceMonitor
from agents.status import query_status
from broker.gateway import MALFORMED_MESSAGE, Gateway
from protocol import AgentRole

from .threaded_stack import ThreadedStack
from .transcripts import load_transcript, normalize_reply

ROOT = Path(__file__).resolve().parents[1]
SOLO = ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml"
DEFAULT = ROOT / "world" / "tasks" / "default.yaml"
SOLO_TASK = "scenario1_small_attacker"
WAIT = 30.0  # seconds: the bound of every blocking read

# The recorded transcript's requests: the join and the five-step winning attack.
_SENT = [raw for direction, raw in load_transcript("transcript_scenario1_small.jsonl") if direction == "send"]
JOIN, SCAN, FIND_SERVICES, EXPLOIT, FIND_DATA, EXFILTRATE, RESET, QUIT = _SENT


def join_request(name: str = "GatewayAgent", role: str = "Attacker") -> str:
    return json.dumps({"action_type": "ActionType.JoinGame",
                       "parameters": {"agent_info": {"name": name, "role": role}}})


class NetSecGameClient:
    """NetSecGame's client framing (BaseAgent.communicate), over a plain TCP socket."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT)
        self._buffer = b""
        self.raw: list[bytes] = []  # every reply as it came, terminator included

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def receive(self) -> dict[str, Any]:
        while b"EOF" not in self._buffer:
            chunk = self.sock.recv(8192)
            if not chunk:
                raise ConnectionError("Unfinished connection.")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"EOF")
        self.raw.append(message + b"EOF")
        return json.loads((message + b"EOF").replace(b"EOF", b""))  # upstream deletes every EOF

    def request(self, data: str | bytes) -> dict[str, Any]:
        self.send(data)
        return self.receive()

    def closed_by_server(self) -> bool:
        """True once the server closed the connection (EOF or reset), within WAIT."""
        try:
            return self.sock.recv(8192) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[ThreadedStack]:
    with ThreadedStack([str(SOLO), str(DEFAULT)], name="w-gateway") as running:
        yield running


@pytest.fixture
def gateway(stack: ThreadedStack) -> Iterator[Callable[..., tuple[Gateway, tuple[str, int]]]]:
    """Start gateways (each in its own thread) on free ports; stopped and joined at the end."""
    running: list[tuple[Gateway, threading.Thread]] = []

    def start(broker: str | None = None, **options: Any) -> tuple[Gateway, tuple[str, int]]:
        server = Gateway(broker or stack.endpoints["frontend"], ("127.0.0.1", 0), **{"task": SOLO_TASK, **options})
        address = server.bind()
        thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        thread.start()
        running.append((server, thread))
        return server, address

    yield start
    for server, thread in running:
        server.stop()
        thread.join(10)
        assert not thread.is_alive(), "the gateway did not stop"
        server.close()


@pytest.fixture
def clients() -> Iterator[Callable[[tuple[str, int]], NetSecGameClient]]:
    opened: list[NetSecGameClient] = []

    def connect(address: tuple[str, int]) -> NetSecGameClient:
        opened.append(NetSecGameClient(address))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll another process's state (no event to wait on) until ``condition()`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


def games(stack: ThreadedStack) -> dict[str, dict[str, int]]:
    """The broker's games and their taken seats per role (roles with none left out)."""
    return {g["game"]: {role: n for role, n in g["seats"].items() if n}
            for g in query_status(stack.endpoints["frontend"]).get("games", [])}


def comparable(reply: dict[str, Any]) -> dict[str, Any]:
    """Normalised (states as sets; to_agent and configuration_hash dropped), our reason dropped."""
    result = normalize_reply(reply)
    if isinstance(result.get("message"), dict):
        result["message"].pop("reason", None)
    return result


def replay(client: NetSecGameClient, name: str) -> tuple[list[tuple[int, dict, dict]], list[dict[str, Any]]]:
    """Send the transcript's requests; (index, ours, theirs) per recorded reply, and our
    replies to requests the transcript recorded no reply for."""
    compared, unrecorded, index, waiting = [], [], -1, False
    for direction, raw in load_transcript(name):
        if direction == "send":
            if waiting:
                unrecorded.append(client.receive())
            client.send(raw)
            index, waiting = index + 1, True
        else:
            compared.append((index, comparable(client.receive()), comparable(json.loads(raw))))
            waiting = False
    if waiting:
        unrecorded.append(client.receive())
    return compared, unrecorded


# ---------------------------------------------------------------------------- transcripts
def test_transcript_replay_matches_netsecgame(gateway, clients) -> None:
    """Join, the winning attack (reward 99), a seeded reset with the trajectory: every reply
    as NetSecGame's; the final QuitGame, which upstream leaves unanswered, is answered."""
    _, address = gateway()
    client = clients(address)
    compared, unrecorded = replay(client, "transcript_scenario1_small.jsonl")
    assert len(compared) == 7
    for index, ours, theirs in compared:
        assert ours == theirs, f"reply to request {index} differs"
    (quit_reply,) = unrecorded
    assert quit_reply["status"] == "GameStatus.OK" and "quit" in quit_reply["message"]["message"]
    reply = json.loads(client.raw[0].replace(b"EOF", b""))
    assert reply["to_agent"] == list(client.sock.getsockname()) and len(reply["message"]["configuration_hash"]) == 64
    assert not {"seat", "world", "game", "task"} & set(reply["message"]), "our join keys are stripped"


def test_edge_case_transcript(gateway, clients) -> None:
    """Duplicate join, a truncated request (answered after the incomplete timeout, not
    hung), an unknown action, impossible actions, the step limit, FORBIDDEN after the end,
    a seeded reset: as recorded. The seedless reset that stops NetSecGame 0.2.0 is
    RESET_DONE here (DESIGN §3)."""
    _, address = gateway()
    client = clients(address)
    started = time.monotonic()
    compared, unrecorded = replay(client, "transcript_scenario1_small_edgecases.jsonl")
    assert time.monotonic() - started < WAIT and not unrecorded
    *same, (_, last_ours, last_theirs) = compared
    assert len(same) == 56
    for index, ours, theirs in same:
        assert ours == theirs, f"reply to request {index} differs"
    assert last_theirs["status"] == "GameStatus.BAD_REQUEST"
    assert last_ours["status"] == "GameStatus.RESET_DONE" and last_ours["observation"]["end"] is False
    truncated = json.loads(client.raw[2].replace(b"EOF", b""))
    assert truncated["status"] == "GameStatus.BAD_REQUEST" and truncated["observation"] is None
    assert truncated["message"]["message"] == MALFORMED_MESSAGE and "incomplete" in truncated["message"]["reason"]
    unknown = json.loads(client.raw[3].replace(b"EOF", b""))
    assert "Teleport" in unknown["message"]["reason"]


# ---------------------------------------------------------------------------- robustness
def test_requests_in_one_write_are_answered_in_order(gateway, clients) -> None:
    _, address = gateway()
    client = clients(address)
    client.send(JOIN + SCAN + "\n  " + FIND_SERVICES)
    joined, scanned, found = client.receive(), client.receive(), client.receive()
    assert joined["status"] == "GameStatus.CREATED"
    assert scanned["status"] == found["status"] == "GameStatus.OK"
    assert scanned["observation"]["state"]["known_services"] == {}
    assert "192.168.1.2" in found["observation"]["state"]["known_services"]


def test_many_pipelined_requests_beyond_the_queue_cap(gateway, clients) -> None:
    """Reading pauses while the connection's queue is full and resumes as it drains."""
    _, address = gateway(max_queue=8)
    client = clients(address)
    client.send(JOIN + SCAN * 30 + QUIT)
    assert client.receive()["status"] == "GameStatus.CREATED"
    rewards = [client.receive()["observation"]["reward"] for _ in range(30)]
    assert rewards == [-1] * 30
    assert client.receive()["message"]["message"].endswith("quit the game.")


def test_request_split_across_writes_gets_one_reply(gateway, clients) -> None:
    _, address = gateway()
    client = clients(address)
    assert client.request(JOIN)["status"] == "GameStatus.CREATED"
    data = SCAN.encode()
    for start in range(0, len(data), 25):
        client.send(data[start:start + 25])
        time.sleep(0.02)  # pauses shorter than the 100 ms incomplete timeout
    assert client.receive()["observation"]["reward"] == -1
    quit_reply = client.request(QUIT)  # the next reply is the quit's: the split scan got exactly one
    assert quit_reply["status"] == "GameStatus.OK" and "quit" in quit_reply["message"]["message"]


def test_incomplete_request_is_answered_after_the_timeout(gateway, clients) -> None:
    """README: an unfinished request is answered "Malformed Action" after 100 ms (the
    default ``incomplete_timeout``); a 1 s timeout fails the bound."""
    _, address = gateway()
    client = clients(address)
    assert client.request(JOIN)["status"] == "GameStatus.CREATED"
    started = time.monotonic()
    reply = client.request('{"action_type": "ActionType.ScanNetwork", "parameters": ')
    elapsed = time.monotonic() - started
    assert reply["status"] == "GameStatus.BAD_REQUEST" and reply["message"]["message"] == MALFORMED_MESSAGE
    assert 0.099 <= elapsed < 0.5, f"answered after {elapsed:.3f} s, not the default 0.1 s"
    assert client.request(SCAN)["status"] == "GameStatus.OK", "the connection goes on"


def test_oversized_request_is_refused_and_the_connection_closed(gateway, clients) -> None:
    _, address = gateway()
    client = clients(address)
    client.send('{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": {"name": "'
                + "x" * (1 << 20) + '", "role": "Attacker"}}}')
    reply = client.receive()
    assert reply["status"] == "GameStatus.BAD_REQUEST" and "1048576 bytes" in reply["message"]["reason"]
    assert client.closed_by_server()


def test_invalid_input_gets_bad_request(gateway, clients) -> None:
    _, address = gateway()
    client = clients(address)
    cases = {
        b'{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": {"name": "\xff\xfe", '
        b'"role": "Attacker"}}}': "UTF-8",
        b"this is not json": "invalid JSON",
        b'{"action_type": "ActionType.ScanNetwork", "parameters": {"source_host": {"ip": "1.2.3.4"}}}':
            "target_network",
        b'[1, 2]': "JSON object",
        b'{"action_type": "ActionType.ResetGame", "parameters": {"seed": ' + b"9" * 5000 + b"}}": "unparsable JSON",
        SCAN.encode(): "before JoinGame",
        join_request(role="Pirate").encode(): "agent_info.role",
    }
    for request, reason in cases.items():
        reply = client.request(request)
        assert reply["status"] == "GameStatus.BAD_REQUEST", request
        assert reason in reply["message"]["reason"], (request, reply)
    assert client.request(JOIN)["status"] == "GameStatus.CREATED"
    huge_seed = client.request('{"action_type": "ActionType.ResetGame", "parameters": {"seed": ' + "9" * 400 + "}}")
    assert huge_seed["status"] == "GameStatus.BAD_REQUEST" and huge_seed["message"]["message"] == MALFORMED_MESSAGE
    again = client.request(JOIN)
    assert again == {"to_agent": again["to_agent"], "status": "GameStatus.BAD_REQUEST",
                     "message": "Agent already exists."}


def test_eof_inside_a_string_cannot_corrupt_a_reply(gateway, clients) -> None:
    _, address = gateway()
    client = clients(address)
    reply = client.request(join_request("EOF agent EOF"))
    assert reply["status"] == "GameStatus.CREATED"
    assert reply["message"]["message"] == "Welcome EOF_agent_EOF, registred as AgentRole.Attacker"
    raw = client.raw[-1]
    assert raw.count(b"EOF") == 1 and raw.endswith(b"EOF")


def test_closed_connections_quit_their_seats(stack, gateway, clients) -> None:
    _, address = gateway(game="leaving")
    client = clients(address)
    assert client.request(JOIN)["status"] == "GameStatus.CREATED"
    assert games(stack).get("leaving") == {"Attacker": 1}
    client.close()
    wait_for(lambda: "leaving" not in games(stack))


def test_connection_closed_while_its_join_is_held(stack, gateway, clients) -> None:
    """A defender's join is held until an attacker comes; its agent leaves meanwhile. When
    the game starts, the gateway quits the seat it was given."""
    server, address = gateway(task=None, game="orphan")
    client = clients(address)
    client.send(join_request("Leaver", "Defender"))
    wait_for(lambda: games(stack).get("orphan") == {"Defender": 1})
    client.close()
    wait_for(lambda: server.connections == 0)
    attacker = BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, game="orphan", timeout=WAIT)
    try:
        assert attacker.register() is not None
        wait_for(lambda: games(stack).get("orphan") == {"Attacker": 1})
    finally:
        attacker.terminate_connection()
    assert server.in_flight == 0


def test_gateway_survives_abuse_and_serves_a_fresh_connection(gateway, clients) -> None:
    _, address = gateway()
    for data in (b"{" * 5000, b'{"a": "\\', b"\x00\xff" * 100, b"}}}]]]", JOIN.encode() + b"{"):
        abuser = clients(address)
        abuser.send(data)
        abuser.close()
    client = clients(address)
    assert client.request(JOIN)["status"] == "GameStatus.CREATED"
    assert client.request(SCAN)["observation"]["reward"] == -1


def test_connection_cap(gateway, clients) -> None:
    _, address = gateway(max_connections=1)
    first = clients(address)
    assert first.request(JOIN)["status"] == "GameStatus.CREATED"
    second = clients(address)
    with contextlib.suppress(OSError):  # refused: a best-effort BAD_REQUEST, then closed (or reset)
        assert "Too many connections" in second.request(JOIN)["message"]["message"]
    first.close()

    def joins() -> bool:
        with contextlib.suppress(OSError):
            return clients(address).request(JOIN)["status"] == "GameStatus.CREATED"
        return False

    wait_for(joins)


def test_a_broker_that_never_answers_gets_bad_request(gateway, clients) -> None:
    with socket.socket() as unused:  # a port nobody serves: the DEALER's request goes nowhere
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    _, address = gateway(broker=f"tcp://127.0.0.1:{port}", reply_timeout=0.3)
    client = clients(address)
    started = time.monotonic()
    reply = client.request(JOIN)
    assert reply["status"] == "GameStatus.BAD_REQUEST" and "did not answer within 0.3 s" in reply["message"]["message"]
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.2, f"answered after {elapsed:.2f} s, not the 0.3 s reply timeout"
    assert client.request(SCAN)["status"] == "GameStatus.BAD_REQUEST", "not joined: the next request is answered"


# ---------------------------------------------------------------------------- an ordinary seat
def test_netsecgame_attacker_and_msgpack_defender_share_a_named_game(stack, gateway, clients) -> None:
    """The default task; the defender joins "duel" first (its join is held), then the
    attacker through the gateway: both start together. The attacker wins (99); the
    defender's next step tells it its episode ended (-10, Fail; reference §3.4)."""
    _, address = gateway(task=None, game="duel")
    defender = BaseAgent(stack.endpoints["frontend"], AgentRole.Defender, game="duel", timeout=WAIT)
    joined: list[Any] = []
    thread = threading.Thread(target=lambda: joined.append(defender.register()), daemon=True)
    try:
        thread.start()
        wait_for(lambda: games(stack).get("duel", {}).get("Defender"))
        attacker = clients(address)
        assert attacker.request(join_request("Red"))["status"] == "GameStatus.CREATED"
        thread.join(WAIT)
        assert joined and joined[0] is not None, defender.last_error
        for request in (SCAN, FIND_SERVICES, EXPLOIT, FIND_DATA):
            assert attacker.request(request)["observation"]["end"] is False
        won = attacker.request(EXFILTRATE)["observation"]
        assert (won["reward"], won["end"], won["info"]) == (99, True, {"end_reason": "AgentStatus.Success"})
        action = sorted(generate_valid_actions(joined[0].state), key=str)[0]
        told = defender.make_step(action)
        assert told is not None, defender.last_error
        assert (told.reward, told.end, told.info) == (-10, True, {"end_reason": "AgentStatus.Fail"})
    finally:
        thread.join(WAIT)
        defender.terminate_connection()


def test_gateway_steps_appear_on_the_trace(stack, gateway, clients) -> None:
    _, address = gateway(game="traced")
    with TraceMonitor(stack.endpoints["trace"]) as monitor:
        assert monitor.wait_ready() is not None
        client = clients(address)
        assert client.request(JOIN)["status"] == "GameStatus.CREATED"
        client.request(SCAN)
        client.request(FIND_SERVICES)
        steps: list[dict[str, Any]] = []
        for _, message in monitor.receive(10):
            steps += [e for e in message.get("events", ()) if e.get("kind") == "step" and e["game"] == "traced"]
            if len(steps) >= 2:
                break
    assert [(e["step"], e["reward"], e["role"]) for e in steps] == [(1, -1, "Attacker"), (2, -1, "Attacker")]
    assert steps[0]["action"] == [0, "192.168.2.2", ["192.168.1.0", 24]]
