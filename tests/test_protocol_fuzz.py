"""Hypothesis checks of the compact codec (DESIGN §6): hostile input only ever raises
ProtocolError, and whatever decodes re-encodes to an equal value.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    Observation,
    ProtocolError,
    action_from_compact,
    action_to_compact,
    observation_from_compact,
    observation_to_compact,
    pack,
    state_from_compact,
    state_to_compact,
    unpack,
)

from .protocol_samples import all_actions, rich_state

# =========================================================================== Hypothesis

_IPS = ["192.168.1.2", "10.0.0.1", "::1", "213.47.23.195", "1.1.1.300", "", "x"]
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.sampled_from(_IPS),
    st.sampled_from(["True", "False", "None", "attacker", "Benign"]),
    st.integers(min_value=-1, max_value=10),
)
_values = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=7),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.sampled_from(_IPS)), children, max_size=4
        ),
    ),
    max_leaves=40,
)


@st.composite
def _near_valid(draw: st.DrawFn) -> Any:
    """Mutations of valid compact forms: the shapes the decoders must check most carefully."""
    obs = Observation(rich_state(), -1, False, {"a": 1})
    bases = [action_to_compact(a) for a in all_actions()]
    # The observation in its list form (the decoders take it as well as packed bytes).
    bases += [state_to_compact(rich_state()), [state_to_compact(obs.state), *observation_to_compact(obs)[1:]]]
    value = json.loads(json.dumps(draw(st.sampled_from(bases))))  # deep copy, lists only

    def mutate(node: Any) -> Any:
        if isinstance(node, list) and node and draw(st.booleans()):
            index = draw(st.integers(0, len(node) - 1))
            node[index] = mutate(node[index]) if draw(st.booleans()) else draw(_values)
        elif isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            node[key] = mutate(node[key]) if draw(st.booleans()) else draw(_values)
        return node

    for _ in range(draw(st.integers(0, 3))):
        value = mutate(value)
    return value


_DECODERS = (action_from_compact, state_from_compact, observation_from_compact)


def _only_protocol_errors(value: Any) -> None:
    for decode in _DECODERS:
        with contextlib.suppress(ProtocolError):
            decode(value)


_SETTINGS = settings(
    derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    """DESIGN §6: random bytes either decode or raise ProtocolError, never anything else."""
    try:
        value = unpack(data)
    except ProtocolError:
        return
    _only_protocol_errors(value)


@_SETTINGS
@given(st.one_of(_values, _near_valid()))
def test_random_values_raise_only_protocol_error(value: Any) -> None:
    """DESIGN §6: random nested msgpack values fed to the decoders either decode or raise
    ProtocolError (directly, and after a msgpack round-trip)."""
    _only_protocol_errors(value)
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return
    try:
        unpacked = unpack(packed)
    except ProtocolError:
        return
    _only_protocol_errors(unpacked)


@_SETTINGS
@given(_near_valid())
def test_decoded_values_reencode(value: Any) -> None:
    """DESIGN §6: whatever decodes successfully can be encoded again and decodes equal."""
    for decode, encode in (
        (action_from_compact, action_to_compact),
        (state_from_compact, state_to_compact),
        (observation_from_compact, observation_to_compact),
    ):
        try:
            decoded = decode(value)
        except ProtocolError:
            continue
        again = decode(unpack(pack(encode(decoded))))
        if isinstance(decoded, Observation) and decoded.reward != decoded.reward:  # NaN
            assert again.reward != again.reward
            again, decoded = again._replace(reward=0), decoded._replace(reward=0)
        assert again == decoded
