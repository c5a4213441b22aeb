"""Bad addresses, busy ports and exposed sockets of the servers (`arena up`, `arena broker`,
`arena world`, `arena gateway`), through the real commands.

A malformed address is one stderr line naming the flag, the value and the reason, exit 2,
before any socket exists; an address that cannot be served (a busy port, another
machine's address) one line, exit 1 (`arena up` says its broker's own reason). Binding
where other machines can reach it without CURVE (the gateway: without --allow) prints a
warning naming the exposed sockets: :func:`bin.addresses.exposed` decides, and the
process tests run in a fresh network namespace (`unshare -n`: only a loopback device),
so nothing they bind is reachable from anywhere."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bin.addresses import endpoint_problem, exposed, exposure_warning, listen_problem
from bin.stack import read_endpoints

from .arena_processes import ARENA, LOOPBACK_ANY, ROOT, Arena

TIMEOUT = 60.0
EXPOSED = "reachable from other machines"


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARENA, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port somebody listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize(("arguments", "flag", "value", "reason"), [
    (["broker", "--frontend", "garbage"], "--frontend", "garbage", "expected tcp://HOST:PORT"),
    (["broker", "--backend", "tcp://127.0.0.1:99999"], "--backend", "tcp://127.0.0.1:99999", "out of range"),
    (["broker", "--trace", "udp://127.0.0.1:5572"], "--trace", "udp://127.0.0.1:5572", "scheme 'udp'"),
    (["broker", "--trace-input", "tcp://127.0.0.1"], "--trace-input", "tcp://127.0.0.1", "expected tcp://HOST:PORT"),
    (["up", "--frontend", "garbage"], "--frontend", "garbage", "expected tcp://HOST:PORT"),
    (["up", "--backend", "tcp://:5571"], "--backend", "tcp://:5571", "host is missing"),
    (["up", "--gateway", "127.0.0.1:99999"], "--gateway", "127.0.0.1:99999", "out of range"),
    (["world", "--backend", "tcp://*:5571"], "--backend", "tcp://*:5571", "to connect, name a host"),
    (["world", "--backend", "tcp://127.0.0.1:port"], "--backend", "tcp://127.0.0.1:port", "not a number"),
    (["gateway", "--listen", "127.0.0.1:99999"], "--listen", "127.0.0.1:99999", "out of range"),
    (["gateway", "--listen", "nothing"], "--listen", "nothing", "expected HOST:PORT"),
    (["gateway", "--broker", "garbage"], "--broker", "garbage", "expected tcp://HOST:PORT"),
])
def test_a_malformed_address_is_one_line_and_exit_2(arguments: list[str], flag: str, value: str, reason: str) -> None:
    assert_one_line(run(*arguments), 2, flag, repr(value), reason)


def test_a_busy_port_is_one_line_and_exit_1(busy_port: int) -> None:
    address = f"tcp://127.0.0.1:{busy_port}"
    broker = run("broker", "--frontend", "tcp://127.0.0.1:*", "--backend", address, "--trace", "tcp://127.0.0.1:*",
                 "--trace-input", "tcp://127.0.0.1:*")
    assert_one_line(broker, 1, "--backend", repr(address), "in use")
    gateway = run("gateway", "--listen", f"127.0.0.1:{busy_port}")
    assert_one_line(gateway, 1, "--listen", repr(f"127.0.0.1:{busy_port}"), "in use")


def test_an_address_of_another_machine_is_one_line_and_exit_1() -> None:
    done = run("broker", "--frontend", "tcp://192.0.2.1:5570")  # TEST-NET-1: never this machine's
    assert_one_line(done, 1, "--frontend", "'tcp://192.0.2.1:5570'", "no interface of this machine")


def test_arena_up_reports_its_brokers_reason_for_a_busy_port(busy_port: int) -> None:
    address = f"tcp://127.0.0.1:{busy_port}"
    done = run("up", "--worlds", "1", "--frontend", address, "--backend", "tcp://127.0.0.1:*",
               "--trace", "tcp://127.0.0.1:*", "--trace-input", "tcp://127.0.0.1:*")
    line = assert_one_line(done, 1, "the broker did not start", "--frontend", repr(address), "in use")
    assert "exited" not in line


# ---------------------------------------------------------------------- exposure (item 19)
def test_exposed_names_what_other_machines_can_reach() -> None:
    assert exposed({"--frontend": "tcp://0.0.0.0:5570", "--backend": "tcp://127.0.0.1:5571",
                    "--trace": "tcp://[::]:5572", "--trace-input": "ipc:///tmp/trace"}) == [
        "--frontend tcp://0.0.0.0:5570", "--trace tcp://[::]:5572"]
    assert exposed({"--frontend": "tcp://127.0.0.2:1", "--backend": "tcp://[::1]:2", "--trace": "inproc://t",
                    "--trace-input": "tcp://localhost:3"}) == []
    assert exposed({"--listen": "192.168.1.5:9000"}) == ["--listen 192.168.1.5:9000"]
    assert exposed({"--listen": "127.0.0.1:9000"}) == []
    assert exposure_warning("arena x", [], who="w", remedy="r") is None
    warning = exposure_warning("arena x", ["--a tcp://0.0.0.0:1", "--b tcp://0.0.0.0:2"], who="w", remedy="r")
    assert warning == "arena x: warning: --a tcp://0.0.0.0:1, --b tcp://0.0.0.0:2 are reachable from other machines " \
                      "without protection: w; r"


def test_address_checks() -> None:
    assert endpoint_problem("tcp://*:*", bind=True) is None
    assert endpoint_problem("tcp://[::1]:5570", bind=False) is None
    assert endpoint_problem("ipc:///tmp/x", bind=True) is None
    assert endpoint_problem("inproc://x", bind=True) is None
    assert "at most 107" in (endpoint_problem("ipc:///" + "x" * 120, bind=True) or "")
    assert "port *" in (endpoint_problem("tcp://127.0.0.1:*", bind=False) or "")
    assert "port 0" in (endpoint_problem("tcp://127.0.0.1:0", bind=False) or "")
    assert listen_problem("[::]:0") is None and listen_problem("0.0.0.0:9000") is None
    assert "use 0.0.0.0" in (listen_problem("*:9000") or "")


def in_fresh_network(*arguments: str) -> Arena:
    """`arena ARGUMENTS` in a new network namespace: only `lo` exists, nothing outside
    reaches what it binds."""
    return Arena(*arguments, prefix=["unshare", "--net"])


def stop(process: Arena) -> int:
    process.process.send_signal(signal.SIGTERM)
    return process.finish(TIMEOUT)


def test_a_broker_bound_beyond_loopback_without_curve_warns_naming_the_exposed_sockets() -> None:
    broker = in_fresh_network("broker", "--frontend", "tcp://0.0.0.0:*", "--backend", "tcp://127.0.0.1:*",
                              "--trace", "tcp://*:*", "--trace-input", "tcp://127.0.0.1:*")
    try:
        _, line = broker.wait_for(EXPOSED)
    finally:
        assert stop(broker) == 0, broker.text
    assert line.startswith("arena broker: warning: --frontend tcp://0.0.0.0:") and ", --trace tcp://0.0.0.0:" in line
    assert "--backend" not in line and "--trace-input" not in line and "CURVE" in line
    assert [line for line in broker.text if "warning" in line] == [line], broker.text


def test_a_loopback_broker_and_a_gateway_with_allow_do_not_warn(tmp_path: Path) -> None:
    broker = in_fresh_network("broker", *LOOPBACK_ANY, "--endpoints-file", str(tmp_path / "broker.json"))
    gateway = in_fresh_network("gateway", "--listen", "0.0.0.0:0", "--allow", "10.0.0.0/8", "--broker",
                               "tcp://127.0.0.1:1", "--endpoints-file", str(tmp_path / "gateway.json"))
    try:
        read_endpoints(tmp_path / "broker.json", TIMEOUT, broker.process)    # bound, warned if it would
        read_endpoints(tmp_path / "gateway.json", TIMEOUT, gateway.process)
    finally:
        codes = [stop(broker), stop(gateway)]
    assert codes == [0, 0], broker.text + gateway.text
    assert not any(EXPOSED in line for line in broker.text + gateway.text), broker.text + gateway.text


def test_a_gateway_without_allow_beyond_loopback_warns() -> None:
    gateway = in_fresh_network("gateway", "--listen", "0.0.0.0:0", "--broker", "tcp://127.0.0.1:1")
    try:
        _, line = gateway.wait_for(EXPOSED)
    finally:
        assert stop(gateway) == 0, gateway.text
    assert line.startswith("arena gateway: warning: --listen 0.0.0.0:") and "--allow" in line


def test_arena_up_relays_its_brokers_warning() -> None:
    up = in_fresh_network("up", "--worlds", "1", "--frontend", "tcp://0.0.0.0:*", "--backend", "tcp://127.0.0.1:*",
                          "--trace", "tcp://127.0.0.1:*", "--trace-input", "tcp://127.0.0.1:*")
    try:
        _, line = up.wait_for(EXPOSED)
        up.wait_for("running")
    finally:
        assert stop(up) == 0, up.text
    assert line.startswith("arena broker: warning: --frontend tcp://0.0.0.0:") and "--backend" not in line
