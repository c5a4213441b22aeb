"""Shared fixtures. ``games`` makes GameSessions whose every request is tracked:
at the end of each test, every request must have had exactly one reply."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol import IP, Action, ActionType, AgentInfo, AgentRole, Data, Network, Service
from world import GameSession, Reply, TaskConfig, load_task

TASKS = Path(__file__).resolve().parents[1] / "world" / "tasks"


class GameHarness:
    """Drives one GameSession like a worker loop would, and checks the reply rule."""

    def __init__(self, session: GameSession) -> None:
        self.session = session
        self.now = 0.0
        self._ids = itertools.count()
        self.sent: dict[int, Hashable] = {}
        self.answered: dict[int, Reply] = {}
        self.inbox: dict[Hashable, list[Reply]] = {}

    def _collect(self, replies: list[Reply]) -> list[Reply]:
        for reply in replies:
            assert reply.request in self.sent, f"reply to an unknown request: {reply}"
            assert reply.request not in self.answered, f"second reply to request {reply.request}"
            assert self.sent[reply.request] == reply.seat, "reply sent to the wrong seat"
            self.answered[reply.request] = reply
            self.inbox.setdefault(reply.seat, []).append(reply)
        return replies

    def send(self, seat: Hashable, action: Any) -> int:
        request = next(self._ids)
        self.sent[request] = seat
        self._collect(self.session.handle(seat, action, self.now, request))
        return request

    def reply(self, request: int) -> Reply | None:
        return self.answered.get(request)

    def call(self, seat: Hashable, action: Any) -> Reply:
        """Send and expect an immediate reply."""
        request = self.send(seat, action)
        reply = self.reply(request)
        assert reply is not None, f"request {request} ({action}) is held, expected a reply"
        return reply

    def advance(self, seconds: float) -> list[Reply]:
        self.now += seconds
        return self._collect(self.session.tick(self.now))

    def unanswered(self) -> list[int]:
        return [request for request in self.sent if request not in self.answered]


@pytest.fixture
def games() -> Iterator[Any]:
    """``games(task, seed=42)`` -> GameHarness; checks one reply per request at teardown."""
    made: list[GameHarness] = []

    def make(task: TaskConfig | str | None = None, seed: int = 42) -> GameHarness:
        if not isinstance(task, TaskConfig):
            task = load_task(task)
        harness = GameHarness(GameSession(task, seed=seed, name=f"test-{len(made)}"))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        assert harness.unanswered() == [], f"requests left unanswered: {harness.unanswered()}"


def join(name: str = "agent", role: str = "Attacker") -> Action:
    return Action(ActionType.JoinGame, {"agent_info": AgentInfo(name, AgentRole.from_string(role))})


def reset(seed: int | None = None, *, trajectory: bool = False, randomize: bool = False) -> Action:
    return Action(ActionType.ResetGame, {"request_trajectory": trajectory,
                                         "randomize_topology": randomize, "seed": seed})


QUIT = Action(ActionType.QuitGame, {})


def scan(source: str, network: str) -> Action:
    ip, mask = network.split("/")
    return Action(ActionType.ScanNetwork, {"source_host": IP(source), "target_network": Network(ip, int(mask))})


def find_services(source: str, target: str) -> Action:
    return Action(ActionType.FindServices, {"source_host": IP(source), "target_host": IP(target)})


def find_data(source: str, target: str) -> Action:
    return Action(ActionType.FindData, {"source_host": IP(source), "target_host": IP(target)})


def exploit(source: str, target: str, service: Service) -> Action:
    return Action(ActionType.ExploitService, {"source_host": IP(source), "target_host": IP(target),
                                              "target_service": service})


def exfiltrate(source: str, target: str, data: Data) -> Action:
    return Action(ActionType.ExfiltrateData, {"source_host": IP(source), "target_host": IP(target),
                                              "data": data})


def block(source: str, target: str, blocked: str) -> Action:
    return Action(ActionType.BlockIP, {"source_host": IP(source), "target_host": IP(target),
                                       "blocked_host": IP(blocked)})


MICROSOFT_DS = Service("microsoft-ds", "passive", "10.0.19041", False)
SECRET = Data("User1", "DataFromServer1")
CLIENT, CNC, SMB = "192.168.2.2", "213.47.23.195", "192.168.1.2"

#: The winning attack of the recorded transcript (scenario1_small).
WINNING_ATTACK = [
    scan(CLIENT, "192.168.1.0/24"),
    find_services(CLIENT, SMB),
    exploit(CLIENT, SMB, MICROSOFT_DS),
    find_data(SMB, SMB),
    exfiltrate(SMB, CNC, SECRET),
]
