"""Nothing answering is reported early (DESIGN §7): `arena monitor`, `arena status` and
`arena gateway` say within 5 s that nothing answers at ADDRESS (and that they keep
trying until their timeout), say what they wait for, and a command that cannot do its
job exits non-zero. Real commands in subprocesses, real brokers (bin.stack.Stack), a
NetSecGame-style TCP client; stderr lines are timestamped as they arrive. The times to
the line are printed for the closing note (`pytest -s`); the bound asserted is 5 s.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import bin.monitor
from bin.cli import main
from bin.stack import Stack
from protocol import CurveKeys

from .arena_processes import SOLO, WAIT, Arena
from .test_gateway import JOIN, SCAN, NetSecGameClient

BOUND = 5.0  # seconds: DESIGN §7's bound for the "nothing answers" line


def free_port() -> int:
    """A port nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Watched(Arena):
    """A command in a subprocess whose stderr lines are timed from its start."""

    def wait_for(self, text: str, timeout: float = WAIT, *, count: int = 1) -> tuple[float, str]:
        """The ``count``-th stderr line containing ``text``: (seconds since the start, line)."""
        arrived, line = super().wait_for(text, timeout, count=count)
        return arrived - self.started, line

    def stop(self) -> None:
        self.kill()
        self.finish()


@pytest.fixture
def watched() -> Iterator[list[Watched]]:
    started: list[Watched] = []
    yield started
    for command in started:
        command.stop()


def start(watched: list[Watched], *arguments: str) -> Watched:
    watched.append(Watched(*arguments))
    return watched[-1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    directory = tmp_path_factory.mktemp("curve") / "keys"
    result = CliRunner().invoke(main, ["keys", str(directory)])
    assert result.exit_code == 0, result.output
    return CurveKeys(directory)


# ---------------------------------------------------------------------------- arena monitor
def test_monitor_once_where_nobody_listens_says_so_early_and_fails(watched: list[Watched]) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    monitor = start(watched, "monitor", "--trace", address, "--once", "--seconds", "6", "--json")
    took, line = monitor.wait_for("nothing answers at")
    print(f"\narena monitor --once, nobody listening: 'nothing answers' after {took:.2f} s")
    assert took < BOUND
    assert line == f"arena monitor: nothing answers at {address} (nothing accepts a connection there); " \
                   f"still trying for {line.rsplit('for ', 1)[1]}"
    assert monitor.finish() == 1
    assert monitor.stdout == "", "no snapshot: '0 messages' would read as a quiet trace"
    assert monitor.text[-1] == f"Error: nothing answered at {address} (nothing accepts a connection there) " \
                               f"in {monitor.text[-1].rsplit('in ', 1)[1]}"


def test_monitor_once_at_a_curve_broker_without_keys_says_so_early_and_fails(
        watched: list[Watched], keys: CurveKeys) -> None:
    with Stack(tasks=[SOLO], worlds=1, heartbeat=0.2, curve=keys.directory) as stack:
        trace = stack.endpoints["trace"]
        refused = start(watched, "monitor", "--trace", trace, "--once", "--seconds", "6")
        took, line = refused.wait_for("nothing answers at")
        print(f"\narena monitor --once, CURVE broker, no keys: 'nothing answers' after {took:.2f} s")
        assert took < BOUND and "CURVE is on at one end only" in line
        assert refused.finish() == 1 and refused.stdout == ""
        allowed = start(watched, "monitor", "--trace", trace, "--once", "--seconds", "2", "--json",
                        f"--curve-server={keys.server_public}", f"--curve-secret={keys.client_secret('monitor')}")
        assert allowed.finish() == 0, allowed.text
        assert json.loads(allowed.stdout)["messages"] > 0 and not any("nothing answers" in t for t in allowed.text)


def test_monitor_keeps_trying_until_the_trace_answers(watched: list[Watched]) -> None:
    """Live (--duration): nothing answers, then a broker binds the address; it connects."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    monitor = start(watched, "monitor", "--trace", address, "--duration", "25", "--seconds", "0.5")
    took, _ = monitor.wait_for("nothing answers at")
    assert took < BOUND
    with Stack(tasks=[SOLO], worlds=1, heartbeat=0.2, trace=address):
        monitor.wait_for(f"arena monitor: connected to {address}")
        monitor.process.send_signal(signal.SIGINT)
        assert monitor.finish() == 0, monitor.text
    assert "messages" in monitor.stdout


def test_monitor_connected_to_a_quiet_trace_says_what_it_waits_for(watched: list[Watched]) -> None:
    """A broker with no world: the link is up, no event comes; exit 0 (it did its job)."""
    with Stack(tasks=[SOLO], worlds=0) as stack:
        monitor = start(watched, "monitor", "--trace", stack.endpoints["trace"], "--once", "--seconds", "5")
        _, line = monitor.wait_for("waiting for trace events")
        assert line.startswith(f"arena monitor: connected to {stack.endpoints['trace']}; ")
        assert monitor.finish() == 0 and monitor.stdout.startswith("[")
        assert not any("nothing answers" in text for text in monitor.text)


def test_the_live_dashboard_shows_that_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the notice is part of the dashboard (no stray lines under rich's Live)."""
    monkeypatch.setattr(bin.monitor, "_is_terminal", lambda: True)
    address = f"tcp://127.0.0.1:{free_port()}"
    done = CliRunner().invoke(main, ["monitor", "--trace", address, "--duration", "2"])
    assert done.exit_code == 1
    shown = " ".join(done.stdout.split())  # rich wraps the line at the terminal's width
    assert f"nothing answers at {address} (nothing accepts a connection there); still trying" in shown
    assert done.stderr.splitlines() == [f"Error: nothing answered at {address} (nothing accepts a connection "
                                        f"there) in {done.stderr.rsplit('in ', 1)[1].strip()}"]


# ---------------------------------------------------------------------------- arena status
def test_status_says_what_it_waits_for_and_fails_naming_the_address(watched: list[Watched]) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    status = start(watched, "status", "--broker", address, "--timeout", "4")
    took, line = status.wait_for("no answer from")
    print(f"\narena status, nobody listening: 'no answer ... yet' after {took:.2f} s")
    assert took < BOUND
    assert line == f"arena status: no answer from {address} yet (nothing accepts a connection there); " \
                   "waiting up to 4 s"
    assert status.finish() == 1 and status.stdout == ""
    assert status.text[-1] == f"Error: no answer from a broker at {address} within 4 s " \
                              "(nothing accepts a connection there)"


# ---------------------------------------------------------------------------- arena gateway
def gateway_address(endpoints_file: Path, command: Watched) -> tuple[str, int]:
    deadline = time.monotonic() + WAIT
    while not endpoints_file.exists():
        assert command.process.poll() is None and time.monotonic() < deadline, command.text
        time.sleep(0.02)  # another process writes the file: nothing to wait on but the file
    host, _, port = json.loads(endpoints_file.read_text())["gateway"].rpartition(":")
    return host, int(port)


def test_a_gateway_without_a_broker_says_so_and_refuses_its_agents_early(
        watched: list[Watched], tmp_path: Path) -> None:
    broker = f"tcp://127.0.0.1:{free_port()}"
    endpoints = tmp_path / "gateway.json"
    gateway = start(watched, "gateway", "--broker", broker, "--listen", "127.0.0.1:0",
                    "--endpoints-file", str(endpoints))
    address = gateway_address(endpoints, gateway)
    client = NetSecGameClient(address)
    try:
        sent = time.monotonic()
        reply = client.request(JOIN)
        refused_after = time.monotonic() - sent
        took, line = gateway.wait_for("nothing answers at")
        print(f"\narena gateway, no broker: 'nothing answers' after {took:.2f} s; a JoinGame refused after "
              f"{refused_after:.2f} s (broker_grace 3 s)")
        assert took < BOUND and f"nothing answers at {broker} (nothing accepts a connection there)" in line
        assert "still trying" in line
        assert reply["status"] == "GameStatus.BAD_REQUEST" and reply["message"]["reason"] == "broker unreachable"
        assert "does not answer" in reply["message"]["message"]
        assert refused_after < BOUND
    finally:
        client.close()
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.finish() == 0, gateway.text


def test_a_gateway_serves_once_its_broker_comes_up(watched: list[Watched], tmp_path: Path) -> None:
    port = free_port()
    broker = f"tcp://127.0.0.1:{port}"
    endpoints = tmp_path / "gateway.json"
    gateway = start(watched, "gateway", "--broker", broker, "--listen", "127.0.0.1:0",
                    "--endpoints-file", str(endpoints))
    address = gateway_address(endpoints, gateway)
    gateway.wait_for("nothing answers at")
    with Stack(tasks=[SOLO], worlds=1, heartbeat=0.2, frontend=broker) as stack:
        stack.wait_registered()
        gateway.wait_for(f"the broker at {broker} answers now")
        client = NetSecGameClient(address)
        try:
            assert client.request(JOIN)["status"] == "GameStatus.CREATED"
            assert client.request(SCAN)["status"] == "GameStatus.OK"
        finally:
            client.close()
    gateway.process.send_signal(signal.SIGTERM)
    assert gateway.finish() == 0, gateway.text


def test_a_gateway_waits_for_a_broker_that_answered_once_and_restarts(
        watched: list[Watched], tmp_path: Path) -> None:
    """Once the broker has answered, losing it is logged and its requests wait (resends,
    reply timeout) instead of being refused: a restarted broker answers them."""
    ports = {name: free_port() for name in ("frontend", "backend", "trace", "trace_input")}
    with Stack(tasks=[SOLO], worlds=1, heartbeat=0.2,
               **{name: f"tcp://127.0.0.1:{port}" for name, port in ports.items()}) as stack:
        stack.wait_registered()
        broker = stack.endpoints["frontend"]
        endpoints = tmp_path / "gateway.json"
        gateway = start(watched, "gateway", "--broker", broker, "--listen", "127.0.0.1:0",
                        "--endpoints-file", str(endpoints))
        client = NetSecGameClient(gateway_address(endpoints, gateway))
        try:
            assert client.request(JOIN)["status"] == "GameStatus.CREATED"
            killed = time.monotonic()
            stack.processes[0].kill()
            stack.processes[0].wait()
            gateway.wait_for(f"the broker at {broker} stopped answering")
            print(f"\narena gateway, broker killed: 'stopped answering' after {time.monotonic() - killed:.2f} s")
            client.send(SCAN)
            client.sock.settimeout(4.5)  # past broker_grace: a broker that answered once is waited for
            with pytest.raises(TimeoutError):
                client.receive()
            client.sock.settimeout(WAIT)
            stack.restart_broker()
            assert client.receive()["status"] == "GameStatus.OK", "the resend reached the restarted broker"
            gateway.wait_for(f"the broker at {broker} answers now")
        finally:
            client.close()
        gateway.process.send_signal(signal.SIGTERM)
        assert gateway.finish() == 0, gateway.text
