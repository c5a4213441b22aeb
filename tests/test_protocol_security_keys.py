"""CURVE key files and socket set-up (protocol.security), in-process: the certificate
reader's promises (ZeroMQ's format, errors naming the file), the ``arena keys`` layout,
and the Ironhouse model on real pyzmq sockets over loopback TCP (module docstring of
``protocol.security``; DESIGN §7 for the reasons a client is refused). The broker's ZAP
authenticator is ``broker.security.start_authenticator``; every wait is bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth

from broker.security import start_authenticator, write_keys
from protocol.security import ZAP_DOMAIN, CurveClient, CurveKeys, CurveServer, read_certificate
from protocol.transport import LinkWatch

#: Seconds a handshake may take on loopback before the test gives up (it takes milliseconds).
WAIT = 5.0
#: A 40-character Z85 key with '=' (a Z85 digit) inside, only the first '=' of a line separates;
#: it starts and ends with 'X', also a Z85 digit: only quotes and spaces are stripped.
KEY_WITH_EQUALS = b"Xbcdefghij=klmnopqrs0123456789ABCDEFGHIX"
OTHER_KEY = b"0123456789abcdefghijklmnopqrstuvwxyzABCD"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    directory = tmp_path_factory.mktemp("keys")
    write_keys(directory, ["agent", "world"])
    return CurveKeys(directory)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    """Keys from another ``arena keys`` run: its client keys are in no allow-list of ``layout``."""
    directory = tmp_path_factory.mktemp("other-keys")
    write_keys(directory, ["agent"])
    return CurveKeys(directory)


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _write(path: Path, text: bytes) -> Path:
    path.write_bytes(text)
    return path


def _message(error: pytest.ExceptionInfo[ValueError]) -> str:
    return str(error.value)


# --- read_certificate -------------------------------------------------------------------


def test_read_certificate_reads_what_pyzmq_writes(layout: CurveKeys) -> None:
    """Public and secret certificates of ``arena keys``: the same keys pyzmq's loader reads."""
    public, secret = read_certificate(layout.client_public("agent"))
    assert secret is None
    assert (public, secret) == zmq.auth.load_certificate(layout.client_public("agent"))
    both = read_certificate(layout.client_secret("agent"))
    assert both == zmq.auth.load_certificate(layout.client_secret("agent"))
    assert both[0] == public and both[1] is not None and len(both[1]) == 40 and both[1] != public


def test_read_certificate_parsing_rules(tmp_path: Path) -> None:
    """Spaces and either quote around values are dropped; only the first '=' separates (Z85
    has '='); other names, and a key name without '=', are not keys."""
    text = (b"#   ZeroMQ CURVE certificate\nmetadata\n    name = \"x=y\"\ncurve\n"
            b"    public-key = \"" + KEY_WITH_EQUALS + b"\"\n"
            b"    secret-key='" + OTHER_KEY + b"'   \n"
            b"public-key\nsecret-key\n")
    assert read_certificate(_write(tmp_path / "a.key_secret", text)) == (KEY_WITH_EQUALS, OTHER_KEY)
    public_only = _write(tmp_path / "b.key", b"curve\n  public-key=" + OTHER_KEY + b"\n")
    assert read_certificate(public_only) == (OTHER_KEY, None)


def test_read_certificate_errors_name_the_file(tmp_path: Path) -> None:
    """Every failure is a ValueError whose text starts with the file and says what is wrong."""
    missing = tmp_path / "nowhere.key"
    with pytest.raises(ValueError) as error:
        read_certificate(missing)
    assert _message(error) == f"{missing}: cannot read the certificate: No such file or directory"
    assert error.value.__cause__ is None
    garbage = _write(tmp_path / "garbage.key", b"hello\nsecret-key = " + OTHER_KEY + b"\n")
    with pytest.raises(ValueError) as error:
        read_certificate(garbage)
    assert _message(error) == f"{garbage}: not a ZeroMQ certificate (no public-key)"


@pytest.mark.parametrize(("public", "secret", "what"), [
    (OTHER_KEY[:39], None, "public key"),  # one character short
    (OTHER_KEY + b"E", None, "public key"),  # one too many
    (OTHER_KEY[:39] + b",", None, "public key"),  # 40 characters, ',' is no Z85 digit
    (OTHER_KEY, OTHER_KEY[:39] + b"~", "secret key"),
    (OTHER_KEY, b"", "secret key"),
])
def test_a_key_must_be_40_z85_characters(tmp_path: Path, public: bytes, secret: bytes | None, what: str) -> None:
    text = b"curve\n    public-key = \"" + public + b"\"\n"
    if secret is not None:
        text += b"    secret-key = \"" + secret + b"\"\n"
    path = _write(tmp_path / "bad.key", text)
    with pytest.raises(ValueError) as error:
        read_certificate(path)
    assert _message(error) == f"{path}: the {what} is not a 40-character Z85 key"


# --- CurveKeys, CurveServer.load, CurveClient.load ------------------------------------------


def test_the_layout_of_arena_keys(tmp_path: Path) -> None:
    keys = CurveKeys(str(tmp_path))
    assert keys.directory == tmp_path
    assert keys.server_public == tmp_path / "server.key"
    assert keys.server_secret == tmp_path / "server.key_secret"
    assert keys.allowed == tmp_path / "allowed"
    assert keys.clients == tmp_path / "clients"
    assert keys.client_public("alice") == tmp_path / "clients" / "alice.key"
    assert keys.client_secret("alice") == tmp_path / "clients" / "alice.key_secret"


def test_keys_load_the_server_and_each_client(layout: CurveKeys) -> None:
    """The server: its own pair and every allow-listed public key; a client: the server's
    public key and its own pair, each from the file the layout names."""
    server = layout.server()
    assert (server.public_key, server.secret_key) == read_certificate(layout.server_secret)
    assert server.allowed == layout.allowed
    assert server.allowed_keys == {read_certificate(layout.client_public(name))[0] for name in ("agent", "world")}
    client = layout.client("world")
    assert client.server_key == server.public_key
    assert (client.public_key, client.secret_key) == read_certificate(layout.client_secret("world"))
    assert client != layout.client("agent")
    same = CurveClient.load(layout.server_public, layout.client_secret("world"))
    assert same == client


def test_the_allow_list_reads_only_public_certificates(tmp_path: Path, layout: CurveKeys) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "README").write_text("not a certificate\n")
    (allowed / "agent.key_secret").write_bytes(layout.client_secret("agent").read_bytes())
    server = CurveServer.load(layout.server_secret, allowed)
    assert server.allowed_keys == frozenset() and server.allowed == allowed
    (allowed / "agent.key").write_bytes(layout.client_public("agent").read_bytes())
    assert CurveServer.load(layout.server_secret, str(allowed)).allowed_keys == {layout.client("agent").public_key}


def test_load_errors_name_the_file(tmp_path: Path, layout: CurveKeys) -> None:
    """A public certificate where the secret one is needed, an allow-list that is no
    directory, a broken allowed certificate: ValueErrors naming the path."""
    needs_secret = "a public certificate; this needs the secret one (NAME.key_secret)"
    with pytest.raises(ValueError) as error:
        CurveServer.load(layout.server_public, layout.allowed)
    assert _message(error) == f"{layout.server_public}: {needs_secret}"
    with pytest.raises(ValueError) as error:
        CurveClient.load(layout.server_public, layout.client_public("agent"))
    assert _message(error) == f"{layout.client_public('agent')}: {needs_secret}"
    with pytest.raises(ValueError) as error:
        CurveServer.load(layout.server_secret, layout.server_public)
    assert _message(error) == f"{layout.server_public}: the client allow-list is not a directory"
    with pytest.raises(ValueError) as error:
        CurveServer.load(layout.server_secret, tmp_path / "none")
    assert _message(error) == f"{tmp_path / 'none'}: the client allow-list is not a directory"
    with pytest.raises(ValueError) as error:
        CurveClient.load(tmp_path / "none.key", layout.client_secret("agent"))
    assert _message(error).startswith(f"{tmp_path / 'none.key'}: cannot read the certificate")


# --- apply: real sockets ---------------------------------------------------------------------


def _handshake(context: zmq.Context, server: CurveServer | None, client: CurveClient | None) -> LinkWatch:
    """Bind a ROUTER (``server`` applied) on a loopback port, connect a DEALER
    (``client`` applied) and wait until its first handshake succeeded or failed."""
    router = context.socket(zmq.ROUTER)
    dealer = context.socket(zmq.DEALER)
    if server is not None:
        server.apply(router)
    if client is not None:
        client.apply(dealer)
    router.bind("tcp://127.0.0.1:*")
    link = LinkWatch(dealer)
    dealer.connect(router.last_endpoint.decode())
    deadline = time.monotonic() + WAIT
    while not (link.update() or link.refused) and time.monotonic() < deadline:
        assert link.monitor is not None
        link.monitor.poll(50)
    if link.up:  # the link carries messages both ways
        dealer.send(b"hello")
        assert router.poll(int(WAIT * 1000)), "the server got nothing"
        assert router.recv_multipart()[1] == b"hello"
    link.close()
    dealer.close(linger=0)
    router.close(linger=0)
    return link


def test_server_socket_options(context: zmq.Context, layout: CurveKeys) -> None:
    """A CURVE server in ZAP domain 'arena' with the domain enforced (DESIGN §7)."""
    socket = context.socket(zmq.ROUTER)
    try:
        layout.server().apply(socket)
        assert socket.mechanism == zmq.CURVE and socket.curve_server == 1
        assert socket.zap_domain == ZAP_DOMAIN.encode() == b"arena"
        assert socket.zap_enforce_domain == 1
    finally:
        socket.close(linger=0)
    client = context.socket(zmq.DEALER)
    try:
        layout.client("agent").apply(client)
        assert client.mechanism == zmq.CURVE and client.curve_server == 0
    finally:
        client.close(linger=0)


def test_an_allowed_client_gets_in(context: zmq.Context, layout: CurveKeys) -> None:
    authenticator = start_authenticator(context, layout.server())
    try:
        link = _handshake(context, layout.server(), layout.client("agent"))
    finally:
        authenticator.stop()
    assert link.up and link.failure() is None


def test_a_client_key_not_in_the_allow_list_is_refused(context: zmq.Context, layout: CurveKeys,
                                                       stranger: CurveKeys) -> None:
    unlisted = CurveClient.load(layout.server_public, stranger.client_secret("agent"))
    authenticator = start_authenticator(context, layout.server())
    try:
        link = _handshake(context, layout.server(), unlisted)
    finally:
        authenticator.stop()
    assert not link.ever_up
    assert link.failure() == "the broker refused this client's CURVE key (not in its allow-list)"


def test_without_an_authenticator_nobody_gets_in(context: zmq.Context, layout: CurveKeys) -> None:
    """ZAP_ENFORCE_DOMAIN: a CURVE server with no ZAP handler refuses every client,
    even one in the allow-list (it would otherwise admit anyone knowing its public key)."""
    link = _handshake(context, layout.server(), layout.client("agent"))
    assert not link.ever_up and link.refused


def test_a_wrong_server_key_fails_the_handshake(context: zmq.Context, layout: CurveKeys,
                                                stranger: CurveKeys) -> None:
    """The client's idea of the server key must be the server's own (CurveClient.apply sets it)."""
    own = layout.client("agent")
    wrong = CurveClient(stranger.server().public_key, own.public_key, own.secret_key)
    authenticator = start_authenticator(context, layout.server())
    try:
        link = _handshake(context, layout.server(), wrong)
    finally:
        authenticator.stop()
    assert not link.ever_up
    assert link.failure() == "the CURVE handshake failed (is the broker's public key the right one?)"


def test_curve_at_one_end_only_fails(context: zmq.Context, layout: CurveKeys) -> None:
    for server, client in ((layout.server(), None), (None, layout.client("agent"))):
        link = _handshake(context, server, client)
        assert not link.ever_up
        assert link.failure() == ("CURVE is on at one end only (give both the broker and this client CURVE keys,"
                                  " or neither)")
