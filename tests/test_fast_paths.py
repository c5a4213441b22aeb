"""The fast paths change nothing (DESIGN §6): cached and fresh encodings, batched and
single requests, cached and freshly computed valid actions give the same games.

Each test plays seeded episodes two ways and compares every reply byte for byte (or
every decoded observation), so a cache that returned a stale or shared-but-wrong object
would show up as a difference."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from agents.policies import action_sort_key, random_attacker
from agents.utils import _valid_actions, generate_valid_actions, sorted_valid_actions
from protocol import (
    PROTOCOL_FRAME,
    Command,
    GameState,
    action_from_compact,
    action_from_packed,
    action_to_compact,
    compact,
    decode_reply,
    pack,
    pack_action,
    seq_bytes,
    state_from_compact,
    unpack,
)
from world import load_task
from world.game_host import GameHost

from .conftest import TASKS

REQUEST, JOIN, STEP, RESET, BATCH = (Command.REQUEST.frame, Command.JOIN.frame, Command.STEP.frame,
                                     Command.RESET.frame, Command.BATCH.frame)
GAMES = 6
ROUNDS = 60  # max_steps 50: every episode ends, and the next begins after a reset


def fresh_decode(body: bytes) -> Any:
    """A reply decoded with every cache emptied first: what an uncached decoder sees."""
    compact._states.clear()
    compact._interned.clear()
    compact._actions.clear()
    return decode_reply(body)


def play(batched: bool, decode: Callable[[bytes], Any], *, use_cache: bool = True) -> list[Any]:
    """Seeded random attackers in GAMES games of one world; every reply body, in order."""
    task = load_task(TASKS / "scenario1_small_attacker.yaml")
    host = GameHost({task.name: task}, "w", trace=True)
    seats = [f"seat-{index}".encode() for index in range(GAMES)]
    seqs = dict.fromkeys(seats, 1)
    rngs = {seat: random.Random(index) for index, seat in enumerate(seats)}
    observations: dict[bytes, Any] = {}
    bodies: list[Any] = []

    def send(frames: list[bytes]) -> None:
        for message in host.request(frames, 0.0):
            triples = range(6, len(message), 3) if message[3] == BATCH else [4]
            for index in triples:
                body = message[index + 2]
                bodies.append((message[index], body))
                observations[message[index]] = decode(body).observation

    for index, seat in enumerate(seats):
        join = pack({"task": task.name, "role": "Attacker", "game": f"g{index}", "name": "a"})
        send([PROTOCOL_FRAME, REQUEST, b"c", JOIN, seat, seq_bytes(1), join])
    for _ in range(ROUNDS):
        requests = []
        for seat in seats:
            seqs[seat] += 1
            observation = observations[seat]
            if observation.end:
                requests.append((RESET, seat, pack([False, False, None])))
            else:
                action = random_attacker(observation, rngs[seat]) if use_cache else _uncached_choice(
                    observation.state, rngs[seat])
                requests.append((STEP, seat, pack(action_to_compact(action))))
        for command in (STEP, RESET):
            group = [(seat, body) for kind, seat, body in requests if kind == command]
            if batched and len(group) > 1:
                frames = [PROTOCOL_FRAME, REQUEST, b"c", BATCH, b"w", command]
                for seat, body in group:
                    frames += (seat, seq_bytes(seqs[seat]), body)
                send(frames)
            else:
                for seat, body in group:
                    send([PROTOCOL_FRAME, REQUEST, b"c", command, seat, seq_bytes(seqs[seat]), body])
    return sorted(bodies, key=lambda item: item[0])  # stable: each seat's replies in order


def _uncached_choice(state: GameState, rng: random.Random) -> Any:
    actions = sorted(_valid_actions(state), key=action_sort_key)
    return rng.choice(actions) if actions else None


def test_batched_and_single_requests_give_the_same_replies_byte_for_byte() -> None:
    assert play(batched=True, decode=decode_reply) == play(batched=False, decode=decode_reply)


def test_cached_and_fresh_decoding_give_the_same_games() -> None:
    cached = play(batched=True, decode=decode_reply)
    fresh = play(batched=True, decode=fresh_decode, use_cache=False)
    assert cached == fresh
    assert len(cached) > GAMES * ROUNDS / 2


def test_a_cached_state_is_the_same_object_and_equals_a_fresh_decode() -> None:
    body = play(batched=False, decode=decode_reply)[-1][1]
    first, again = decode_reply(body).observation.state, decode_reply(body).observation.state
    assert first is again, "the same bytes give the same immutable state"
    assert fresh_decode(body).observation.state == first
    packed = unpack(body)[1][0]
    assert state_from_compact(unpack(packed)) == first, "the list form decodes the same"


@pytest.mark.parametrize("seed", range(5))
def test_cached_valid_actions_equal_a_fresh_computation(seed: int) -> None:
    task = load_task(TASKS / "scenario1_small_attacker.yaml")
    host = GameHost({task.name: task}, "w")
    [reply] = host.request([PROTOCOL_FRAME, REQUEST, b"c", JOIN, b"s", seq_bytes(1),
                            pack({"task": task.name, "role": "Attacker", "game": "g", "name": "a"})], 0.0)
    observation = decode_reply(reply[6]).observation
    rng = random.Random(seed)
    for step in range(2, 30):
        state = observation.state
        assert generate_valid_actions(state) == set(_valid_actions(state))
        assert generate_valid_actions(state) is not generate_valid_actions(state), "callers get their own set"
        assert list(sorted_valid_actions(state)) == sorted(_valid_actions(state), key=action_sort_key)
        action = rng.choice(sorted_valid_actions(state))
        [reply] = host.request([PROTOCOL_FRAME, REQUEST, b"c", STEP, b"s", seq_bytes(step), pack_action(action)], 0.0)
        observation = decode_reply(reply[6]).observation
        if observation.end:
            break


def test_packed_actions_round_trip_and_are_decoded_once() -> None:
    task = load_task(TASKS / "scenario1_small_attacker.yaml")
    host = GameHost({task.name: task}, "w")
    [reply] = host.request([PROTOCOL_FRAME, REQUEST, b"c", JOIN, b"s", seq_bytes(1),
                            pack({"task": task.name, "role": "Attacker", "game": "g", "name": "a"})], 0.0)
    for action in generate_valid_actions(decode_reply(reply[6]).observation.state):
        packed = pack_action(action)
        assert packed == pack(action_to_compact(action)) and pack_action(action) is packed
        decoded = action_from_packed(packed)
        assert decoded == action == action_from_compact(unpack(packed))
        assert action_from_packed(bytes(packed)) is decoded


def test_the_decoder_caches_stay_bounded() -> None:
    for index in range(compact.STATE_CACHE_SIZE + 10):
        compact.state_from_packed(pack([[], [f"10.0.{index // 256}.{index % 256}"], [], {}, {}, {}]))
    assert len(compact._states) <= compact.STATE_CACHE_SIZE
    assert len(compact._interned) <= compact.INTERN_SIZE
