"""NetSecGame's TCP framing and JSON forms, for the gateway (reference netsecgame.md §2).

Requests are bare JSON with no delimiter; :class:`JsonFramer` finds where each top-level
document ends in the byte stream (an incremental scan of brackets and strings, so a
request split across reads costs O(n) overall), and :func:`parse_request` turns one
document into a validated :class:`~protocol.Action` or a :class:`~protocol.ProtocolError`.

Replies are the JSON object followed by the three bytes ``EOF``. NetSecGame clients
delete *every* ``EOF`` they see, so :func:`render_reply` escapes it inside JSON strings
(``E`` as ``\\u0045``): the terminator is the only ``EOF`` on the wire.

>>> framer = JsonFramer(1024)
>>> framer.feed(b'{"a": "}"} {"b"')
>>> framer.next(), framer.next(), framer.pending
(Document(data=b'{"a": "}"}', value={'a': '}'}), None, True)
>>> render_reply(["127.0.0.1", 5000], GameStatus.OK, None, "Agent EOF quit.")
b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.OK", "message": "Agent \\\\u0045OF quit."}EOF'
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import attrs

from protocol import (
    Action,
    ActionType,
    Command,
    GameStatus,
    ProtocolError,
    pack,
    pack_action,
    unpack,
    validate_action,
)
from protocol.errors import describe

__all__ = [
    "EOF",
    "JOIN_EXTRA_KEYS",
    "MALFORMED_MESSAGE",
    "NIL",
    "OVERSIZED",
    "BrokerReply",
    "Document",
    "JsonFramer",
    "decode_broker_reply",
    "join_body",
    "observation_dict",
    "parse_request",
    "render_reply",
    "request_body",
    "state_dict",
]

#: NetSecGame's end-of-message marker (ProtocolConfig.END_OF_MESSAGE).
EOF = b"EOF"
#: What our JOIN reply's message adds to NetSecGame's; the gateway strips it.
JOIN_EXTRA_KEYS = ("seat", "world", "game", "task")
#: Returned by :meth:`JsonFramer.next` when a document grows past the size cap.
OVERSIZED = object()
#: NetSecGame's text for a request it cannot use (world/session.py says the same).
MALFORMED_MESSAGE = "Bad request received: Malformed Action"
#: msgpack nil: the body of a QUIT.
NIL = b"\xc0"
_STATUS = {status.value: status for status in GameStatus}

_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_STRUCTURAL = re.compile(rb'[{}\[\]"]')
_STRING_SPECIAL = re.compile(rb'["\\]')
_QUOTE, _BACKSLASH, _OPEN_BRACE, _OPEN_BRACKET = 0x22, 0x5C, 0x7B, 0x5B
_decoder = json.JSONDecoder()
_UNPARSED = object()


class Document(NamedTuple):
    """One framed request: its bytes, and its JSON value when the framer already parsed it."""

    data: bytes
    value: Any = _UNPARSED


class JsonFramer:
    """Splits a byte stream into top-level JSON documents, as bytes arrive.

    :meth:`feed` appends bytes; :meth:`next` returns the next complete :class:`Document`
    (whitespace between documents dropped), None while the next one is incomplete, or
    :data:`OVERSIZED` once a document passes ``max_bytes`` (the buffer is then cleared).

    When a document starts, ``raw_decode`` is tried over the buffer (the usual case: one
    whole request, parsed in C). If that fails, an incremental scan takes over: objects
    and arrays end where their brackets balance outside strings, a top-level string at
    its closing quote, and the scan resumes where it stopped when more bytes come, so a
    request split across reads costs O(n) overall. Anything else (a number, a literal,
    garbage) is not a request: the whole buffer is taken as one bad document. Whether a
    document is valid is :func:`parse_request`'s business.
    """

    __slots__ = ("_buffer", "_depth", "_in_string", "_pos", "_scanning", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._scanning = False  # inside a document that starts at the buffer's first byte
        self._pos = 0
        self._depth = 0
        self._in_string = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> bool:
        """Bytes of an unfinished document are buffered (only meaningful after :meth:`next`
        returned None)."""
        return bool(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    def take(self) -> bytes:
        """Everything buffered, removed (the incomplete document, when it timed out)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._reset()
        return data

    def next(self) -> Document | object | None:
        buffer = self._buffer
        if not self._scanning:
            skipped = _WHITESPACE.match(buffer).end()  # type: ignore[union-attr]  # always matches
            if skipped:
                del buffer[:skipped]
            if not buffer:
                return None
            first = buffer[0]
            if first in (_OPEN_BRACE, _OPEN_BRACKET):
                document = self._decode_whole()
                if document is not None:
                    return document
                self._scanning, self._pos, self._depth, self._in_string = True, 1, 1, False
            elif first == _QUOTE:
                self._scanning, self._pos, self._depth, self._in_string = True, 1, 0, True
            else:
                return Document(self.take())
        end = self._scan()
        if end is None:
            if len(buffer) > self.max_bytes:
                self.take()
                return OVERSIZED
            return None
        if end > self.max_bytes:
            self.take()
            return OVERSIZED
        document = bytes(buffer[:end])
        del buffer[:end]
        self._reset()
        return Document(document)

    def _decode_whole(self) -> Document | None:
        """The fast path: the buffer starts with one whole valid document."""
        buffer = self._buffer
        if len(buffer) > self.max_bytes:
            return None
        try:
            text = buffer.decode("utf-8")
            value, end = _decoder.raw_decode(text)
        except (ValueError, RecursionError):  # incomplete, invalid, or split inside a character
            return None
        size = end if len(text) == len(buffer) else len(text[:end].encode("utf-8"))
        document = bytes(buffer[:size])
        del buffer[:size]
        return Document(document, value)

    def _scan(self) -> int | None:
        """Continue the scan where the last one stopped; the end of the document or None."""
        buffer = self._buffer
        size = len(buffer)
        pos, depth, in_string = self._pos, self._depth, self._in_string
        end = None
        while pos < size:
            if in_string:
                match = _STRING_SPECIAL.search(buffer, pos)
                if match is None:
                    pos = size
                    break
                index = match.start()
                if buffer[index] == _BACKSLASH:
                    if index + 1 >= size:  # the escaped byte has not arrived yet
                        pos = index
                        break
                    pos = index + 2
                    continue
                in_string, pos = False, index + 1
                if depth == 0:  # a top-level string
                    end = pos
                    break
            else:
                match = _STRUCTURAL.search(buffer, pos)
                if match is None:
                    pos = size
                    break
                index = match.start()
                byte, pos = buffer[index], index + 1
                if byte == _QUOTE:
                    in_string = True
                elif byte in (_OPEN_BRACE, _OPEN_BRACKET):
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        end = pos
                        break
        self._pos, self._depth, self._in_string = pos, depth, in_string
        return end


def parse_request(document: Document | bytes) -> Action:
    """One request document as a validated Action; ProtocolError naming what is wrong."""
    data, value = document if isinstance(document, Document) else (document, _UNPARSED)
    if value is _UNPARSED:
        value = _decode(data)
    if not isinstance(value, dict):
        raise ProtocolError("request", "a JSON object (an action)", describe(value))
    try:
        return validate_action(Action.from_dict(value))
    except ProtocolError:
        raise
    except Exception as error:  # hostile input must never escape as anything else
        raise ProtocolError("request", "a valid action", f"{type(error).__name__}: {error}") from None


def _decode(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError("request", "UTF-8 text", f"an invalid byte at offset {error.start}") from None
    try:
        value, end = _decoder.raw_decode(text)
    except json.JSONDecodeError as error:
        raise ProtocolError("request", "a JSON object", f"invalid JSON ({error.msg} at char {error.pos})") from None
    except RecursionError:
        raise ProtocolError("request", "a JSON object", "nesting too deep to parse") from None
    except ValueError as error:  # e.g. an integer longer than Python converts
        raise ProtocolError("request", "a JSON object", f"unparsable JSON ({error})") from None
    if text[end:].strip():
        raise ProtocolError("request", "one JSON object", f"extra data at char {end}")
    return value


# ---------------------------------------------------------------------------- to the broker
def join_body(task: str | None, game: str | None, action: Action) -> bytes:
    """A JoinGame as a JOIN body (PROTOCOL.md §3.1); the world sanitises the name, as upstream."""
    info = action.parameters["agent_info"]
    return pack({"task": task, "role": info.role.value, "game": game, "name": info.name[:200] or "_"})


def request_body(action: Action) -> tuple[bytes, bytes]:
    """(command frame, body) of a ResetGame, QuitGame or game action (PROTOCOL.md §3.2).

    Raises ProtocolError (a missing parameter), ValueError or OverflowError (a string or an
    integer msgpack cannot encode)."""
    kind = action.action_type
    if kind is ActionType.ResetGame:
        params = action.parameters
        return Command.RESET.frame, pack([params.get("request_trajectory", False),
                                          params.get("randomize_topology", False), params.get("seed")])
    if kind is ActionType.QuitGame:
        return Command.QUIT.frame, NIL
    return Command.STEP.frame, pack_action(action)


# ---------------------------------------------------------------------------- from the broker
@attrs.frozen
class BrokerReply:
    """A reply body, ready for NetSecGame: the observation in its dict form, the join
    reply's extra keys stripped (``seat`` keeps the seat it named)."""

    status: GameStatus
    observation: dict[str, Any] | None
    message: dict[str, Any] | str | None
    code: str | None
    seat: str | None = None


def decode_broker_reply(command: bytes, body: bytes) -> BrokerReply:
    """Decode ``[status, observation, message, code]``; ValueError, TypeError or KeyError
    when it is not one (our worlds never send that)."""
    status_value, observation, message, code = unpack(body)
    seat = None
    if isinstance(message, dict) and command == Command.JOIN.frame:
        seat = message.get("seat") if isinstance(message.get("seat"), str) else None
        message = {key: value for key, value in message.items() if key not in JOIN_EXTRA_KEYS}
    if message is not None and not isinstance(message, (dict, str)):
        raise TypeError(f"a reply message must be a map or a string, not {type(message).__name__}")
    return BrokerReply(_STATUS[status_value], None if observation is None else observation_dict(observation),
                       message, code if isinstance(code, str) else None, seat)


# ---------------------------------------------------------------------------- replies
def state_dict(compact: list[Any] | bytes) -> dict[str, Any]:
    """A compact state (protocol/compact.py; packed, as observations carry it, or unpacked)
    in NetSecGame's dict form (GameState.as_dict)."""
    if isinstance(compact, bytes):
        compact = unpack(compact)
    controlled, known, networks, services, data, blocks = compact
    return {
        "known_networks": [{"ip": ip, "mask": mask} for ip, mask in networks],
        "known_hosts": [{"ip": host} for host in known],
        "controlled_hosts": [{"ip": host} for host in controlled],
        "known_services": {host: [{"name": name, "type": kind, "version": version, "is_local": local}
                                  for name, kind, version, local in items] for host, items in services.items()},
        "known_data": {host: [{"owner": owner, "id": ident, "size": size, "type": kind, "content": content}
                              for owner, ident, size, kind, content in items] for host, items in data.items()},
        "known_blocks": {host: [{"ip": blocked} for blocked in items] for host, items in blocks.items()},
    }


def observation_dict(compact: list[Any]) -> dict[str, Any]:
    state, reward, end, info = compact
    if not isinstance(info, dict) or not isinstance(end, bool):
        raise TypeError("an observation's end must be a bool and its info a map")
    return {"state": state_dict(state), "reward": reward, "end": end, "info": info}


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def render_reply(to_agent: list[Any], status: GameStatus, observation: dict[str, Any] | None,
                 message: dict[str, Any] | str | None) -> bytes:
    """NetSecGame's reply (reference §2.2) with its ``EOF`` terminator.

    Keys in upstream's order: a step's reply is to_agent, observation, status; the rest
    to_agent, status, observation, message. A BAD_REQUEST whose message is an object
    carries ``"observation": null`` (a bare-string message, none), as upstream.
    """
    reply: dict[str, Any] = {"to_agent": to_agent}
    if observation is not None and message is None:
        reply["observation"] = observation
        reply["status"] = str(status)
    else:
        reply["status"] = str(status)
        if observation is not None:
            reply["observation"] = observation
        elif status is GameStatus.BAD_REQUEST and isinstance(message, dict):
            reply["observation"] = None
        if message is not None:
            reply["message"] = message
    # ASCII only (ensure_ascii), and "EOF" can only occur inside strings: escaping its E
    # keeps the JSON equal and leaves the terminator the only EOF a client will delete.
    text = json.dumps(reply, default=_json_default)
    if "EOF" in text:
        text = text.replace("EOF", "\\u0045OF")
    return text.encode("ascii") + EOF
