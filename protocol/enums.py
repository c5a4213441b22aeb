"""Enumerations of the game: action types, roles, agent and game statuses.

Their string forms are NetSecGame's wire forms (reference netsecgame.md §1.5, §1.7):
``str(ActionType.ScanNetwork) == "ActionType.ScanNetwork"``, ``str(GameStatus.OK) ==
"GameStatus.OK"``. They are written out explicitly so they do not depend on the
Python version's enum formatting.
"""

from __future__ import annotations

import enum

__all__ = ["GAME_ACTIONS", "ActionType", "AgentRole", "AgentStatus", "GameStatus"]


class ActionType(enum.Enum):
    """The nine action types, in NetSecGame's declaration order.

    An ActionType equals its bare name and its ``ActionType.``-prefixed name:

    >>> ActionType.ScanNetwork == "ActionType.ScanNetwork" == ActionType.from_string("ScanNetwork")
    True
    """

    ScanNetwork = "ScanNetwork"
    FindServices = "FindServices"
    FindData = "FindData"
    ExploitService = "ExploitService"
    ExfiltrateData = "ExfiltrateData"
    BlockIP = "BlockIP"
    JoinGame = "JoinGame"
    QuitGame = "QuitGame"
    ResetGame = "ResetGame"

    def __str__(self) -> str:
        return "ActionType." + self._value_

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is ActionType:
            return self is other
        if isinstance(other, str):
            return self._value_ == other.removeprefix("ActionType.")
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value_)

    def to_string(self) -> str:
        return self.value

    @classmethod
    def from_string(cls, name: str) -> ActionType:
        """Parse ``"ScanNetwork"`` or ``"ActionType.ScanNetwork"``; ValueError otherwise."""
        if isinstance(name, str):
            member = _ACTION_TYPES.get(name.removeprefix("ActionType."))
            if member is not None:
                return member
        raise ValueError(f"Invalid ActionType: {name}")


_ACTION_TYPES: dict[str, ActionType] = {member.value: member for member in ActionType}

#: The six actions that act on the world (the other three are protocol actions).
GAME_ACTIONS: frozenset[ActionType] = frozenset(
    {
        ActionType.ScanNetwork,
        ActionType.FindServices,
        ActionType.FindData,
        ActionType.ExploitService,
        ActionType.ExfiltrateData,
        ActionType.BlockIP,
    }
)


class AgentRole(str, enum.Enum):
    """Attacker, Defender or Benign; compares equal to its name in any case."""

    Attacker = "Attacker"
    Defender = "Defender"
    Benign = "Benign"

    def __str__(self) -> str:
        return f"AgentRole.{self.value}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AgentRole):
            return self is other
        if isinstance(other, str):
            return self.value.lower() == other.lower().removeprefix("agentrole.")
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        # Needed: as a str subclass the enum would otherwise inherit str.__ne__,
        # making ``AgentRole.Attacker != "attacker"`` True while ``==`` is True too.
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self.value)

    def to_string(self) -> str:
        return self.value

    @classmethod
    def from_string(cls, name: str) -> AgentRole:
        """Parse a role name in any case, with or without a dotted prefix."""
        if isinstance(name, str):
            wanted = name.rsplit(".", 1)[-1].lower()
            for member in cls:
                if member.value.lower() == wanted:
                    return member
        raise ValueError(f"Invalid AgentRole: {name}")


class AgentStatus(enum.Enum):
    """An agent's standing in its episode; ``str()`` is the wire form of ``end_reason``."""

    Playing = "Playing"
    PlayingWithTimeout = "PlayingWithTimeout"
    TimeoutReached = "TimeoutReached"
    ResetRequested = "ResetRequested"
    Success = "Success"
    Fail = "Fail"

    def __str__(self) -> str:
        return f"AgentStatus.{self.value}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AgentStatus):
            return self is other
        if isinstance(other, str):
            return self.value == other.removeprefix("AgentStatus.")
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    def to_string(self) -> str:
        return str(self)

    @classmethod
    def from_string(cls, name: str) -> AgentStatus:
        if isinstance(name, str):
            try:
                return cls(name.removeprefix("AgentStatus."))
            except ValueError:
                pass
        raise ValueError(f"Invalid AgentStatus: {name}")

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({AgentStatus.Success, AgentStatus.Fail, AgentStatus.TimeoutReached})


class GameStatus(enum.Enum):
    """Reply status codes, HTTP-like as in NetSecGame; the wire form is ``GameStatus.X``."""

    OK = 200
    CREATED = 201
    RESET_DONE = 202
    BAD_REQUEST = 400
    FORBIDDEN = 403

    def __str__(self) -> str:
        return f"GameStatus.{self.name}"

    def __repr__(self) -> str:
        return str(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @classmethod
    def from_string(cls, text: str) -> GameStatus:
        """Accept exactly the five ``GameStatus.X`` strings."""
        if isinstance(text, str) and text.startswith("GameStatus."):
            member = cls.__members__.get(text.removeprefix("GameStatus."))
            if member is not None:
                return member
        raise ValueError(f"Invalid GameStatus: {text!r}")
