"""The NetSecGame gateway: NetSecGame's TCP + JSON agents play through the broker unchanged.

Each accepted TCP connection is one seat. Requests are NetSecGame's (bare JSON, no
delimiter, reference netsecgame.md §2); they are parsed as bytes arrive, translated to
the msgpack protocol (JoinGame → JOIN, game actions → STEP, ResetGame → RESET,
QuitGame → QUIT; PROTOCOL.md) and sent to the broker frontend over one DEALER; the
replies go back in NetSecGame's format, JSON then ``EOF``. One process, one
``zmq.Poller`` loop over the listening socket, every client socket and the DEALER; no
threads. Where upstream hangs or stops, the gateway answers BAD_REQUEST (DESIGN §3).

Each client is a :class:`~broker.gateway_connection.Connection`: it frames, queues and
validates its requests and buffers its replies (pipelined, split, incomplete, oversized
and invalid requests are handled there). This module is the rest:

* accepting (``allow`` list, ``max_connections``), the broker DEALER, and routing each
  reply to the connection that waits for it;
* QuitGame is answered; a closed connection quits its seat; a reply the broker never
  sends is answered BAD_REQUEST after ``reply_timeout``; a client with no write
  progress for ``send_timeout`` is dropped;
* whether the broker answers at all (:class:`~protocol.transport.LinkWatch`, the
  DEALER's handshake events): while it never has since the gateway started, the log says
  so within ``NOTICE_AFTER`` seconds (at once on a refused CURVE key) and every request
  is answered BAD_REQUEST ("The game server does not answer") after ``broker_grace``
  seconds (default 3) instead of ``reply_timeout``; once it has, a broker that goes away
  is logged and waited for as before (resends, ``reply_timeout``): it may be restarting;
* ``EOF`` inside a string is escaped (:mod:`broker.gateway_codec`), so a NetSecGame
  client that deletes every ``EOF`` still parses the reply;
* on shutdown, waiting agents are told and every seat is quit.

Run it (``arena gateway`` does this)::

    gateway = Gateway("tcp://127.0.0.1:5570", ("0.0.0.0", 9000), task="default")
    gateway.bind()
    signal.signal(signal.SIGTERM, lambda *_: gateway.stop())
    try:
        gateway.run()
    finally:
        gateway.close()

and point an unchanged NetSecGame agent at it: ``BaseAgent("127.0.0.1", 9000, AgentRole.Attacker)``.

>>> gateway = Gateway("tcp://127.0.0.1:5570", ("127.0.0.1", 0))
>>> host, port = gateway.bind()
>>> host, port > 0
('127.0.0.1', True)
>>> gateway.close()
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import itertools
import logging
import math
import os
import socket
import time
from collections.abc import Sequence

import zmq

from protocol import PROTOCOL_FRAME, Command, ErrorCode, GameStatus, int_from_seq, pack, seq_bytes, unpack
from protocol.security import CurveClient
from protocol.transport import NOTICE_AFTER, LinkWatch

from .gateway_codec import MALFORMED_MESSAGE, NIL, JsonFramer, decode_broker_reply, render_reply
from .gateway_connection import Connection

__all__ = ["MALFORMED_MESSAGE", "NOTICE_AFTER", "UNREACHABLE_MESSAGE", "Gateway"]

log = logging.getLogger(__name__)

_JOIN, _QUIT = Command.JOIN.frame, Command.QUIT.frame
#: Codes after which the seat no longer exists (a later JoinGame may take a new one).
_SEAT_GONE = frozenset({ErrorCode.UNKNOWN_SEAT.value, ErrorCode.SEAT_RELEASED.value, ErrorCode.GAME_LOST.value,
                        ErrorCode.NOT_JOINED.value})
_POLLIN, _POLLOUT, _POLLERR = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.POLLERR)
_HWM = 100_000
#: What a NetSecGame agent is told when the broker has never answered.
UNREACHABLE_MESSAGE = "The game server does not answer: the gateway cannot reach its broker. Try again later."


class Gateway:
    """A NetSecGame-protocol TCP server in front of a broker (module docstring).

    ``broker`` is the broker's frontend; ``listen`` (host, port), port 0 for a free one;
    ``task`` and ``game`` go into every JOIN (None: the broker's default task; any game
    waiting for the role). Limits: ``max_connections``, ``max_request_bytes`` per request,
    ``max_queue`` parsed requests waiting per connection (reading pauses beyond it),
    ``max_output_bytes`` of unsent replies and ``send_timeout`` seconds without write
    progress (a client that never reads is dropped). ``allow``: client networks
    (CIDR strings) allowed to connect; None allows all. ``curve``: the gateway's CURVE
    keys for a broker with CURVE on (its NetSecGame clients cannot carry keys).
    ``broker_grace``: seconds a request waits while the broker has never answered, before
    it is answered BAD_REQUEST (a broker that answered once is waited for ``reply_timeout``).
    """

    def __init__(self, broker: str, listen: tuple[str, int] = ("127.0.0.1", 9000), *, task: str | None = None,
                 game: str | None = None, incomplete_timeout: float = 0.1, max_request_bytes: int = 1 << 20,
                 reply_timeout: float = 120.0, max_connections: int = 1024, max_queue: int = 64,
                 max_output_bytes: int = 16 << 20, send_timeout: float = 60.0, retry_interval: float = 2.0,
                 broker_grace: float = 3.0, allow: Sequence[str] | None = None, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> None:
        if not (incomplete_timeout > 0 and reply_timeout > 0 and send_timeout > 0 and retry_interval > 0
                and broker_grace > 0):
            raise ValueError("timeouts must be positive")
        if min(max_request_bytes, max_connections, max_queue, max_output_bytes) < 1:
            raise ValueError("limits must be at least 1")
        self.broker = broker
        self.listen = listen
        self.task, self.game = task, game
        self.incomplete_timeout = incomplete_timeout
        self.max_request_bytes = max_request_bytes
        self.reply_timeout = reply_timeout
        self.max_connections = max_connections
        self.max_queue = max_queue
        self.max_output_bytes = max_output_bytes
        self.send_timeout = send_timeout
        self.retry_interval = retry_interval
        self.broker_grace = broker_grace
        self.allow = None if allow is None else [ipaddress.ip_network(net, strict=False) for net in allow]
        self.context = context if context is not None else zmq.Context()
        self._own_context = context is None
        dealer = self.context.socket(zmq.DEALER)
        if curve is not None:
            curve.apply(dealer)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDHWM, _HWM)
        dealer.setsockopt(zmq.RCVHWM, _HWM)
        # Our own routing id: after a reconnect the broker still sees the owner of our seats.
        dealer.setsockopt(zmq.ROUTING_ID, b"gateway-" + os.urandom(8).hex().encode())
        self._link = LinkWatch(dealer, who="the gateway")  # before connecting: the first handshake is an event too
        self._link_said = "unknown"      # what the log last said about the link: silent, up, lost
        self._started = time.monotonic()
        dealer.connect(broker)
        self._dealer = dealer
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Each Connection (broker.gateway_connection) also uses _poller, _partial, _join_numbers,
        # _send and _drop: it registers its own socket and hands requests and drops back here.
        self._poller = zmq.Poller()
        self._conns: dict[int, Connection] = {}
        self._inflight: dict[tuple[bytes, bytes], Connection] = {}
        #: Replies nobody waits for any more: key -> (expiry, was a JOIN).
        self._orphans: dict[tuple[bytes, bytes], tuple[float, bool]] = {}
        self._partial: dict[Connection, float] = {}  # incomplete-document deadlines
        self._join_numbers = itertools.count(1)
        self._stopping = False
        self._sweep_every = min(1.0, reply_timeout / 4, send_timeout / 4, retry_interval / 2, broker_grace / 4)
        self.address: tuple[str, int] | None = None

    @property
    def connections(self) -> int:
        """Open client connections."""
        return len(self._conns)

    @property
    def in_flight(self) -> int:
        """Requests sent to the broker and not answered yet."""
        return len(self._inflight)

    # ------------------------------------------------------------------ lifecycle
    def bind(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port) (port 0 resolved)."""
        if self._listener is None:
            host, port = self.listen
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, port), family=family, backlog=512)
            listener.setblocking(False)
            self._listener = listener
            self.address = tuple(listener.getsockname()[:2])  # type: ignore[assignment]
        assert self.address is not None
        return self.address

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from a signal handler or another thread)."""
        self._stopping = True
        with contextlib.suppress(OSError):  # the wake pipe is full (a wake-up is pending) or closed
            self._wake_w.send(b"!")

    def close(self) -> None:
        """Close every socket (after :meth:`run` returned, or instead of it). Idempotent."""
        if self._dealer.closed:
            return
        for conn in list(self._conns.values()):
            self._discard(conn)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = None
        self._link.close()
        self._dealer.close(linger=0)
        if self._own_context:
            self.context.term()

    def run(self) -> None:
        """Serve until :meth:`stop`; binds first if needed. Seats are quit on the way out."""
        self.bind()
        assert self._listener is not None
        listener_fd, wake_fd = self._listener.fileno(), self._wake_r.fileno()
        poller, dealer, link_events = self._poller, self._dealer, self._link.monitor
        self._started = time.monotonic()
        poller.register(dealer, _POLLIN)
        if link_events is not None:
            poller.register(link_events, _POLLIN)
        poller.register(listener_fd, _POLLIN)
        poller.register(wake_fd, _POLLIN)
        log.info("gateway listening on %s:%d for broker %s (task %s, game %s)", *self.address,  # type: ignore[misc]
                 self.broker, self.task or "default", self.game or "any")
        next_sweep = time.monotonic() + self._sweep_every
        try:
            while not self._stopping:
                now = time.monotonic()
                deadline = min(next_sweep, *self._partial.values()) if self._partial else next_sweep
                try:
                    events = poller.poll(max(0, math.ceil((deadline - now) * 1000)))
                except zmq.ZMQError as error:
                    if error.errno == errno.EINTR:
                        continue
                    raise
                now = time.monotonic()
                for target, flags in events:
                    if target is dealer:
                        self._drain_broker(now)
                    elif target is link_events:
                        self._check_link(now)
                    elif target == listener_fd:
                        self._accept(now)
                    elif target == wake_fd:
                        self._drain_wake()
                    elif (conn := self._conns.get(target)) is not None:
                        try:
                            if flags & _POLLOUT:
                                conn.flush(now)
                            if flags & (_POLLIN | _POLLERR) and self._conns.get(target) is conn:
                                conn.read(now)
                        except Exception:  # a bug must cost one connection, never the gateway
                            log.exception("connection %s failed", conn.name)
                            self._drop(conn, "internal error", now)
                if self._partial:
                    for conn in [c for c, due in self._partial.items() if due <= now]:
                        conn.incomplete(now)
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + self._sweep_every
        finally:
            self._leave(time.monotonic())
            for target in (dealer, listener_fd, wake_fd, link_events):
                if target is not None:
                    poller.unregister(target)

    # ------------------------------------------------------------------ clients
    def _accept(self, now: float) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # EMFILE and friends: log, keep serving the others
                log.error("cannot accept a connection: %s", error)
                return
            to_agent = [peer[0], peer[1]]
            if self.allow is not None and not self._allowed(peer[0]):
                log.warning("connection from %s refused: not in the allow-list", peer[0])
                sock.close()
                continue
            if len(self._conns) >= self.max_connections:
                log.warning("connection from %s:%s refused: %d connections already", *to_agent, len(self._conns))
                with contextlib.suppress(OSError):  # best effort: one small write, empty socket buffer
                    sock.send(render_reply(to_agent, GameStatus.BAD_REQUEST, None, {
                        "message": f"Too many connections ({self.max_connections}); try again later."}))
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock, sock.fileno(), to_agent, JsonFramer(self.max_request_bytes), last_write=now)
            self._conns[conn.fd] = conn
            conn.watch()
            log.debug("connection from %s", conn.name)

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.allow or ())

    def _send(self, conn: Connection, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float) -> None:
        """Send one request for ``conn`` to the broker; its reply is routed back by (seat, seq)."""
        frames = [PROTOCOL_FRAME, command, seat, seq, body]
        try:
            self._dealer.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as error:
            conn.answer(GameStatus.BAD_REQUEST, None,
                        {"message": f"The gateway cannot reach the game server right now ({error})."}, now)
            return
        key = (b"" if command == _JOIN else seat, seq)
        conn.inflight, conn.inflight_command, conn.inflight_deadline = key, command, now + self.reply_timeout
        conn.inflight_since = now
        conn.inflight_frames, conn.inflight_resend = frames, now + self.retry_interval
        self._inflight[key] = conn

    def _resend(self, conn: Connection, now: float) -> None:
        """No reply yet: send the request again, same seq (a restarted broker lost it; the
        world answers a resend from its reply cache). A JOIN says it is a resend."""
        frames = conn.inflight_frames
        assert frames is not None
        if frames[1] == _JOIN:
            frames = [*frames[:4], pack({**unpack(frames[4]), "retry": True})]
        with contextlib.suppress(zmq.ZMQError):
            self._dealer.send_multipart(frames, zmq.NOBLOCK)
        conn.inflight_resend = now + self.retry_interval

    def _discard(self, conn: Connection) -> None:
        """Forget a connection and close its socket (no messages)."""
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
        self._partial.pop(conn, None)
        conn.close()

    def _drop(self, conn: Connection, reason: str, now: float) -> None:
        """Close a connection: what it waited for is orphaned, its seat quit."""
        if self._conns.get(conn.fd) is not conn:
            return
        self._discard(conn)
        key = conn.inflight
        if key is not None:
            self._inflight.pop(key, None)
            self._orphan(key, now, conn.inflight_command == _JOIN)
        if conn.seat is not None and not (key is not None and conn.inflight_command == _QUIT):
            conn.seq += 1
            self._quit(conn.seat, seq_bytes(conn.seq), now)
        log.info("connection %s closed: %s", conn.name, reason)

    def _quit(self, seat: bytes, seq: bytes, now: float) -> None:
        """QUIT a seat nobody answers for any more; its reply is ignored."""
        try:
            self._dealer.send_multipart([PROTOCOL_FRAME, _QUIT, seat, seq, NIL], zmq.NOBLOCK)
        except zmq.ZMQError as error:
            log.warning("cannot quit seat %r (%s): its lease will free it", seat, error)
            return
        self._orphan((seat, seq), now, False)

    def _orphan(self, key: tuple[bytes, bytes], now: float, join: bool) -> None:
        orphans = self._orphans
        orphans[key] = (now + self.reply_timeout, join)
        while len(orphans) > 16 * self.max_connections:
            orphans.pop(next(iter(orphans)))

    # ------------------------------------------------------------------ broker
    def _drain_broker(self, now: float) -> None:
        for _ in range(1000):
            try:
                frames = self._dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 5 or frames[0] != PROTOCOL_FRAME:
                log.warning("unexpected message from the broker dropped: %r", [f[:32] for f in frames[:6]])
                continue
            try:
                self._on_reply(frames[1], frames[2], frames[3], frames[4], now)
            except Exception:  # one bad reply must never stop the gateway
                log.exception("reply from the broker dropped: %r", [f[:32] for f in frames[:4]])

    def _on_reply(self, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float) -> None:
        key = (b"" if command == _JOIN else seat, seq)
        conn = self._inflight.pop(key, None)
        if conn is None:
            orphan = self._orphans.pop(key, None)
            if orphan is None:
                log.warning("reply matching no request dropped (command %r, seat %r, seq %r)", command, seat, seq)
            elif orphan[1] and seat:  # a join answered after its agent left: quit the seat
                with contextlib.suppress(Exception):
                    if decode_broker_reply(command, body).status is GameStatus.CREATED:
                        self._quit(seat, seq_bytes(int_from_seq(seq) + 1), now)
            return
        conn.inflight = None
        try:
            reply = decode_broker_reply(command, body)
            data = render_reply(conn.to_agent, reply.status, reply.observation, reply.message)
        except Exception as error:  # our own worlds never send this: say so, keep serving
            log.error("undecodable reply for %s: %s", conn.name, error)
            conn.answer(GameStatus.BAD_REQUEST, None,
                        {"message": "The game server sent a reply the gateway cannot read."}, now)
        else:
            seat = seat or (reply.seat or "").encode()
            if command == _JOIN and reply.status is GameStatus.CREATED and seat:
                conn.seat, conn.seq = seat, int_from_seq(seq)
                log.debug("%s joined: seat %r", conn.name, seat)
            elif (command == _QUIT and reply.status is GameStatus.OK) or reply.code in _SEAT_GONE:
                conn.seat = None
            conn.write(data, now)
        conn.advance(now)

    # ------------------------------------------------------------------ timers
    def _sweep(self, now: float) -> None:
        """Broker replies that never came, clients that stopped reading, orphans, lingering closes."""
        self._check_link(now)
        never_answered = not self._link.ever_up
        for conn in list(self._conns.values()):
            if conn.linger_deadline is not None:
                if now >= conn.linger_deadline:
                    self._drop(conn, "closed after its last reply", now)
                continue
            if conn.output and now - conn.last_write >= self.send_timeout:
                self._drop(conn, f"no write progress for {self.send_timeout:g} s", now)
                continue
            key = conn.inflight
            if key is not None and conn.inflight_frames is not None and conn.inflight_resend <= now:
                self._resend(conn, now)
            if key is not None and now >= conn.inflight_deadline:
                log.warning("no reply from the broker for %s within %g s", conn.name, self.reply_timeout)
                self._give_up(conn, key, {"message": f"The game server did not answer within {self.reply_timeout:g} s.",
                                          "reason": "broker reply timeout"}, now)
            elif key is not None and never_answered and now >= conn.inflight_since + self.broker_grace:
                log.info("request of %s refused: the broker at %s has not answered since the gateway started",
                         conn.name, self.broker)
                self._give_up(conn, key, {"message": UNREACHABLE_MESSAGE, "reason": "broker unreachable"}, now)
        orphans = self._orphans
        while orphans:
            key, (expiry, _) = next(iter(orphans.items()))
            if expiry > now:
                break
            del orphans[key]

    def _give_up(self, conn: Connection, key: tuple[bytes, bytes], message: dict[str, str], now: float) -> None:
        """Answer a request the broker did not answer; a late reply is then an orphan."""
        self._inflight.pop(key, None)
        self._orphan(key, now, conn.inflight_command == _JOIN)
        conn.inflight = None
        conn.answer(GameStatus.BAD_REQUEST, None, message, now)
        conn.advance(now)

    def _check_link(self, now: float) -> None:
        """Log what changed about the broker's link: nothing answers (at once when a
        handshake was refused, else after NOTICE_AFTER s), it answers again, it was lost."""
        link = self._link
        if link.update():
            if self._link_said in ("silent", "lost"):
                log.warning("the broker at %s answers now", self.broker)
            self._link_said = "up"
            return
        if link.lost:
            if self._link_said != "lost":
                self._link_said = "lost"
                log.warning("the broker at %s stopped answering (%s); still trying: requests wait for it up to "
                            "%g s (a restarting broker gets their resends)", self.broker, link.silence(),
                            self.reply_timeout)
        elif self._link_said != "silent" and (link.refused or now - self._started >= NOTICE_AFTER):
            self._link_said = "silent"
            log.warning("nothing answers at %s (%s); still trying: until it does, NetSecGame agents' requests are "
                        "answered BAD_REQUEST after %g s", self.broker, link.silence(), self.broker_grace)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except OSError:
            pass

    def _leave(self, now: float, grace: float = 1.0) -> None:
        """On the way out: tell waiting agents, quit every seat, wait briefly for the QUITs."""
        before = set(self._orphans)
        for conn in list(self._conns.values()):
            if conn.inflight is not None and not conn.closing:
                self._inflight.pop(conn.inflight, None)
                conn.inflight = None
                conn.answer(GameStatus.BAD_REQUEST, None, {"message": "The gateway is shutting down."}, now)
            self._drop(conn, "the gateway is shutting down", now)
        deadline = now + grace
        waiting = {key for key, (_, join) in self._orphans.items() if not join and key[0] and key not in before}
        while waiting and (remaining := deadline - time.monotonic()) > 0:
            if not self._dealer.poll(remaining * 1000):
                break
            for _ in range(1000):
                try:
                    frames = self._dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(frames) == 5:
                    waiting.discard((frames[2], frames[3]))
