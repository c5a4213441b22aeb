"""`arena up` supervises its children (DESIGN §7), through the real command and signals.

A world SIGKILLed while agents play: its agents get GAME_LOST once the broker declares it
dead (heartbeat x liveness), the broker and the other world keep serving (a new agent
plays whole episodes meanwhile), the world is started again with back-off, counted and
logged, and registers again. The broker SIGKILLed: everything stops, exit 1 with one
line. SIGHUP, SIGKILL of `arena up` itself, also while it starts: no child survives, the
ports are free again, no temporary `arena-*` folder stays. Heartbeats are short
(0.2 s x 3); the figures are printed for the closing note (`pytest -s`)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from agents import BaseAgent, ParallelBaseAgent
from agents.policies import random_attacker
from agents.status import query_status
from bin.stack import read_endpoints
from protocol import AgentRole, ErrorCode

from .arena_processes import (
    LOOPBACK_ANY,
    SOLO,
    WAIT,
    Arena,
    port_free,
    processes_mentioning,
    running,
    wait_until,
)

HEARTBEAT = 0.2
LIVENESS = 3
#: Seconds on top of heartbeat x liveness for a GAME_LOST to reach its agents (a loaded 2-core machine).
MARGIN = 4.0


def start_up(tmp_path: Path, *arguments: str, env: dict[str, str] | None = None) -> tuple[Arena, dict[str, Any]]:
    """`arena up --worlds 2` on loopback `*` ports with short heartbeats; its endpoints file read."""
    endpoints_file = tmp_path / "up.json"
    up = Arena("up", "--worlds", "2", "--heartbeat", str(HEARTBEAT), "--liveness", str(LIVENESS),
               "--endpoints-file", str(endpoints_file), *LOOPBACK_ANY, *arguments, env=env)
    try:
        endpoints = read_endpoints(endpoints_file, WAIT, up.process)
        wait_until(lambda: len(world_names(endpoints["frontend"])) == 2, "both worlds registered")
    except BaseException:
        up.kill()
        raise
    return up, endpoints


def world_names(frontend: str) -> set[str]:
    return {world["world"] for world in query_status(frontend, timeout=2.0).get("worlds", [])}


class Newcomer(threading.Thread):
    """A new agent that plays whole episodes until told to stop, registering again after
    GAME_LOST (as users do); ``finished`` holds when each episode ended."""

    def __init__(self, frontend: str) -> None:
        super().__init__(daemon=True)
        self.frontend = frontend
        self.finished: list[float] = []
        self.errors: list[Any] = []
        self.halt = threading.Event()

    def run(self) -> None:
        agent = BaseAgent(self.frontend, AgentRole.Attacker, name="newcomer", timeout=30, retry_interval=0.5)
        rng = random.Random(7)
        deadline = time.monotonic() + WAIT
        try:
            observation = agent.register()
            while not self.halt.is_set() and time.monotonic() < deadline:
                if observation is None:
                    self.errors.append(agent.last_error)
                    observation = agent.register()
                elif observation.end:
                    self.finished.append(time.monotonic())
                    observation = agent.request_game_reset()
                else:
                    observation = agent.make_step(random_attacker(observation, rng))
        finally:
            agent.terminate_connection()


def test_arena_up_restarts_a_killed_world_while_the_broker_and_the_other_world_serve(tmp_path: Path) -> None:
    up, endpoints = start_up(tmp_path, "--task", SOLO)
    frontend = endpoints["frontend"]
    names = [world["world"] for world in endpoints["worlds"]]
    envs = ParallelBaseAgent(frontend, AgentRole.Attacker, 6, game=[f"g{index}" for index in range(6)], timeout=30,
                             retry_interval=0.5)
    newcomer = Newcomer(frontend)
    try:
        observations: list[Any] = envs.register()
        assert all(observation is not None for observation in observations), envs.last_errors
        worlds = list(envs.worlds)
        assert set(worlds) == set(names), f"the games spread over both worlds: {worlds}"
        victim = worlds[0]
        number = 1 + names.index(victim)  # `world N` in arena up's log
        victim_pid = endpoints["pids"][number]
        rngs = [random.Random(index) for index in range(6)]

        def play_round() -> list[Any]:
            actions = [None if observation is None or observation.end else random_attacker(observation, rngs[index])
                       for index, observation in enumerate(observations)]
            return envs.make_step(actions)

        observations = play_round()
        os.kill(victim_pid, signal.SIGKILL)
        killed = time.monotonic()
        newcomer.start()
        results = play_round()                      # the victim's requests wait until it is declared dead
        lost_after = time.monotonic() - killed
        for index, world in enumerate(worlds):
            if world == victim:
                assert results[index] is None and envs.last_errors[index] is not None
                assert envs.last_errors[index].code is ErrorCode.GAME_LOST, envs.last_errors[index]
            else:
                assert results[index] is not None, envs.last_errors[index]
        assert lost_after < HEARTBEAT * LIVENESS + MARGIN, f"GAME_LOST after {lost_after:.2f} s"

        up.wait_for(f"arena up: world {number} (pid {victim_pid}) exited (-9); restart 1 in 0.5 s")
        _, line = up.wait_for(f"arena up: world {number} restarted (pid ")
        second_pid = int(line.rpartition("pid ")[2].rstrip(")"))
        os.kill(second_pid, signal.SIGKILL)         # fails again at once: the back-off doubles
        up.wait_for(f"arena up: world {number} (pid {second_pid}) exited (-9); restart 2 in 1 s")
        _, line = up.wait_for(f"arena up: world {number} restarted (pid ", count=2)
        third_pid = int(line.rpartition("pid ")[2].rstrip(")"))
        assert third_pid != second_pid
        restored = read_endpoints(tmp_path / "up.json", WAIT)
        assert restored["pids"][number] == third_pid, "the endpoints file names the new world"
        survivor = (set(names) - {victim}).pop()
        expected = {survivor, restored["worlds"][number - 1]["world"]}
        wait_until(lambda: world_names(frontend) == expected, f"STATUS lists {expected}")
        registered = time.monotonic()
        newcomer.halt.set()
        newcomer.join(WAIT)
        meanwhile = [at for at in newcomer.finished if killed <= at <= registered]
        print(f"\narena up --worlds 2, heartbeat {HEARTBEAT} s x {LIVENESS}: GAME_LOST {lost_after:.2f} s after the "
              f"SIGKILL; restarted twice (back-off 0.5 s, 1 s) and registered again {registered - killed:.2f} s after "
              f"the first kill; a new agent finished {len(meanwhile)} episodes meanwhile")
        assert meanwhile, f"a new agent plays whole episodes during the restart: {newcomer.errors}"
        assert all(error is not None and error.code is ErrorCode.GAME_LOST for error in newcomer.errors)
        for _ in range(3):                          # the other world's games play on
            observations = [result for result in play_round()]
            for index, world in enumerate(worlds):
                assert world == victim or observations[index] is not None, envs.last_errors[index]
    finally:
        newcomer.halt.set()
        envs.terminate_connection()
        up.process.send_signal(signal.SIGTERM)
        code = up.finish()
        children = {*endpoints["pids"], *read_endpoints(tmp_path / "up.json", WAIT)["pids"]}
        stayed = [pid for pid in children if running(pid)]
        kill_leftovers(stayed)
    assert code == 0, up.text
    assert up.text[-1] == "arena up: stopped"
    assert not stayed and third_pid in children


def test_arena_up_restarts_a_killed_gateway_on_the_same_address(tmp_path: Path) -> None:
    from .test_gateway import NetSecGameClient, join_request

    up, endpoints = start_up(tmp_path, "--task", SOLO, "--gateway", "127.0.0.1:0")
    try:
        gateway_pid = endpoints["pids"][-1]
        os.kill(gateway_pid, signal.SIGKILL)
        up.wait_for(f"arena up: gateway (pid {gateway_pid}) exited (-9); restart 1 in 0.5 s")
        up.wait_for("arena up: gateway restarted (pid ")
        host, _, port = endpoints["gateway"].rpartition(":")

        def joins() -> bool:
            try:
                client = NetSecGameClient((host, int(port)))
            except OSError:
                return False  # not listening yet
            try:
                return bool(client.request(join_request())["status"] == "GameStatus.CREATED")
            finally:
                client.close()

        wait_until(joins, "a NetSecGame client joins through the restarted gateway", timeout=30, interval=0.1)
    finally:
        up.process.send_signal(signal.SIGTERM)
        code = up.finish()
        stayed = [pid for pid in read_endpoints(tmp_path / "up.json", WAIT)["pids"] if running(pid)]
        kill_leftovers(stayed)
    assert code == 0 and not stayed, up.text


def test_arena_up_stops_everything_and_exits_1_when_the_broker_dies(tmp_path: Path) -> None:
    up, endpoints = start_up(tmp_path)
    broker_pid = endpoints["pids"][0]
    try:
        os.kill(broker_pid, signal.SIGKILL)
        code = up.finish()
    finally:
        up.kill()
        stayed = [pid for pid in endpoints["pids"] if running(pid)]
        kill_leftovers(stayed)
    assert code == 1, up.text
    errors = [line for line in up.text if line.startswith("Error:")]
    assert errors == [f"Error: the broker (pid {broker_pid}) exited (-9); everything stopped"], up.text
    assert up.text[-1] == errors[0] and not any("Traceback" in line for line in up.text)
    assert not stayed


def kill_leftovers(pids: list[int]) -> None:
    """A test that failed leaves nothing behind."""
    for pid in pids:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def addresses_of(endpoints: dict[str, Any]) -> list[str]:
    return [endpoints[name] for name in ("frontend", "backend", "trace", "trace_input", "gateway")]


def test_sighup_stops_arena_up_its_children_and_its_temporary_folders(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    up, endpoints = start_up(tmp_path, "--gateway", "127.0.0.1:0", env={**os.environ, "TMPDIR": str(scratch)})
    try:
        up.process.send_signal(signal.SIGHUP)
        code = up.finish()
    finally:
        up.kill()
        stayed = [pid for pid in endpoints["pids"] if running(pid)]
        kill_leftovers(stayed)
    assert code == 0, up.text
    assert up.text[-1] == "arena up: stopped"
    assert len(endpoints["pids"]) == 4 and not stayed
    assert all(port_free(address) for address in addresses_of(endpoints))
    assert not list(scratch.glob("arena-*"))


def test_a_sigkilled_arena_up_takes_its_children_with_it(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    up, endpoints = start_up(tmp_path, "--gateway", "127.0.0.1:0", env={**os.environ, "TMPDIR": str(scratch)})
    try:
        up.process.kill()
        up.finish()
        took = wait_until(lambda: not any(running(pid) for pid in endpoints["pids"]), "every child gone", timeout=20)
        print(f"\narena up SIGKILLed: its {len(endpoints['pids'])} children gone within {took:.2f} s")
        wait_until(lambda: all(port_free(address) for address in addresses_of(endpoints)), "the ports free",
                   timeout=10)
    finally:
        kill_leftovers(endpoints["pids"])
    assert not list(scratch.glob("arena-*"))


def test_arena_up_killed_while_it_starts_leaves_no_child_and_no_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    up = Arena("up", "--worlds", "2", *LOOPBACK_ANY, env={**os.environ, "TMPDIR": str(scratch)})
    folders: list[Path] = []
    try:
        def a_child_started() -> bool:
            folders[:] = list(scratch.glob("arena-*"))
            return bool(folders) and bool(processes_mentioning(str(folders[0])))

        wait_until(a_child_started, "a child started with the temporary folder", interval=0.005)
        up.process.kill()
        up.finish()
        wait_until(lambda: not processes_mentioning(str(folders[0])), "every child gone", timeout=20)
        wait_until(lambda: not folders[0].exists(), "the temporary folder removed", timeout=10)
    finally:
        up.kill()
        for pid in processes_mentioning(str(scratch)):
            os.kill(pid, signal.SIGKILL)
    assert not list(scratch.glob("arena-*"))
