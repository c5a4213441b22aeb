"""CURVE on every socket, with a client-key allow-list (ZAP): keys made by `arena keys`,
a real broker, world and gateway as child processes on loopback `*` ports. A client with
an allowed key plays; one without a key, or with a key the broker does not list, cannot
join and changes nothing. Every wait is bounded; the fixtures stop every process."""

from __future__ import annotations

import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.auth
from click.testing import CliRunner

from agents import BaseAgent, ParallelBaseAgent
from agents.connection import TIMEOUT
from agents.monitor import TraceMonitor
from agents.policies import random_attacker
from agents.status import query_status
from bin.cli import main
from bin.stack import Stack
from broker.security import write_keys
from protocol import AgentRole, CurveClient, CurveKeys, CurveServer
from protocol.security import read_certificate

from .test_gateway import NetSecGameClient, join_request

ROOT = Path(__file__).resolve().parents[1]
SOLO = str(ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml")
REFUSED_WAIT = 1.5  # seconds a refused agent waits for a reply that cannot come
#: Seconds a refused status query or monitor waits: a handshake takes milliseconds, so what
#: got through would show at once; the wait only bounds the proof that nothing did.
NOTHING_WAIT = 0.5


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    directory = tmp_path_factory.mktemp("curve") / "keys"
    result = CliRunner().invoke(main, ["keys", str(directory)])
    assert result.exit_code == 0, result.output
    assert f"arena broker --curve-secret {directory / 'server.key_secret'}" in result.output
    return CurveKeys(directory)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory, keys: CurveKeys) -> CurveClient:
    """A well-formed key pair the broker has never heard of, with the right server key."""
    other = CurveKeys(tmp_path_factory.mktemp("stranger"))
    write_keys(other.directory, ["agent"])
    return CurveClient.load(keys.server_public, other.client_secret("agent"))


@pytest.fixture(scope="module")
def stack(keys: CurveKeys) -> Iterator[Stack]:
    running = Stack(tasks=[SOLO], worlds=1, heartbeat=0.2, gateway="127.0.0.1:0", curve=keys.directory)
    running.start()
    try:
        running.wait_registered()
        yield running
    finally:
        codes = running.stop()
        assert all(code is not None for code in codes)


def test_an_agent_with_an_allowed_key_plays_an_episode_to_the_end(stack: Stack, keys: CurveKeys) -> None:
    agent = BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, curve=keys.client("agent"), timeout=30)
    try:
        observation = agent.register()
        assert observation is not None, agent.last_error
        rng = random.Random(7)
        for _ in range(100):  # max_steps is 50: the episode ends within it
            if observation.end:
                break
            observation = agent.make_step(random_attacker(observation, rng))
            assert observation is not None, agent.last_error
        assert observation.end
    finally:
        agent.terminate_connection()


def test_parallel_agents_with_an_allowed_key_play(stack: Stack, keys: CurveKeys) -> None:
    agent = ParallelBaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, 4, curve=keys.client("agent"),
                              timeout=30)
    try:
        observations = agent.register()
        assert all(observation is not None for observation in observations), agent.last_errors
    finally:
        agent.terminate_connection()


@pytest.mark.parametrize(("who", "reason"), [
    ("no key", "CURVE is on at one end only"),
    ("a key not in the allow-list", "refused this client's CURVE key"),
    ("the wrong server key", "CURVE handshake failed"),
])
def test_a_client_without_an_allowed_key_cannot_join(stack: Stack, keys: CurveKeys, stranger: CurveClient,
                                                      who: str, reason: str) -> None:
    frontend = stack.endpoints["frontend"]
    monitor = keys.client("monitor")
    before = query_status(frontend, curve=monitor)
    assert before, "the status query with an allowed key is answered"
    own = keys.client("agent")
    curve = {"no key": None, "a key not in the allow-list": stranger,
             "the wrong server key": CurveClient(stranger.public_key, own.public_key, own.secret_key)}[who]
    agent = BaseAgent(frontend, AgentRole.Attacker, curve=curve, timeout=REFUSED_WAIT)
    try:
        assert agent.register() is None
        assert agent.last_error is not None and agent.last_error.code == TIMEOUT
        assert reason in agent.last_error.message
    finally:
        agent.terminate_connection()
    assert query_status(frontend, curve=curve, timeout=NOTHING_WAIT) == {}
    after = query_status(frontend, curve=monitor)
    assert (after["seats"], after["games"]) == (before["seats"], before["games"]), "nothing changed"


def test_a_monitor_needs_an_allowed_key_to_see_the_trace(stack: Stack, keys: CurveKeys,
                                                          stranger: CurveClient) -> None:
    with TraceMonitor(stack.endpoints["trace"], curve=keys.client("monitor")) as monitor:
        assert monitor.wait_ready(timeout=10.0) is not None, "an allowed monitor sees the worlds' alive events"
    for curve in (None, stranger):
        with TraceMonitor(stack.endpoints["trace"], curve=curve) as monitor:
            assert monitor.wait_ready(timeout=NOTHING_WAIT) is None


def test_the_gateway_plays_through_a_broker_with_curve(stack: Stack) -> None:
    host, _, port = stack.endpoints["gateway"].rpartition(":")
    client = NetSecGameClient((host, int(port)))
    try:
        assert client.request(join_request())["status"] == "GameStatus.CREATED"
    finally:
        client.close()


# ---------------------------------------------------------------------- key files
def test_arena_keys_writes_pairs_an_allow_list_and_private_secrets(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["keys", str(tmp_path), "--client", "alice"])
    assert result.exit_code == 0, result.output
    layout = CurveKeys(tmp_path)
    names = {"world", "agent", "gateway", "monitor", "alice"}
    assert {path.stem for path in layout.allowed.glob("*.key")} == names
    for path in [layout.server_secret, *(layout.client_secret(name) for name in names)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert read_certificate(path) == zmq.auth.load_certificate(path), "pyzmq reads what we read"
    server = layout.server()
    assert server.allowed_keys == {read_certificate(layout.client_public(name))[0] for name in names}
    assert layout.client("alice").server_key == server.public_key
    first = layout.server_secret.read_bytes()
    again = runner.invoke(main, ["keys", str(tmp_path), "--client", "bob"])
    assert again.exit_code == 0 and "bob.key_secret" in again.output and "alice" not in again.output
    assert layout.server_secret.read_bytes() == first, "existing keys are kept"


def test_arena_keys_refuses_a_bad_client_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keys", str(tmp_path), "--client", "../x"])
    assert result.exit_code == 1 and "bad client name" in result.output


def test_key_loading_errors_name_the_file(tmp_path: Path) -> None:
    layout = CurveKeys(tmp_path)
    write_keys(tmp_path, ["agent"])
    missing = tmp_path / "nowhere.key_secret"
    with pytest.raises(ValueError, match=r"nowhere\.key_secret: cannot read"):
        CurveClient.load(layout.server_public, missing)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("hello\n")
    with pytest.raises(ValueError, match=r"garbage\.key: not a ZeroMQ certificate"):
        read_certificate(garbage)
    short = tmp_path / "short.key"
    short.write_text('curve\n    public-key = "abc"\n')
    with pytest.raises(ValueError, match=r"short\.key: the public key is not a 40-character Z85 key"):
        read_certificate(short)
    with pytest.raises(ValueError, match=r"server\.key: a public certificate; this needs the secret one"):
        CurveServer.load(layout.server_public, layout.allowed)
    with pytest.raises(ValueError, match="not a directory"):
        CurveServer.load(layout.server_secret, tmp_path / "no-such-dir")
    (layout.allowed / "broken.key").write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"broken\.key"):
        layout.server()


def test_curve_options_come_in_pairs_and_name_bad_files(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["broker", "--curve-secret", str(tmp_path / "server.key_secret")])
    assert result.exit_code == 2 and "--curve-allow" in result.output
    result = runner.invoke(main, ["status", "--curve-server", str(tmp_path / "server.key")])
    assert result.exit_code == 2 and "--curve-secret" in result.output
    result = runner.invoke(main, ["status", "--curve-server", str(tmp_path / "server.key"),
                                  "--curve-secret", str(tmp_path / "mine.key_secret")])
    assert result.exit_code == 1 and "server.key: cannot read" in result.output
    result = runner.invoke(main, ["up", "--curve", str(tmp_path)])
    assert result.exit_code == 1 and "arena keys" in result.output

