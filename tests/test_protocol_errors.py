"""ProtocolError and describe (protocol/errors.py): the text a MALFORMED reply carries as its
``reason`` (PROTOCOL.md §3.3, §5) and the short value descriptions that keep it bounded.
"""

from __future__ import annotations

import pickle

from protocol import ArenaError, ProtocolError
from protocol.errors import describe


def test_describe_names_the_type_and_repr() -> None:
    """errors.describe: "<type> <repr>", for any value."""
    assert describe("x") == "str 'x'"
    assert describe(5) == "int 5"
    assert describe(None) == "NoneType None"
    assert describe([1, "a"]) == "list [1, 'a']"
    assert describe(b"\x08") == "bytes b'\\x08'"


def test_describe_truncates_at_the_limit() -> None:
    """errors.describe: a repr of at most ``limit`` (60) characters is kept whole; a longer
    one is cut to exactly ``limit`` characters ending in "...", so a huge input never floods
    a log line or a reply."""
    sixty = "x" * 58  # repr: 60 characters with the quotes
    assert describe(sixty) == f"str {sixty!r}"
    sixty_one = "y" * 59
    assert describe(sixty_one) == "str '" + "y" * 56 + "..."
    assert len(describe(sixty_one)) == len("str ") + 60
    assert describe("z" * 10_000) == "str '" + "z" * 56 + "..."
    assert describe(list(range(100)), limit=10) == "list [0, 1, ..."
    assert describe("abcdefgh", limit=10) == "str 'abcdefgh'"


def test_protocol_error_names_field_expected_and_got() -> None:
    """errors.ProtocolError: "<field>: expected <expected>, got <got>", the three parts kept
    as attributes; it is an ArenaError and a ValueError (NetSecGame's callers catch that)."""
    error = ProtocolError("parameters.source_host", "an IP address", "str 'x'")
    assert str(error) == "parameters.source_host: expected an IP address, got str 'x'"
    assert (error.field, error.expected, error.got) == ("parameters.source_host", "an IP address", "str 'x'")
    assert isinstance(error, ArenaError) and isinstance(error, ValueError)


def test_within_prefixes_the_field_path() -> None:
    """errors.ProtocolError.within: the same error one level down (``prefix.field``); an error
    without a field becomes the prefix's own."""
    inner = ProtocolError("ip", "an IP address", "str 'x'")
    outer = inner.within("parameters.source_host")
    assert str(outer) == "parameters.source_host.ip: expected an IP address, got str 'x'"
    assert (outer.field, outer.expected, outer.got) == ("parameters.source_host.ip", "an IP address", "str 'x'")
    bare = ProtocolError("", "a map", "list []").within("body")
    assert str(bare) == "body: expected a map, got list []"
    assert bare.field == "body"


def test_protocol_error_pickles_whole() -> None:
    """errors.ProtocolError: crosses process boundaries (pickle) with its text and parts."""
    error = ProtocolError("reply.code", "an error code or nil", "int 5")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is ProtocolError
    assert str(back) == str(error) == "reply.code: expected an error code or nil, got int 5"
    assert (back.field, back.expected, back.got) == ("reply.code", "an error code or nil", "int 5")
