"""Where an environment's games run: in this process, or behind a broker.

Every environment takes one argument for it, ``broker``: None plays a
:class:`~world.GameSession` in this process (no sockets; DESIGN §1 lets ``agents`` use
``world`` for this mode only), a frontend address such as ``"tcp://127.0.0.1:5570"``
plays through that broker. Both backends take the same requests and give the same
answers (:class:`~protocol.ReplyBody`), so the environments above them have one code path:

* :meth:`join` seats the environment's agents (all requests sent before any answer is
  awaited, since a game holds joins until it starts);
* :meth:`send_steps` / :meth:`send_resets` send without waiting, in the order given;
* :meth:`collect` returns the answers released so far; an agent whose step ended its
  episode while others play is *held* by its game (PROTOCOL.md §4) and answered later.

A task is named the same way in both modes: a :class:`~world.TaskConfig`, a path or URL
of a task file, or the name of a task (in process: a shipped task, found by
:func:`world.load_task`'s one lookup, as ``arena up --task`` finds it; through a broker:
the name the broker serves it under, given as is). A task file or URL given for a
broker is read here, with :func:`world.load_task`, only to learn the name it is served
under (its ``arena.name``, else its file's stem).

>>> task_name("world/tasks/two_networks_tiny_attacker.yaml"), resolve_task("two_networks_tiny").scenario.name
('two_networks_tiny', 'two_networks_tiny')
>>> games = make_games(None, "two_networks_tiny")
>>> joined = games.join({"me": (AgentRole.Attacker, "g")})
>>> from protocol import PASS
>>> games.send_steps({"me": PASS})
>>> [(agent, answer.status, answer.observation.reward) for agent, answer in games.collect().items()]
[('me', GameStatus.OK, -1)]
>>> games.close()
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Collection, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from protocol import Action, AgentRole, ArenaError, GameStatus, Observation, PassAction, ReplyBody, pack
from protocol.catalog import Catalog

from .connection import RequestFailure, failure_of
from .parallel import ParallelBaseAgent

#: What a request gets: the decoded reply, or why there is none.
Answer = ReplyBody | RequestFailure

__all__ = ["BrokerGames", "LocalGames", "answer_text", "make_games", "resolve_task", "task_name"]


def resolve_task(task: Any) -> Any:
    """The TaskConfig to play in process: ``task`` itself, else :func:`world.load_task`'s
    lookup of it (a file, an http(s) URL, a shipped task's name; None: the default task).
    An unknown name is a :class:`~world.TaskConfigError` listing the shipped names."""
    from world import TaskConfig, load_task  # in-process mode only

    return task if isinstance(task, TaskConfig) else load_task(task)


def task_name(task: Any) -> str | None:
    """The broker's name for ``task``: its ``name``, the name a task file or URL is served
    under, or the string itself (None: the broker's only or default task)."""
    if task is None:
        return None
    name = getattr(task, "name", None)
    if isinstance(name, str) and hasattr(task, "scenario"):
        return name
    text = os.fspath(task)
    if text.startswith(("http://", "https://")) or Path(text).is_file():
        from world import load_task  # the one naming rule, and a broken file fails here, named

        return str(load_task(text).name)
    return text


def answer_text(answer: Answer | None) -> str:
    """Why an answer is not a usable reply, for error messages."""
    if answer is None:
        return "no reply"
    if isinstance(answer, RequestFailure):
        return str(answer)
    return str(failure_of(answer))


class LocalGames:
    """Games played by :class:`~world.GameSession` objects in this process. Agents are
    keys of the caller's choosing; ``games`` maps each to the game it plays in."""

    def __init__(self, task: Any, *, seed: int = 42, name: str = "env") -> None:
        from world import GameSession  # in-process mode only
        from world.catalog import catalog_of

        self.task = resolve_task(task)
        self._session_type = GameSession
        self._catalog_of = catalog_of
        self.seed = seed
        self.name = name
        self.sessions: dict[Hashable, Any] = {}    # game key -> GameSession
        self.game_of: dict[Hashable, Hashable] = {}
        self._inbox: dict[Hashable, Answer] = {}
        self._requests = itertools.count()
        self._interned: dict[Catalog, Catalog] = {}

    @property
    def task_label(self) -> str:
        return str(self.task.name)

    def _session(self, game: Hashable) -> Any:
        session = self.sessions.get(game)
        if session is None:
            index = len(self.sessions)
            session = self.sessions[game] = self._session_type(self.task, seed=self.seed + index,
                                                                name=f"{self.name}-{game}")
        return session

    def _take(self, replies: Iterable[Any]) -> None:
        for reply in replies:
            self._inbox[reply.seat] = ReplyBody(reply.status, reply.observation, reply.message, reply.code)

    def join(self, agents: Mapping[Hashable, tuple[AgentRole, Hashable]]) -> dict[Hashable, ReplyBody]:
        """Seat each agent (``(role, game key)``) in its game; ArenaError when a game does
        not start (its task needs players this environment does not bring)."""
        now = time.monotonic()
        for agent, (role, game) in agents.items():
            self.game_of[agent] = game
            self._take(self._session(game).join(agent, str(agent), role, now, next(self._requests)))
        joined = {}
        for agent, (role, game) in agents.items():
            answer = self._inbox.pop(agent, None)
            if answer is None:
                raise ArenaError(f"the game of {agent} did not start: task {self.task_label} needs more players "
                                 f"than this environment seats ({self._session(game).task.start})")
            if answer.status is not GameStatus.CREATED or answer.observation is None:
                raise ArenaError(f"{agent} could not join task {self.task_label} as {role.value}: "
                                 f"{answer_text(answer)}")
            joined[agent] = answer
        return joined

    def send_steps(self, actions: Mapping[Hashable, Action | PassAction]) -> None:
        """Play each action now. They come from the environments' tables (every parameter
        made by :class:`~protocol.action_table.ActionTable`) or are PASS: no re-validation."""
        now = time.monotonic()
        for agent, action in actions.items():
            session = self.sessions[self.game_of[agent]]
            self._take(session.step(agent, action, now, next(self._requests), validated=True))

    def send_resets(self, resets: Mapping[Hashable, tuple[int | None, bool]]) -> None:
        """``{agent: (seed, randomize_topology)}``."""
        now = time.monotonic()
        for agent, (seed, randomize) in resets.items():
            session = self.sessions[self.game_of[agent]]
            self._take(session.reset(agent, now, next(self._requests), randomize_topology=randomize, seed=seed))

    def collect(self, sent: Collection[Hashable] = (), need: int = 0) -> dict[Hashable, Answer]:
        """Every answer released so far (a held request has none yet)."""
        answers, self._inbox = self._inbox, {}
        return answers

    def catalog(self, agent: Hashable, answer: ReplyBody) -> Catalog:
        """The catalog of the agent's game at its current addresses (one object for all
        games with equal catalogs: see :func:`_interned`)."""
        return _interned(self._interned, self._catalog_of(self.sessions[self.game_of[agent]].world))

    def quit(self, agents: Collection[Hashable] | None = None) -> None:
        now = time.monotonic()
        for agent in list(self.game_of) if agents is None else list(agents):
            if agent in self.game_of:
                self.sessions[self.game_of.pop(agent)].quit(agent, now, next(self._requests))
        self._inbox.clear()

    def close(self) -> None:
        self.quit()


class BrokerGames:
    """Games behind a broker, played through one :class:`~agents.parallel.ParallelBaseAgent`
    (one socket; its steps and resets to one world go as one BATCH, which is what lets
    :meth:`collect` tell a held reply from a late one). The client is made at the first
    :meth:`join`, which says how many agents there are and each one's role and game; game
    keys are game names (None: let the broker place the seat)."""

    def __init__(self, endpoint: str, task: Any, *, timeout: float = 120.0, name: str = "ArenaEnv",
                 **client_options: Any) -> None:
        self.endpoint = endpoint
        self.task = task_name(task)
        self.name = name
        self.timeout = timeout
        self._options = client_options
        #: the client, once :meth:`join` made it
        self.agent: ParallelBaseAgent | None = None
        self._seated: dict[Hashable, tuple[AgentRole, str | None]] = {}
        self._envs: dict[Hashable, int] = {}      # agent key -> env index of the client
        self._keys: list[Hashable] = []
        self._sent: dict[int, GameStatus] = {}    # env -> what its request's success looks like
        #: one Catalog object per distinct wire form, shared by every seat that gets it
        self._catalogs: dict[bytes, Catalog] = {}

    @property
    def task_label(self) -> str:
        return self.task or "(the broker's default task)"

    def join(self, agents: Mapping[Hashable, tuple[AgentRole, Hashable]]) -> dict[Hashable, ReplyBody]:
        """Seat each agent (``(role, game name or None)``): every JOIN sent, then all
        awaited (a game holds joins until it starts). ArenaError names the failures; the
        seats taken stay, so :meth:`close` quits them. Joining again (after :meth:`quit`)
        takes the same agents, roles and games."""
        seats = {agent: (role, None if game is None else str(game)) for agent, (role, game) in agents.items()}
        if self.agent is None:
            self._seated, self._keys = seats, list(seats)
            self._envs = {agent: env for env, agent in enumerate(self._keys)}
            self.agent = ParallelBaseAgent(self.endpoint, [role for role, _ in seats.values()], len(seats),
                                           task=self.task, game=[game for _, game in seats.values()],
                                           name=self.name, timeout=self.timeout, catalog=True, **self._options)
        elif any(self._seated.get(agent) != seat for agent, seat in seats.items()):
            raise ValueError(f"these games seat {self._seated}, not {seats}")
        envs = [self._envs[agent] for agent in seats]
        self.agent.send_joins(envs)
        answers = self.agent.collect(envs)
        replies: dict[Hashable, ReplyBody] = {}
        failures = []
        for agent, (role, _) in seats.items():
            answer = answers.get(self._envs[agent])
            if isinstance(answer, Observation) and isinstance(answer.info, dict):
                replies[agent] = ReplyBody(GameStatus.CREATED, answer, answer.info, None)
            else:
                failures.append(f"{agent} could not join task {self.task or '(default)'} as {role.value}: "
                                f"{answer_text(answer)}")
        if failures:
            raise ArenaError("; ".join(failures))
        return replies

    def send_steps(self, actions: Mapping[Hashable, Action | PassAction]) -> None:
        steps = {self._envs[agent]: action for agent, action in actions.items()}
        self._sent.update(dict.fromkeys(steps, GameStatus.OK))
        self._client.send_steps(steps)

    def send_resets(self, resets: Mapping[Hashable, tuple[int | None, bool]]) -> None:
        envs = {self._envs[agent]: reset for agent, reset in resets.items()}
        self._sent.update(dict.fromkeys(envs, GameStatus.RESET_DONE))
        self._client.send_resets(envs)

    def collect(self, sent: Collection[Hashable] = (), need: int = 0) -> dict[Hashable, Answer]:
        """Wait until ``need`` of ``sent`` are answered (``need=1`` after one batch: until
        the message with everything the batch released), then take all that arrived."""
        client = self._client
        answers = client.collect([self._envs[agent] for agent in sent], need=need) if sent and need else {}
        answers.update(client.collect(need=0))
        keys, last_errors = self._keys, client.last_errors
        replies: dict[Hashable, Answer] = {}
        for env, answer in answers.items():
            status = self._sent.pop(env, GameStatus.OK)
            if isinstance(answer, RequestFailure):
                replies[keys[env]] = answer
            elif status is GameStatus.RESET_DONE:
                replies[keys[env]] = ReplyBody(status, answer, answer.info, None)
            else:  # a step: a refusal (FORBIDDEN, EPISODE_ENDED) still carries its observation
                refused = last_errors[env]
                replies[keys[env]] = ReplyBody(GameStatus.OK, answer, None, None) if refused is None else \
                    ReplyBody(refused.status or GameStatus.OK, answer, {"message": refused.message}, refused.code)
        return replies

    def catalog(self, agent: Hashable, answer: ReplyBody) -> Catalog:
        """The catalog a join or reset reply carries (parsed once per distinct form)."""
        message = answer.message if isinstance(answer.message, dict) else {}
        wire = message.get("catalog")
        if wire is None:
            raise ArenaError(f"the reply to {agent} carries no catalog (a world without catalog support?)")
        key = pack(wire)
        catalog = self._catalogs.get(key)
        if catalog is None:
            if len(self._catalogs) > 256:
                self._catalogs.clear()
            catalog = self._catalogs[key] = Catalog.from_wire(wire)
        return catalog

    def quit(self, agents: Collection[Hashable] | None = None) -> None:
        if self.agent is not None:
            envs = None if agents is None else [self._envs[agent] for agent in agents if agent in self._envs]
            self.agent.quit(envs)
            for env in self._sent.keys() & set(range(len(self._keys)) if envs is None else envs):
                del self._sent[env]

    def close(self) -> None:
        if self.agent is not None:
            self.agent.terminate_connection()

    @property
    def _client(self) -> ParallelBaseAgent:
        if self.agent is None:
            raise ArenaError("no agent has joined yet")
        return self.agent


def _interned(known: dict[Catalog, Catalog], catalog: Catalog) -> Catalog:
    """One object per distinct catalog. Masks and vectors cached on a state are keyed by
    the catalog's value; a shared object makes those lookups identity checks instead of
    comparisons of whole layouts (which showed as the top cost of a 64-env vector step)."""
    found = known.get(catalog)
    if found is None:
        if len(known) > 256:
            known.clear()
        found = known[catalog] = catalog
    return found


def make_games(broker: str | None, task: Any, *, seed: int = 42, timeout: float = 120.0, name: str = "env",
               ) -> LocalGames | BrokerGames:
    """The backend for ``broker`` (None: in process)."""
    if broker is None:
        return LocalGames(task, seed=seed, name=name)
    return BrokerGames(broker, task, timeout=timeout, name=name)

