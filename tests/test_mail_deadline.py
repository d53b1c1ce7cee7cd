"""pipeline.mail.notify against hostile SMTP servers on 127.0.0.1: a server that answers one byte at a time must
not hold the run past settings.timeout_seconds, and one that floods a reply must not grow the process.

Every server here is real (stdlib sockets, one thread per connection) and stops by itself; every send runs
in a thread joined with a timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import itertools
import os
try:
    import resource
except ImportError:  # the Windows simulation (tests/windows): the peak is read from /proc instead
    resource = None  # type: ignore[assignment]
import socket
import threading
import time

import pytest
from test_notify import (MESSAGE_ID, Recorder, parse, settings, smtp_server, summary,  # noqa: F401
                         workbook)

from pipeline.mail.notify import MailError, build_message, send_message

GUARD_SECONDS = 20  # a send still running after this is a hang, far beyond every bound asserted below
SERVER_LIFETIME = 40  # a hostile server gives up by itself after this, whatever the client does
FLOOD_CAP = 64 * 1024 * 1024  # a flooding server stops after this many bytes
MiB = 1024 * 1024


class HostileServer:
    """Runs `script(server, connection, lines)` for each connection, each in its own thread."""

    def __init__(self, script) -> None:
        self.script = script
        self.connections = 0
        self.messages: list[bytes] = []
        self.flooded = 0  # bytes a flood handed to the kernel before the client hung up
        self.hung_up = threading.Event()  # a write failed: the client closed the connection
        self.ends = time.monotonic() + SERVER_LIFETIME
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # closing a socket does not wake accept(); polling a flag does
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def alive(self) -> bool:
        return not self.stopping.is_set() and time.monotonic() < self.ends

    def _accept(self) -> None:
        while self.alive():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(connection,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _handle(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            with connection, connection.makefile("rb") as lines:
                self.script(self, connection, lines)
        except OSError:
            self.hung_up.set()

    def drip(self, connection: socket.socket, start: bytes, every: float = 0.5) -> None:
        """Send `start`, then "x" for ever, one byte every `every` seconds: each read sees a byte in time."""
        for byte in itertools.chain(start, itertools.repeat(ord("x"))):
            if not self.alive():
                return
            connection.sendall(bytes([byte]))
            self.stopping.wait(every)

    def flood(self, connection: socket.socket, line: bytes) -> None:
        block = line * max(1, 64 * 1024 // len(line))
        while self.alive() and self.flooded < FLOOD_CAP:
            connection.sendall(block)
            self.flooded += len(block)

    def close(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()


def dialogue(server: HostileServer, connection: socket.socket, lines, *, ehlo_lines: int = 2) -> bool:
    """A well-behaved SMTP dialogue up to the end of the message; True once the final "." arrived."""
    connection.sendall(b"220 hostile ESMTP\r\n")
    while line := lines.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            extensions = [b"hostile"] + [b"X-EXTENSION-%d" % n for n in range(ehlo_lines - 2)] + [b"8BITMIME"]
            connection.sendall(b"".join(b"250-" + e + b"\r\n" for e in extensions[:-1])
                               + b"250 " + extensions[-1] + b"\r\n")
        elif verb == b"DATA":
            connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            body = b""
            while (chunk := lines.readline()) not in (b".\r\n", b""):
                body += chunk
            if chunk:
                server.messages.append(body)
            return bool(chunk)
        elif verb == b"QUIT":
            connection.sendall(b"221 bye\r\n")
            return False
        else:
            connection.sendall(b"250 OK\r\n")
    return False


def guarded_send(mail_settings, message) -> tuple[BaseException | None, float]:
    """send_message in a thread: (the exception it raised or None, seconds it took); fails on a hang."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            send_message(mail_settings, message)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(GUARD_SECONDS)
    elapsed = time.monotonic() - started
    assert not worker.is_alive(), f"send_message still running after {GUARD_SECONDS} s: the session has no deadline"
    return outcome[0], elapsed


def message_for(port: int):
    return build_message(settings(port), summary(), None, MESSAGE_ID)


def maxrss_bytes() -> int:
    if resource is None:
        with open("/proc/self/status", encoding="ascii") as status:
            peak = next(line for line in status if line.startswith("VmHWM:"))
        return int(peak.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# ------------------------------------------------------------------------------- a server that drips


def drip_greeting(server, connection, lines):
    server.drip(connection, b"220 ")


def drip_ehlo_reply(server, connection, lines):
    connection.sendall(b"220 hostile ESMTP\r\n")
    lines.readline()
    server.drip(connection, b"250-hostile\r\n250-")


def drip_rcpt_reply(server, connection, lines):
    connection.sendall(b"220 hostile ESMTP\r\n")
    while line := lines.readline():
        if line[:4].upper() == b"EHLO":
            connection.sendall(b"250-hostile\r\n250 8BITMIME\r\n")
        elif line[:4].upper() == b"RCPT":
            server.drip(connection, b"250 ")
            return
        else:
            connection.sendall(b"250 OK\r\n")


@pytest.mark.parametrize("script", [drip_greeting, drip_ehlo_reply, drip_rcpt_reply],
                         ids=["greeting", "ehlo", "rcpt"])
def test_a_dripping_server_is_left_after_timeout_seconds(script):
    server = HostileServer(script)
    try:
        error, elapsed = guarded_send(settings(server.port, timeout_seconds=2, retries=1), message_for(server.port))
    finally:
        server.close()
    assert isinstance(error, MailError)
    assert elapsed < 6, f"one 2 s session took {elapsed:.1f} s"
    assert "không trả lời trong 2 giây" in str(error) and f"127.0.0.1:{server.port}" in str(error)
    assert error.attempts == 1 and error.resend_safe  # nothing was sent: queuing it again is safe
    assert server.messages == []


def test_a_dripping_server_is_retried_within_the_budget():
    server = HostileServer(drip_ehlo_reply)
    try:
        mail_settings = settings(server.port, timeout_seconds=2, retries=2, backoff_seconds=0.01)
        error, elapsed = guarded_send(mail_settings, message_for(server.port))
    finally:
        server.close()
    assert isinstance(error, MailError)
    assert server.connections == 2 and error.attempts == 2
    assert elapsed < 10, f"two 2 s sessions took {elapsed:.1f} s"  # retries × timeout + backoff, plus slack
    assert "sau 2 lần thử" in str(error) and "không trả lời trong 2 giây" in str(error)
    assert error.resend_safe


# ------------------------------------------------------------------------------- a server that floods


@pytest.mark.parametrize("line", [b"220-" + b"x" * 1000 + b"\r\n", b"220-" + b"x" * 60 + b"\r\n"],
                         ids=["long-lines", "many-lines"])
def test_a_flooded_greeting_is_cut_short(line):
    server = HostileServer(lambda server, connection, lines: server.flood(connection, line))
    before = maxrss_bytes()
    try:
        error, elapsed = guarded_send(settings(server.port, timeout_seconds=10, retries=3), message_for(server.port))
        server.hung_up.wait(5)
    finally:
        server.close()
    grown = maxrss_bytes() - before
    # The client stopped reading and hung up long before the server ran out of flood; what it did send
    # sits at most in the kernel's socket buffers.
    assert server.hung_up.is_set() and server.flooded < FLOOD_CAP // 2, f"{server.flooded // MiB} MiB read"
    assert grown < 200 * MiB, f"the process grew by {grown // MiB} MiB"
    assert isinstance(error, MailError)
    assert "dài bất thường" in str(error) and f"127.0.0.1:{server.port}" in str(error)
    assert server.connections == 1 and error.attempts == 1  # a flood is not retried
    assert elapsed < 5


# ------------------------------------------------------------------ a server that holds the final reply


def hold_final_reply(server, connection, lines):
    if dialogue(server, connection, lines):
        server.drip(connection, b"250 ")


def flood_final_reply(server, connection, lines):
    if dialogue(server, connection, lines):
        server.flood(connection, b"250-" + b"x" * 500 + b"\r\n")


@pytest.mark.parametrize("script, wording", [(hold_final_reply, "không xác nhận đã nhận thư trong 2 giây"),
                                             (flood_final_reply, "dài bất thường")], ids=["drip", "flood"])
def test_no_answer_after_the_message_is_uncertain_and_never_resent(script, wording):
    server = HostileServer(script)
    try:
        mail_settings = settings(server.port, timeout_seconds=2, retries=3, backoff_seconds=0.01)
        error, elapsed = guarded_send(mail_settings, message_for(server.port))
    finally:
        server.close()
    assert isinstance(error, MailError)
    assert error.uncertain and not error.resend_safe
    assert server.connections == 1 and error.attempts == 1 and len(server.messages) == 1
    assert elapsed < 6, f"one 2 s session took {elapsed:.1f} s"
    assert "Không rõ" in str(error) and wording in str(error)


def read_the_body_slowly(server, connection, lines):
    connection.sendall(b"220 hostile ESMTP\r\n")
    while line := lines.readline():
        verb = line[:4].upper()
        if verb == b"EHLO":
            connection.sendall(b"250-hostile\r\n250 8BITMIME\r\n")
        elif verb == b"DATA":
            connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            while server.alive() and connection.recv(1024):  # 10 KiB/s: the socket buffers fill up
                server.stopping.wait(0.1)
            return
        else:
            connection.sendall(b"250 OK\r\n")


def test_a_server_reading_the_message_slowly_is_left_within_the_deadline(tmp_path, monkeypatch):
    import pipeline.mail.notify as notify

    # A real session gets 1 s more per 250 kB of message to upload; here the allowance is left out so the
    # 16 MiB body does not stretch the test to a minute (the allowance itself is checked below).
    assert notify._UPLOAD_BYTES_PER_SECOND == 250_000
    monkeypatch.setattr(notify, "_UPLOAD_BYTES_PER_SECOND", 10**15)
    attachment = tmp_path / "so_lieu.zip"
    attachment.write_bytes(os.urandom(16 * MiB))  # more than loopback's socket buffers can hold
    server = HostileServer(read_the_body_slowly)
    try:
        mail_settings = settings(server.port, timeout_seconds=2, retries=1, max_bytes=0)
        error, elapsed = guarded_send(mail_settings, build_message(mail_settings, summary(), attachment, MESSAGE_ID))
    finally:
        server.close()
    assert isinstance(error, MailError)
    assert elapsed < 6, f"one 2 s session took {elapsed:.1f} s"
    # The final "." never left the client, so the server cannot hold the message: safe to send again.
    assert error.resend_safe and "không trả lời trong 2 giây" in str(error)


# ----------------------------------------------------------------------------- servers that behave


def test_a_normal_server_gets_a_large_message_exactly_once(smtp_server, tmp_path):
    handler = Recorder()
    port = smtp_server(handler)
    payload = os.urandom(3_000_000)  # many chunks, each written within the session's deadline
    attachment = tmp_path / "so_lieu.zip"
    attachment.write_bytes(payload)
    mail_settings = settings(port, timeout_seconds=10)
    error, _ = guarded_send(mail_settings, build_message(mail_settings, summary(), attachment, MESSAGE_ID))
    assert error is None
    assert len(handler.envelopes) == 1 and handler.data_calls == 1
    message = parse(handler.envelopes[0][2])
    assert message["Message-ID"] == MESSAGE_ID
    [part] = message.iter_attachments()
    assert part.get_content() == payload


def accept_after_long_ehlo(server, connection, lines):
    if dialogue(server, connection, lines, ehlo_lines=250):  # under the 256-line bound
        connection.sendall(b"250 2.0.0 queued\r\n")
        if lines.readline()[:4].upper() == b"QUIT":
            connection.sendall(b"221 bye\r\n")


def test_a_long_but_bounded_ehlo_reply_is_read():
    server = HostileServer(accept_after_long_ehlo)
    try:
        error, _ = guarded_send(settings(server.port, timeout_seconds=5), message_for(server.port))
    finally:
        server.close()
    assert error is None
    assert server.connections == 1 and len(server.messages) == 1
