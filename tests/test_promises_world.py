"""World promises no other test pinned (issue 14, items 2, 5, 6 and 7).

* A resent request the game still holds runs nothing and is not refused BUSY: its reply,
  when the hold releases, goes to the client that resent it (DESIGN §7, PROTOCOL.md §7
  "Resends", README "When things fail": the broker restarts). The JOIN version is in
  tests/test_world_resends.py; here the STEP held at an episode's end and the RESET held
  for the others' votes, in process, and a held STEP across a real broker restart.
* An answer to a held request renews the seat's lease (PROTOCOL.md §7 "Leases": "any
  answer to it renews its lease"), so a long hold never costs an agent its seat.
* data-exfiltrated counts no log file (world/rewards.py's table: "log files aside: every
  host has its own"), so an attacker earns nothing for reading its own C&C host's log.
* A scripted agent's turns repeat every ``frequency ± variance`` ticks (README "Scripted
  agents and rewards in the task file", world/scripted.py "Schedules"): the jitter goes
  both ways.
"""

from __future__ import annotations

import itertools
import statistics
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import BaseAgent
from agents.status import query_status
from protocol import PASS, AgentRole, Command, ErrorCode, GameStatus, Observation, decode_reply, pack, seq_bytes
from world import GameSession, load_task
from world.game_host import GameHost

from .conftest import CLIENT, CNC, MICROSOFT_DS, SECRET, SMB, exfiltrate, exploit, find_data, find_services, join, scan
from .scripted_samples import DEFAULT, periodic, task_of, tiny_with
from .test_faults import running_stack, short_dir, wait_until, write_task
from .test_world_resends import join_body, request

__all__ = ["short_dir"]  # the fixture, imported for pytest

JOIN, STEP, RESET = Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame
NIL = b"\xc0"  # a STEP body of msgpack nil: PASS (PROTOCOL.md §3.2)
RESET_BODY = pack([False, False, None])


def duo(max_steps: int, **arena: Any) -> Any:
    """The default task where a game is two attackers (both needed to start)."""
    return task_of(DEFAULT, None, **{"arena.name": "duo", "arena.seats": {"Attacker": 2},
                                     "arena.start": {"Attacker": 2},
                                     "coordinator.agents.Attacker.max_steps": max_steps,
                                     **{f"arena.{key}": value for key, value in arena.items()}})


def replies(messages: list[list[bytes]]) -> dict[bytes, tuple[bytes, bytes, Any]]:
    """seat -> (client, seq, reply body) of each reply message (single replies only)."""
    found = {}
    for message in messages:
        assert message[3] != Command.BATCH.frame, message
        found[message[4]] = (message[2], message[5], decode_reply(message[6]))
    return found


# ---------------------------------------------------------------------- item 2
def test_a_resent_held_step_and_reset_from_a_new_client_get_no_busy_and_their_reply_follows() -> None:
    """An attacker's last step is held until the other attacker's episode ends; the same
    seq resent from a new client identity (a reconnected client) is no BUSY and runs
    nothing, and the released reply goes to the new identity. The same for a RESET held
    for the other's vote."""
    host = GameHost({"duo": duo(max_steps=2)}, "w")
    assert request(host, JOIN, b"red", 1, join_body(task="duo"), client=b"red-1") == []
    assert len(request(host, JOIN, b"blue", 1, join_body(task="duo"), client=b"blue-1")) == 2
    assert replies(request(host, STEP, b"red", 2, NIL, client=b"red-1"))[b"red"][2].status is GameStatus.OK
    assert request(host, STEP, b"red", 3, NIL, client=b"red-1") == [], "held: blue still plays"
    resent = request(host, STEP, b"red", 3, NIL, client=b"red-2")
    assert resent == [], f"a resend of the held step must be a no-op, got {[decode_reply(m[6]) for m in resent]}"
    session = host.games["g"].session
    assert session.seats["red"].steps == 2, "the resend ran nothing"
    assert list(replies(request(host, STEP, b"blue", 2, NIL, client=b"blue-1"))) == [b"blue"]
    released = replies(request(host, STEP, b"blue", 3, NIL, client=b"blue-1"))
    client, seq, reply = released[b"red"]
    assert client == b"red-2", "the held step's reply goes to the client that resent it"
    assert (seq, reply.status, reply.observation.end) == (seq_bytes(3), GameStatus.OK, True)
    assert released[b"blue"][2].observation.end and session.seats["red"].steps == 2

    assert request(host, RESET, b"red", 4, RESET_BODY, client=b"red-2") == [], "held for blue's vote"
    resent = request(host, RESET, b"red", 4, RESET_BODY, client=b"red-3")
    assert resent == [], f"a resend of the held reset must be a no-op, got {[decode_reply(m[6]) for m in resent]}"
    done = replies(request(host, RESET, b"blue", 4, RESET_BODY, client=b"blue-1"))
    client, seq, reply = done[b"red"]
    assert (client, seq, reply.status) == (b"red-3", seq_bytes(4), GameStatus.RESET_DONE)
    assert done[b"blue"][2].status is GameStatus.RESET_DONE and session.episode == 1, "one reset, not two"


@pytest.mark.processes
def test_a_step_held_across_a_broker_restart_gets_its_reply(tmp_path: Path, short_dir: Path) -> None:
    """README "When things fail" (the broker restarts) with a held step: red's last step
    waits for blue's episode; the broker is SIGKILLed and restarted; red's client resends
    (retry_interval 0.3 s) and must not be told BUSY; when blue ends its episode through the
    new broker, red's step is answered with its episode's end."""
    task = Path(write_task(tmp_path, "heldstep", seats={"Attacker": 2}, start={"Attacker": 2}))
    document = yaml.safe_load(task.read_text())
    document["coordinator"]["agents"]["Attacker"]["max_steps"] = 2
    task.write_text(yaml.safe_dump(document))
    addresses = {name: f"ipc://{short_dir}/{name[:5]}" for name in ("frontend", "backend", "trace", "trace_input")}
    stack = running_stack(tasks=[str(task)], worlds=1, **addresses)
    frontend = stack.endpoints["frontend"]
    red, blue = (BaseAgent(frontend, AgentRole.Attacker, task="heldstep", game="pair", name=name, timeout=30,
                           retry_interval=0.3) for name in ("red", "blue"))
    try:
        joined: list[Observation | None] = []
        waiting = threading.Thread(target=lambda: joined.append(red.register()))
        waiting.start()
        assert blue.register() is not None, blue.last_error
        waiting.join(timeout=30)
        assert joined and joined[0] is not None, red.last_error
        assert red.make_step(PASS) is not None, red.last_error
        last: list[Observation | None] = []
        held = threading.Thread(target=lambda: last.append(red.make_step(PASS)))
        held.start()
        wait_until(lambda: query_status(frontend)["worlds"][0]["inflight"] == 1, "red's last step held at the world",
                   timeout=10)
        stack.restart_broker()
        assert blue.make_step(PASS) is not None, blue.last_error
        ended = blue.make_step(PASS)
        assert ended is not None and ended.end, blue.last_error
        held.join(timeout=30)
        assert not held.is_alive()
        assert len(last) == 1 and last[0] is not None, f"red's held step got no reply: {red.last_error}"
        assert last[0].end and last[0].info["end_reason"] == "AgentStatus.TimeoutReached"
    finally:
        red.terminate_connection()
        blue.terminate_connection()
        stack.stop()


# ---------------------------------------------------------------------- item 5
LEASE = 1.0


def test_answering_a_held_step_renews_the_seats_lease() -> None:
    """Lease 1 s. Red's episode-ending step is held 4 s while blue plays on (a held step is
    not leased out), then answered at t=4: red keeps its seat until t=5, a full lease from
    the answer, and loses it after."""
    session = GameSession(duo(max_steps=5, seat_lease=LEASE, hold_timeout=60), seed=1)
    session.join("red", "red", AgentRole.Attacker, 0.0, "red-join")
    assert len(session.join("blue", "blue", AgentRole.Attacker, 0.0, "blue-join")) == 2
    for number in range(5):
        out = session.step("red", PASS, 0.0, f"red-{number}")
    assert out == [], "red's episode ended: held until blue's ends"
    for now in (0.8, 1.6, 2.4, 3.2):
        assert session.tick(now) == [] and "red" in session.seats, "a seat whose step is held is not leased out"
        assert len(session.step("blue", PASS, now, f"blue-{now}")) == 1
    answered = session.step("blue", PASS, 4.0, "blue-last")
    assert {reply.request for reply in answered} == {"red-4", "blue-last"}
    assert session.tick(4.0 + LEASE - 0.01) == []
    kept = "red" in session.seats
    assert kept, "answered at t=4 after a 4 s hold, red lost its seat before a full lease had passed"
    session.tick(4.0 + LEASE + 0.01)
    assert "red" not in session.seats, "a silent seat goes a full lease after its last answer"


def test_answering_a_held_reset_renews_the_seats_lease() -> None:
    """Lease 1 s. Red's reset (t=0.5) is held 2.5 s for blue's vote (blue keeps its own
    seat with refused steps), answered at t=3: red keeps its seat until t=4, not t=1.5."""
    session = GameSession(duo(max_steps=1, seat_lease=LEASE, hold_timeout=60), seed=1)
    session.join("red", "red", AgentRole.Attacker, 0.0, "red-join")
    session.join("blue", "blue", AgentRole.Attacker, 0.0, "blue-join")
    assert session.step("red", PASS, 0.0, "red-1") == []
    assert len(session.step("blue", PASS, 0.0, "blue-1")) == 2, "both episodes ended"
    assert session.reset("red", 0.5, "red-reset") == [], "held for blue's vote"
    for now in (0.9, 1.8, 2.7):
        assert session.tick(now) == [] and "red" in session.seats, "a seat whose reset is held is not leased out"
        [refused] = session.step("blue", PASS, now, f"blue-ended-{now}")
        assert refused.code is ErrorCode.EPISODE_ENDED
    done = session.reset("blue", 3.0, "blue-reset")
    assert {reply.request for reply in done} == {"red-reset", "blue-reset"}
    assert session.tick(3.0 + LEASE - 0.01) == []
    kept = "red" in session.seats
    assert kept, "answered at t=3 after a 2.5 s hold, red lost its seat before a full lease had passed"
    session.tick(3.0 + LEASE + 0.01)
    assert "red" not in session.seats


# ---------------------------------------------------------------------- item 6
def test_reading_the_log_on_the_own_cnc_host_is_no_exfiltrated_data(tmp_path: Path, games: Any) -> None:
    """The attacker controls the public C&C host from the start; FindData there finds its
    log file (every host has one): new data, never exfiltrated data. The real exfiltration
    of the goal datum to the C&C counts 1."""
    document = yaml.safe_load(yaml.safe_dump(DEFAULT))
    document["agents"] = [{"ref": "red", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [
        {"type": "new-data", "weight": 1.0}, {"type": "data-exfiltrated", "weight": 5.0}]}}]
    document["arena"].update(name="logs", start={"Attacker": 1})
    path = tmp_path / "logs.yaml"
    path.write_text(yaml.safe_dump(document))
    game = games(load_task(path))
    game.call("red", join("Red"))
    observation = game.call("red", find_data(CNC, CNC)).observation
    [on_cnc] = [data for host, data in observation.state.known_data.items() if str(host) == CNC]
    assert [datum.type for datum in on_cnc] == ["log"], f"the C&C host holds its log file only: {on_cnc}"
    assert observation.info["reward_breakdown"] == {"new-data": 1.0, "data-exfiltrated": 0.0}, \
        "reading the C&C host's own log counted as exfiltrated data"
    for action in (scan(CLIENT, "192.168.1.0/24"), find_services(CLIENT, SMB), exploit(CLIENT, SMB, MICROSOFT_DS),
                   find_data(SMB, SMB)):
        observation = game.call("red", action).observation
        assert observation.info["reward_breakdown"]["data-exfiltrated"] == 0.0, "private hosts are not exfiltration"
    observation = game.call("red", exfiltrate(SMB, CNC, SECRET)).observation
    assert observation.info["reward_breakdown"] == {"new-data": 1.0, "data-exfiltrated": 5.0}
    assert observation.end and observation.info["end_reason"] == "AgentStatus.Success"


# ---------------------------------------------------------------------- item 7
def test_a_scripted_schedules_jitter_goes_both_ways_within_frequency_plus_minus_variance() -> None:
    """frequency 4, variance 2: over seeded episodes the gaps between turns take every value
    of 2..6 and none outside, about as often below 4 as above (randint(-v, v) is uniform)."""
    frequency, variance = 4, 2
    task = tiny_with([periodic("jitter", start_step=1, frequency=frequency, variance=variance)],
                     **{"coordinator.agents.Attacker.max_steps": 200,
                        "coordinator.agents.Benign": {"max_steps": 200}})
    gaps: list[int] = []
    for seed in range(3):
        session = GameSession(task, seed=seed)
        session.join("red", "Red", AgentRole.Attacker, 0.0, "join")
        for episode in range(2):
            if episode:
                [done] = session.reset("red", 0.0, f"reset-{episode}")
                assert done.status is GameStatus.RESET_DONE
            for step in range(199):
                session.step("red", PASS, 0.0, f"{episode}-{step}")
            ticks = [record.tick for record in session.history("jitter")]
            assert ticks[0] == 1, "the first turn is at start_step"
            gaps += [b - a for a, b in itertools.pairwise(ticks)]
    assert len(gaps) > 200
    low, high = frequency - variance, frequency + variance
    assert all(low <= gap <= high for gap in gaps), f"gaps outside {low}..{high}: {sorted(set(gaps))}"
    assert set(gaps) == set(range(low, high + 1)), f"not every gap of {low}..{high} occurs: {sorted(set(gaps))}"
    below, above = sum(gap < frequency for gap in gaps), sum(gap > frequency for gap in gaps)
    assert below > len(gaps) / 4 and above > len(gaps) / 4, f"{below} gaps below {frequency}, {above} above"
    assert abs(statistics.fmean(gaps) - frequency) < 0.4, f"mean gap {statistics.fmean(gaps):.2f}, not {frequency}"
