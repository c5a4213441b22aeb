"""broker.gateway_codec in-process: NetSecGame's TCP framing and JSON forms at the gateway.

Requests are bare JSON with no delimiter (reference netsecgame.md §2.1); the gateway frames
them itself (README "Existing NetSecGame agents": several requests in one read are each
answered, a request split across reads waits for the rest, oversized requests are refused)
and answers a malformed one ``BAD_REQUEST`` with a ``reason`` naming what is wrong: those
reasons are the texts a NetSecGame client sees, so they are checked exactly here. Replies are
JSON followed by ``EOF`` (§2.1, §2.2), with ``EOF`` inside strings escaped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import broker.gateway_codec as codec
from broker.gateway_codec import (
    EOF,
    NIL,
    OVERSIZED,
    BrokerReply,
    Document,
    JsonFramer,
    decode_broker_reply,
    join_body,
    observation_dict,
    parse_request,
    render_reply,
    request_body,
    state_dict,
)
from protocol import ActionType, Command, GameStatus, ProtocolError, pack, pack_action, unpack

JOIN = b'{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": {"name": "A", "role": "Attacker"}}}'
SCAN = (b'{"action_type": "ActionType.ScanNetwork", "parameters": {"source_host": {"ip": "192.168.1.2"}, '
        b'"target_network": {"ip": "192.168.1.0", "mask": 24}}}')


def drain(framer: JsonFramer) -> list[Any]:
    """Every complete document (or OVERSIZED) the framer has, until it returns None."""
    found = []
    while (document := framer.next()) is not None:
        found.append(document)
    return found


def reason(data: bytes | Document) -> str:
    """The reason text the gateway would send for a bad request."""
    with pytest.raises(ProtocolError) as caught:
        parse_request(data)
    return str(caught.value)


# ---------------------------------------------------------------------------- framing
def test_whole_documents_are_parsed_at_once_with_their_values() -> None:
    """The usual case: whole requests, whitespace between them dropped, each with its value."""
    framer = JsonFramer(1024)
    framer.feed(b' \t\r\n{"a": 1}\n[2, 3]  ')
    assert drain(framer) == [Document(b'{"a": 1}', {"a": 1}), Document(b"[2, 3]", [2, 3])]
    assert not framer.pending and len(framer) == 0


def test_non_ascii_documents_are_cut_at_their_byte_length() -> None:
    """A document with multi-byte characters ends at its last byte, not at its character count."""
    first = '{"name": "Zoë ñandú 🙂"}'.encode()
    framer = JsonFramer(1024)
    framer.feed(first + b'{"b": 2}')
    assert drain(framer) == [Document(first, {"name": "Zoë ñandú 🙂"}), Document(b'{"b": 2}', {"b": 2})]


def test_a_document_split_across_reads_waits_for_the_rest() -> None:
    """Split anywhere (even inside a string, an escape or a UTF-8 character): one document."""
    data = '{"s": "a}\\"]\\\\", "t": ["ü", {"u": "[{"}], "v": "é"}'.encode()
    for cut in range(1, len(data)):
        framer = JsonFramer(1024)
        framer.feed(data[:cut])
        assert framer.next() is None and framer.pending, cut
        framer.feed(data[cut:] + b" ")
        assert [bytes(d.data) for d in drain(framer)] == [data], cut


def test_split_byte_by_byte_with_a_second_document_after() -> None:
    """Fed one byte at a time, each document comes out exactly once, whole."""
    data = b'{"a": "x\\\\", "b": [[1], {"c": "}\\""}]}["\\u00e9", "]"]"top \\" level"{}'
    framer = JsonFramer(1024)
    found = []
    for byte in data:
        framer.feed(bytes([byte]))
        found.extend(bytes(d.data) for d in drain(framer))
    assert found == [b'{"a": "x\\\\", "b": [[1], {"c": "}\\""}]}', b'["\\u00e9", "]"]', b'"top \\" level"', b"{}"]
    assert not framer.pending


def test_scan_continues_past_an_escape_in_the_same_read() -> None:
    """An escape followed by the rest of the document in one read ends the document there."""
    framer = JsonFramer(1024)
    framer.feed(b'{"a": "')
    assert framer.next() is None
    framer.feed(b'\\\\x", "b": "\\"y"} {"c": 1}')
    assert drain(framer) == [Document(b'{"a": "\\\\x", "b": "\\"y"}'), Document(b'{"c": 1}', {"c": 1})]


def test_an_escape_at_the_end_of_a_read_waits_for_its_byte() -> None:
    """A backslash as the last byte: the escaped byte (here a quote) does not end the string."""
    framer = JsonFramer(1024)
    framer.feed(b'{"a": "x\\')
    assert framer.next() is None
    framer.feed(b'"')
    assert framer.next() is None
    framer.feed(b'"}')
    assert drain(framer) == [Document(b'{"a": "x\\""}')]


def test_top_level_string_split_across_reads() -> None:
    """A bare JSON string is one (bad) document, ending at its closing quote."""
    framer = JsonFramer(1024)
    framer.feed(b'"abc')
    assert framer.next() is None
    framer.feed(b'\\"d" {"e": 1}')
    assert drain(framer) == [Document(b'"abc\\"d"'), Document(b'{"e": 1}', {"e": 1})]
    framer.feed(b'"ab"')  # whole at once: the scan, no fast path for strings
    assert drain(framer) == [Document(b'"ab"')]
    framer.feed(b'""[]"\\\\""\\"x"')  # empty, then an escaped backslash or quote right after the opening quote
    assert drain(framer) == [Document(b'""'), Document(b"[]", []), Document(b'"\\\\"'), Document(b'"\\"x"')]


def test_nested_brackets_end_where_they_balance() -> None:
    """Invalid JSON with balanced brackets is framed by the scan (and refused later)."""
    framer = JsonFramer(1024)
    framer.feed(b'{"a" [1, {"b": []}], "c"} {"d": 1}')
    assert drain(framer) == [Document(b'{"a" [1, {"b": []}], "c"}'), Document(b'{"d": 1}', {"d": 1})]
    framer.feed(b"[[]]]")
    assert drain(framer)[0] == Document(b"[[]]", [[]])


def test_anything_else_is_one_bad_document() -> None:
    """A number, literal or garbage is not a request: the whole buffer is one document."""
    framer = JsonFramer(1024)
    framer.feed(b"  this is not json {}")
    assert drain(framer) == [Document(b"this is not json {}")]
    assert not framer.pending
    assert framer.next() is None


def test_size_cap_of_a_whole_document() -> None:
    """A document of exactly max_bytes is taken; one byte more is OVERSIZED, buffer cleared."""
    data = b'{"a": "' + b"x" * 20 + b'"}'
    framer = JsonFramer(len(data))
    framer.feed(data)
    assert drain(framer) == [Document(data, {"a": "x" * 20})]
    framer = JsonFramer(len(data) - 1)
    framer.feed(data)
    assert framer.next() is OVERSIZED
    assert not framer.pending and framer.next() is None
    framer.feed(b"{}")
    assert framer.next() == Document(b"{}", {})


def test_size_cap_of_a_scanned_document() -> None:
    """Through the scan (split, or not valid JSON) the cap is the same: max_bytes taken, more not."""
    data = b'{"a" "' + b"y" * 20 + b'"}'  # balanced but invalid: framed by the scan
    framer = JsonFramer(len(data))
    framer.feed(data[:5])
    assert framer.next() is None
    framer.feed(data[5:])
    assert drain(framer) == [Document(data)]
    framer = JsonFramer(len(data) - 1)
    framer.feed(data[:5])
    assert framer.next() is None
    framer.feed(data[5:])
    assert framer.next() is OVERSIZED
    assert not framer.pending


def test_size_cap_of_an_incomplete_document() -> None:
    """An unfinished document of max_bytes waits; past max_bytes it is OVERSIZED at once."""
    framer = JsonFramer(10)
    framer.feed(b'{"a": "xxx')  # 10 bytes, unfinished
    assert framer.next() is None and framer.pending and len(framer) == 10
    framer.feed(b"x")
    assert framer.next() is OVERSIZED
    assert not framer.pending


def test_take_returns_and_clears_the_incomplete_document() -> None:
    """take() hands over what is buffered (the timed-out document) and starts afresh."""
    framer = JsonFramer(1024)
    framer.feed(b'{"a": ["')
    assert framer.next() is None
    assert framer.take() == b'{"a": ["'
    assert not framer.pending and len(framer) == 0
    framer.feed(b'"b"')
    assert drain(framer) == [Document(b'"b"')]
    framer.feed(b"[1]")
    assert drain(framer) == [Document(b"[1]", [1])]


def test_fresh_framer_starts_outside_any_document() -> None:
    """A new framer: the first byte decides; nothing is buffered."""
    framer = JsonFramer(64)
    assert framer.max_bytes == 64 and not framer.pending and framer.next() is None
    framer.feed(b"]")
    assert drain(framer) == [Document(b"]")]
    framer.feed(b'["a"')
    assert framer.next() is None
    framer.feed(b"]")
    assert drain(framer) == [Document(b'["a"]')]


# ---------------------------------------------------------------------------- parse_request
def test_valid_requests_from_bytes_and_documents() -> None:
    """Bytes are decoded; a Document's parsed value is used as it is."""
    action = parse_request(JOIN)
    assert action.action_type is ActionType.JoinGame
    assert action.parameters["agent_info"].name == "A"
    assert parse_request(Document(JOIN)) == action
    framer = JsonFramer(1024)
    framer.feed(SCAN + b"\n\n")
    document = framer.next()
    assert parse_request(document) == parse_request(SCAN)  # type: ignore[arg-type]
    assert parse_request(Document(b"not json", json.loads(SCAN))) == parse_request(SCAN)


def test_trailing_whitespace_is_allowed_extra_data_is_not() -> None:
    """One JSON object and nothing but whitespace after it (NetSecGame strips whitespace)."""
    assert parse_request(JOIN + b" \r\n\t").action_type is ActionType.JoinGame
    assert reason(b"{} x") == "request: expected one JSON object, got extra data at char 2"
    assert reason(JOIN + b"{}") == f"request: expected one JSON object, got extra data at char {len(JOIN)}"


def test_exact_reasons_for_undecodable_requests() -> None:
    """The reason texts a client sees for bytes that are not one JSON object."""
    assert reason(b'{"a": "\xff"}') == "request: expected UTF-8 text, got an invalid byte at offset 7"
    assert reason(b"\xc3") == "request: expected UTF-8 text, got an invalid byte at offset 0"
    assert reason(b"this is not json") == (
        "request: expected a JSON object, got invalid JSON (Expecting value at char 0)")
    assert reason(Document(b'{"a" 1}')) == (
        "request: expected a JSON object, got invalid JSON (Expecting ':' delimiter at char 5)")
    assert reason(b"[" * 100_000 + b"]" * 100_000) == "request: expected a JSON object, got nesting too deep to parse"
    assert reason(b'{"seed": ' + b"1" * 5000 + b"}") == (
        "request: expected a JSON object, got unparsable JSON (Exceeds the limit (4300 digits) for integer string "
        "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)")


def test_exact_reasons_for_json_that_is_not_an_action() -> None:
    """A JSON value that is not an object, and an object that is not a valid action."""
    assert reason(b"[1, 2]") == "request: expected a JSON object (an action), got list [1, 2]"
    assert reason(Document(b"[]", [])) == "request: expected a JSON object (an action), got list []"
    assert reason(b'"x"') == "request: expected a JSON object (an action), got str 'x'"
    assert reason(Document(b"null", None)) == "request: expected a JSON object (an action), got NoneType None"
    assert reason(b'{"action_type": "ActionType.ScanNetwork", "parameters": {}}') == (
        "parameters.source_host: expected an IP (required by ScanNetwork), got nothing")


def test_any_other_failure_becomes_a_protocol_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile input never escapes as anything but ProtocolError (naming the exception)."""
    def explode(action: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(codec, "validate_action", explode)
    with pytest.raises(ProtocolError) as caught:
        parse_request(JOIN)
    assert str(caught.value) == "request: expected a valid action, got KeyError: 'boom'"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# ---------------------------------------------------------------------------- to the broker
def test_join_body() -> None:
    """JOIN body (PROTOCOL.md §3.1): task, role value, game, and the name cut to 200 (or "_")."""
    action = parse_request(JOIN)
    assert unpack(join_body("t1", "g1", action)) == {"task": "t1", "role": "Attacker", "game": "g1", "name": "A"}
    long = parse_request(JOIN.replace(b'"A"', b'"' + b"n" * 201 + b'"'))
    assert unpack(join_body(None, None, long)) == {"task": None, "role": "Attacker", "game": None, "name": "n" * 200}
    empty = parse_request(JOIN.replace(b'"A"', b'""').replace(b"Attacker", b"Defender"))
    assert unpack(join_body(None, "g", empty)) == {"task": None, "role": "Defender", "game": "g", "name": "_"}


def test_request_body_for_reset_quit_and_steps() -> None:
    """RESET carries [request_trajectory, randomize_topology, seed] with defaults; QUIT nil; a step its action."""
    reset = parse_request(b'{"action_type": "ActionType.ResetGame", "parameters": {}}')
    assert request_body(reset) == (Command.RESET.frame, pack([False, False, None]))
    full = parse_request(b'{"action_type": "ActionType.ResetGame", "parameters": '
                         b'{"request_trajectory": true, "randomize_topology": true, "seed": 7}}')
    assert request_body(full) == (Command.RESET.frame, pack([True, True, 7]))
    only_topology = parse_request(b'{"action_type": "ActionType.ResetGame", '
                                  b'"parameters": {"randomize_topology": true}}')
    assert unpack(request_body(only_topology)[1]) == [False, True, None]
    quit_ = parse_request(b'{"action_type": "ActionType.QuitGame", "parameters": {}}')
    assert request_body(quit_) == (Command.QUIT.frame, NIL)
    scan = parse_request(SCAN)
    assert request_body(scan) == (Command.STEP.frame, pack_action(scan))


# ---------------------------------------------------------------------------- from the broker
STATE = [["192.168.1.2"], ["192.168.1.2", "192.168.1.3"], [["192.168.1.0", 24]],
         {"192.168.1.3": [["ssh", "tcp", "8.1", False]]},
         {"192.168.1.3": [["User1", "Data1", 10, "txt", "secret"]]},
         {"192.168.1.2": ["10.0.0.1"]}]
STATE_DICT = {
    "known_networks": [{"ip": "192.168.1.0", "mask": 24}],
    "known_hosts": [{"ip": "192.168.1.2"}, {"ip": "192.168.1.3"}],
    "controlled_hosts": [{"ip": "192.168.1.2"}],
    "known_services": {"192.168.1.3": [{"name": "ssh", "type": "tcp", "version": "8.1", "is_local": False}]},
    "known_data": {"192.168.1.3": [{"owner": "User1", "id": "Data1", "size": 10, "type": "txt", "content": "secret"}]},
    "known_blocks": {"192.168.1.2": [{"ip": "10.0.0.1"}]},
}


def test_state_dict_is_netsecgame_form() -> None:
    """A compact state (packed or not) in GameState.as_dict's form (reference §1.9)."""
    assert state_dict(STATE) == STATE_DICT
    assert state_dict(pack(STATE)) == STATE_DICT


def test_observation_dict() -> None:
    """[state, reward, end, info] as NetSecGame's observation; end must be a bool, info a map."""
    assert observation_dict([pack(STATE), -1, True, {"end_reason": "x"}]) == {
        "state": STATE_DICT, "reward": -1, "end": True, "info": {"end_reason": "x"}}
    for bad in ([pack(STATE), 0, 1, {}], [pack(STATE), 0, False, []]):
        with pytest.raises(TypeError, match=r"^an observation's end must be a bool and its info a map$"):
            observation_dict(bad)


def test_decode_broker_reply_of_a_join_strips_our_keys() -> None:
    """A JOIN reply keeps its seat apart and loses seat/world/game/task from the message."""
    message = {"message": "Welcome", "seat": "s1", "world": "w", "game": "g", "task": "t", "max_steps": 5}
    body = pack([201, [pack(STATE), 0, False, {}], message, "ok"])
    assert decode_broker_reply(Command.JOIN.frame, body) == BrokerReply(
        GameStatus.CREATED, {"state": STATE_DICT, "reward": 0, "end": False, "info": {}},
        {"message": "Welcome", "max_steps": 5}, "ok", "s1")
    no_seat = decode_broker_reply(Command.JOIN.frame, pack([400, None, {"message": "no", "seat": 5}, None]))
    assert no_seat == BrokerReply(GameStatus.BAD_REQUEST, None, {"message": "no"}, None, None)


def test_decode_broker_reply_of_other_commands_keeps_the_message() -> None:
    """Only a JOIN's message is stripped; a string message or none passes; a bad code is dropped."""
    message = {"message": "Resetting", "seat": "s1"}
    reply = decode_broker_reply(Command.RESET.frame, pack([202, None, message, 3]))
    assert reply == BrokerReply(GameStatus.RESET_DONE, None, message, None, None)
    assert decode_broker_reply(Command.JOIN.frame, pack([400, None, "Agent already exists.", None])) == BrokerReply(
        GameStatus.BAD_REQUEST, None, "Agent already exists.", None, None)
    assert decode_broker_reply(Command.STEP.frame, pack([200, None, None, None])).message is None


def test_decode_broker_reply_refuses_other_messages() -> None:
    """A message that is neither a map nor a string is a TypeError naming its type."""
    with pytest.raises(TypeError, match=r"^a reply message must be a map or a string, not list$"):
        decode_broker_reply(Command.STEP.frame, pack([200, None, [1], None]))
    with pytest.raises(TypeError, match=r"^a reply message must be a map or a string, not int$"):
        decode_broker_reply(Command.JOIN.frame, pack([200, None, 1, None]))


# ---------------------------------------------------------------------------- replies
TO = ["127.0.0.1", 5000]


def test_step_reply_key_order() -> None:
    """A step's reply: to_agent, observation, status (reference §2.2)."""
    assert render_reply(TO, GameStatus.OK, {"reward": 1}, None) == (
        b'{"to_agent": ["127.0.0.1", 5000], "observation": {"reward": 1}, "status": "GameStatus.OK"}EOF')


def test_other_reply_key_order() -> None:
    """The rest: to_agent, status, observation, message; a BAD_REQUEST with an object message
    carries observation null, with a string message none (§2.2)."""
    assert render_reply(TO, GameStatus.CREATED, {"reward": 0}, {"message": "Welcome"}) == (
        b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.CREATED", "observation": {"reward": 0}, '
        b'"message": {"message": "Welcome"}}EOF')
    assert render_reply(TO, GameStatus.BAD_REQUEST, None, {"message": "Bad"}) == (
        b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.BAD_REQUEST", "observation": null, '
        b'"message": {"message": "Bad"}}EOF')
    assert render_reply(TO, GameStatus.BAD_REQUEST, None, "Agent already exists.") == (
        b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.BAD_REQUEST", "message": "Agent already exists."}EOF')
    assert render_reply(TO, GameStatus.RESET_DONE, None, {"message": "m"}) == (
        b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.RESET_DONE", "message": {"message": "m"}}EOF')
    assert render_reply(TO, GameStatus.OK, None, None) == (
        b'{"to_agent": ["127.0.0.1", 5000], "status": "GameStatus.OK"}EOF')


def test_eof_inside_strings_is_escaped() -> None:
    """The terminator is the only EOF on the wire; the JSON still reads back equal; ASCII only."""
    reply = render_reply(TO, GameStatus.OK, {"info": {"EOF": "xEOFy é"}}, None)
    assert reply.count(b"EOF") == 1 and reply.endswith(b"}EOF")
    assert b'"\\u0045OF": "x\\u0045OFy \\u00e9"' in reply
    assert json.loads(reply[:-3]) == {"to_agent": TO, "observation": {"info": {"EOF": "xEOFy é"}},
                                      "status": "GameStatus.OK"}
    assert b"eof" in render_reply(TO, GameStatus.OK, None, "eof")


def test_bytes_in_a_reply_are_text() -> None:
    """Bytes (a msgpack bin) render as UTF-8 text, invalid bytes replaced; other types refused."""
    reply = render_reply(TO, GameStatus.OK, {"b": b"ok \xc3\xa9 \xff", "c": bytearray(b"ba")}, None)
    assert json.loads(reply[:-3])["observation"] == {"b": "ok é \ufffd", "c": "ba"}
    with pytest.raises(TypeError, match=r"^not JSON-serialisable: set$"):
        render_reply(TO, GameStatus.OK, {"s": {1}}, None)
    assert reply.endswith(EOF)


class _CountingPattern:
    """Wraps a compiled pattern; counts the bytes its searches examine (start to match or end)."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.examined = 0

    def search(self, buffer: bytearray, pos: int) -> Any:
        match = self.pattern.search(buffer, pos)
        self.examined += (match.start() + 1 if match else len(buffer)) - pos
        return match


@pytest.mark.parametrize("shape", ["object", "top-level string", "escapes at chunk ends", "brackets"])
def test_a_trickled_request_is_scanned_once(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan resumes where it stopped when more bytes come, so a request split across reads
    costs O(n) overall (module docstring): every byte is examined about once, however many reads."""
    strings = _CountingPattern(codec._STRING_SPECIAL)
    structure = _CountingPattern(codec._STRUCTURAL)
    monkeypatch.setattr(codec, "_STRING_SPECIAL", strings)
    monkeypatch.setattr(codec, "_STRUCTURAL", structure)
    chunk = 500
    body = {"object": b'{"a": "' + b"x" * 100_000 + b'"}',
            "top-level string": b'"' + b"x" * 100_000 + b'"',
            "escapes at chunk ends": b'{"a": "' + (b"n" + b"x" * (chunk - 2) + b"\\") * 200 + b'n"}',
            "brackets": b"[" + b"1, " * 33_000 + b"1]"}[shape]
    framer = JsonFramer(1 << 20)
    if shape == "escapes at chunk ends":  # the opening bytes first, so each later read ends in a backslash
        framer.feed(body[:7])
        assert framer.next() is None
        body, start = body[7:], body[:7]
    else:
        start = b""
    found = []
    for offset in range(0, len(body), chunk):
        framer.feed(body[offset:offset + chunk])
        found.extend(drain(framer))
    assert [bytes(d.data) for d in found] == [start + body]
    assert strings.examined + structure.examined <= 2 * len(start + body)
