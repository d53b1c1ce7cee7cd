"""pipeline.mail.notify against a real SMTP server (aiosmtpd on 127.0.0.1) and, for the cases aiosmtpd cannot
play (a connection lost after the message was sent), a minimal scripted SMTP server."""

from __future__ import annotations

import email
import email.policy
import io
import os
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import settings as settings_for_hypothesis
from hypothesis import strategies as st
from aiosmtpd.controller import Controller

from pipeline.mail import notify
from pipeline.mail.notify import (MailConfigError, MailError, MailSettings, MailTooLarge, Summary, build_message,
                             build_unit_feedback_message, message_size, send_message, write_eml)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MESSAGE_ID = "<run-2024-02-11_020000.report.5f3a9c@tonghop.tinhdoan.example.vn>"
SUBJECT = "[Tổng hợp PTĐ] Bình Dương – 11/02/2024 – 15/18 đơn vị đã nộp"
TO = ["Ban Tổ chức <btc@tinhdoan.example.vn>", "thuongtruc@tinhdoan.example.vn"]
CC = ["lanhdao@tinhdoan.example.vn"]
ENVELOPE_TO = ["btc@tinhdoan.example.vn", "thuongtruc@tinhdoan.example.vn", "lanhdao@tinhdoan.example.vn"]


# ------------------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    """aiosmtpd handler that keeps every accepted envelope; scripted replies make it refuse first."""

    def __init__(self, data_replies: list[str] | None = None, rcpt_replies: dict[str, list[str]] | None = None):
        self.data_replies = list(data_replies or [])
        self.rcpt_replies = {k: list(v) for k, v in (rcpt_replies or {}).items()}
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.data_calls = 0
        self.rcpt_calls = 0
        self.logins: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_calls += 1
        scripted = self.rcpt_replies.get(address) or self.rcpt_replies.get("*")
        if scripted:
            return scripted.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_calls += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        self.logins.append(auth_data.login)
        good = (auth_data.login, auth_data.password) == (b"tinhdoan", b"mat-khau-dung")
        return AuthResult(success=good, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def smtp_server():
    """Factory: start(handler, port=None, **server_kwargs) -> port; every server is stopped afterwards."""
    controllers: list[Controller] = []

    def start(handler: Recorder, port: int | None = None, **kwargs) -> int:
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5, **kwargs)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


class ScriptedServer:
    """A bare SMTP server for endings aiosmtpd cannot produce.

    mode "drop": after the whole message arrives, close without a reply (outcome unknown to the client);
    mode "no-quit": accept the message with 250, then close instead of answering QUIT.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.messages: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # closing a socket does not wake accept(); polling a flag does
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            self.connections += 1
            with connection, connection.makefile("rb") as lines:
                self._talk(connection, lines)

    def _talk(self, connection: socket.socket, lines) -> None:
        connection.sendall(b"220 scripted ESMTP\r\n")
        while line := lines.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                connection.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                connection.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                body = b""
                while (chunk := lines.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.messages.append(body)
                if self.mode == "drop":
                    return
                connection.sendall(b"250 2.0.0 queued\r\n")
                if self.mode == "no-quit":
                    return
            elif verb == b"QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"250 OK\r\n")

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.listener.close()


def settings(port: int, **changes) -> MailSettings:
    values = dict(host="127.0.0.1", port=port, security="none", user="", password="",
                  sender="Tỉnh đoàn Bình Dương <tinhdoan@example.vn>", to=TO, cc=CC, max_bytes=20_000_000,
                  retries=3, backoff_seconds=0.01, timeout_seconds=2)
    values.update(changes)
    return MailSettings(**values)


def summary(**changes) -> Summary:
    values = dict(
        province="Bình Dương", run_name="2024-02-11_020000", created=datetime(2024, 2, 11, 2, 0),
        units_total=18, units_received=15, units_accepted=9, units_rejected=6,
        units_missing=["Huyện đoàn Dầu Tiếng", "Thị đoàn Tân Uyên", "Huyện đoàn Bắc Tân Uyên"],
        rejected=[("DHBD", "Đoàn Trường Đại học Bình Dương", "1 lỗi"), ("BC", "Thị đoàn Bến Cát", "3 lỗi")],
        totals={2021: {"members_total": 1250, "admitted": 171}, 2022: {"members_total": 1302, "admitted": 190},
                2023: {"members_total": 1410, "admitted": None}},
        metric_labels={"members_total": "Tổng số đoàn viên", "admitted": "Số đảng viên mới được kết nạp"},
        quota={2021: (200, 171), 2022: (200, 190), 2023: (0, 0)},
        changes=["Thành đoàn Thủ Dầu Một: gửi bản thay thế \"BC PTĐ.xlsx\"."],
        late=["Thị đoàn Bến Cát"],
    )
    values.update(changes)
    return Summary(**values)


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    path = tmp_path / "tong_hop.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Báo cáo tỉnh").write_row(0, 0, ["Năm", "Tổng số đoàn viên"])
    book.add_worksheet("Tình trạng nộp").write_row(0, 0, ["Mã đơn vị", "Tình trạng"])
    book.close()
    return path


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def only_attachment(message: email.message.EmailMessage):
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    return attachments[0]


# --------------------------------------------------------------------------------------------- tests


def test_report_arrives_once_and_reads_correctly(smtp_server, workbook):
    handler = Recorder()
    port = smtp_server(handler)
    message = build_message(settings(port), summary(), workbook, MESSAGE_ID)

    send_message(settings(port), message)

    assert len(handler.envelopes) == 1
    mail_from, rcpt_tos, raw = handler.envelopes[0]
    assert mail_from == "tinhdoan@example.vn"
    assert rcpt_tos == ENVELOPE_TO
    raw.decode("ascii")  # every header RFC 2047 / RFC 2231 encoded, bodies base64
    received = parse(raw)
    assert received["Subject"] == SUBJECT
    assert received["Message-ID"] == MESSAGE_ID
    assert received["From"].addresses[0].display_name == "Tỉnh đoàn Bình Dương"
    assert abs(parsedate_to_datetime(received["Date"]) - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert received["Auto-Submitted"] == "auto-generated"

    text = received.get_body(("plain",)).get_content()
    page = received.get_body(("html",)).get_content()
    for body in (text, page):
        assert "1.250" in body and "1.302" in body and "1.410" in body
        assert "15/18" in body
        assert "85,5%" in body and "95,0%" in body and "chưa giao chỉ tiêu" in body
        assert "Huyện đoàn Dầu Tiếng" in body and "Đoàn Trường Đại học Bình Dương" in body
        assert "Thành đoàn Thủ Dầu Một" in body and "Thị đoàn Bến Cát" in body
    assert "<table" in page and "Năm 2021" in page

    attachment = only_attachment(received)
    assert attachment.get_content_type() == XLSX_TYPE
    assert attachment.get_filename() == "tong_hop.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    assert book.sheetnames == ["Báo cáo tỉnh", "Tình trạng nộp"]
    assert book["Báo cáo tỉnh"]["B1"].value == "Tổng số đoàn viên"


def test_no_changes_and_vietnamese_attachment_name(tmp_path, workbook):
    named = tmp_path / "Tổng hợp PTĐ – Bình Dương.xlsx"
    named.write_bytes(workbook.read_bytes())
    message = parse(build_message(settings(25), summary(changes=[], late=[]), named, MESSAGE_ID).as_bytes())
    text = message.get_body(("plain",)).get_content()
    assert "Không có thay đổi" in text
    assert "Nộp sau hạn: không có" in text
    assert only_attachment(message).get_filename() == "Tổng hợp PTĐ – Bình Dương.xlsx"


@pytest.mark.parametrize("province", ["Bình Dương", "Thành phố Hồ Chí Minh – Khu vực Thủ Đức và các huyện ngoại thành"])
def test_headers_keep_every_space(workbook, province):
    # The stdlib folder loses the space at some encoded-word boundaries ("Báo cáo" → "Báocáo").
    sender = "Ban Tổ chức – Kiểm tra Tỉnh đoàn Bình Dương <btc@tinhdoan.example.vn>"
    to = ["Đồng chí Nguyễn Thị Phương Thảo – Phó Bí thư Thường trực <thao@tinhdoan.example.vn>", "x@y.vn"]
    raw = build_message(settings(25, sender=sender, to=to, cc=[]), summary(province=province), workbook,
                        MESSAGE_ID).as_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    message = parse(raw)
    assert message["Subject"] == f"[Tổng hợp PTĐ] {province} – 11/02/2024 – 15/18 đơn vị đã nộp"
    assert [a.addr_spec for a in message["To"].addresses] == ["thao@tinhdoan.example.vn", "x@y.vn"]
    # RFC 2047 readers ignore the folding space between encoded words: the names come back exactly.
    folded = raw.split(b"\r\n\r\n")[0].decode("ascii").replace("\r\n ", " ")
    headers = dict(line.split(": ", 1) for line in folded.split("\r\n"))
    assert str(make_header(decode_header(headers["From"]))) == sender
    assert str(make_header(decode_header(headers["To"]))).startswith(to[0])
    # Python's own address parser keeps that space inside a display name (a stdlib quirk), hence split().
    assert " ".join(message["From"].addresses[0].display_name.split()) == "Ban Tổ chức – Kiểm tra Tỉnh đoàn Bình Dương"


def test_server_down_then_up(smtp_server, workbook, monkeypatch):
    port = free_port()  # nothing listens here yet
    message = build_message(settings(port), summary(), workbook, MESSAGE_ID)
    slept: list[float] = []
    real_sleep = time.sleep
    main = threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() == main:
            slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(notify.time, "sleep", sleep)
    started = time.monotonic()
    with pytest.raises(MailError) as caught:
        send_message(settings(port), message)
    elapsed = time.monotonic() - started

    assert caught.value.attempts == 3
    assert caught.value.resend_safe
    assert slept == [0.01, 0.02]  # backoff_seconds * 2**attempt, none after the last attempt
    assert 0.03 <= elapsed < 3
    assert "sau 3 lần thử" in str(caught.value) and f"127.0.0.1:{port}" in str(caught.value)

    handler = Recorder()
    smtp_server(handler, port=port)
    send_message(settings(port), message)
    assert len(handler.envelopes) == 1
    assert parse(handler.envelopes[0][2])["Message-ID"] == MESSAGE_ID


def test_451_on_data_is_retried_and_delivered_once(smtp_server, workbook):
    handler = Recorder(data_replies=["451 4.3.0 try again"])
    port = smtp_server(handler)
    send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert handler.data_calls == 2
    assert len(handler.envelopes) == 1


def test_451_on_rcpt_is_retried_and_delivered_once(smtp_server, workbook):
    handler = Recorder(rcpt_replies={"*": ["451 4.3.0 try again"] * 3})
    port = smtp_server(handler)
    send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert len(handler.envelopes) == 1
    assert handler.envelopes[0][1] == ENVELOPE_TO


def test_recipient_deferred_alone_gets_it_later_and_nobody_twice(smtp_server, workbook):
    handler = Recorder(rcpt_replies={"lanhdao@tinhdoan.example.vn": ["451 4.2.1 mailbox busy"]})
    port = smtp_server(handler)
    send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert [rcpts for _, rcpts, _ in handler.envelopes] == [ENVELOPE_TO[:2], ENVELOPE_TO[2:]]


def test_550_on_data_is_not_retried(smtp_server, workbook):
    handler = Recorder(data_replies=["550 5.7.1 rejected by policy"] * 3)
    port = smtp_server(handler)
    with pytest.raises(MailError) as caught:
        send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert handler.data_calls == 1
    assert caught.value.attempts == 1 and caught.value.code == 550
    assert "550 5.7.1 rejected by policy" in str(caught.value)
    assert handler.envelopes == []


def test_550_for_every_recipient_is_not_retried(smtp_server, workbook):
    handler = Recorder(rcpt_replies={"*": ["550 5.1.1 no such user"] * 9})
    port = smtp_server(handler)
    with pytest.raises(MailError) as caught:
        send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert handler.rcpt_calls == 3 and handler.data_calls == 0
    assert caught.value.attempts == 1
    assert "no such user" in str(caught.value)


def test_partial_delivery_is_reported_as_not_resend_safe(smtp_server, workbook):
    handler = Recorder(rcpt_replies={"lanhdao@tinhdoan.example.vn": ["550 5.1.1 no such user"] * 3})
    port = smtp_server(handler)
    with pytest.raises(MailError) as caught:
        send_message(settings(port), build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert [rcpts for _, rcpts, _ in handler.envelopes] == [ENVELOPE_TO[:2]]
    assert caught.value.delivered_to == tuple(ENVELOPE_TO[:2]) and not caught.value.resend_safe
    assert caught.value.code == 550 and "lanhdao@tinhdoan.example.vn" in str(caught.value)
    assert "Thư đã đến" in str(caught.value)


def test_connection_lost_after_data_is_never_resent():
    server = ScriptedServer("drop")
    try:
        with pytest.raises(MailError) as caught:
            send_message(settings(server.port), build_message(settings(server.port), summary(), None, MESSAGE_ID))
    finally:
        server.close()
    assert server.connections == 1 and len(server.messages) == 1
    assert caught.value.uncertain and not caught.value.resend_safe
    assert "Không rõ" in str(caught.value)


def test_failed_quit_after_acceptance_counts_as_sent():
    server = ScriptedServer("no-quit")
    try:
        send_message(settings(server.port), build_message(settings(server.port), summary(), None, MESSAGE_ID))
    finally:
        server.close()
    assert server.connections == 1 and len(server.messages) == 1


def test_oversize_attachment(tmp_path, workbook):
    big = tmp_path / "tong_hop.xlsx"
    big.write_bytes(os.urandom(50_000))
    with pytest.raises(MailTooLarge) as caught:
        build_message(settings(25, max_bytes=20_000), summary(), big, MESSAGE_ID)
    assert isinstance(caught.value, MailError)
    assert "0,02 MB" in str(caught.value) and "20.000 byte" in str(caught.value)
    assert caught.value.limit == 20_000

    # Small enough as a file, too large once base64-encoded inside the message.
    big.write_bytes(os.urandom(16_000))
    with pytest.raises(MailTooLarge) as caught:
        build_message(settings(25, max_bytes=20_000), summary(), big, MESSAGE_ID)
    assert caught.value.size > 20_000 and "vượt giới hạn 0,02 MB" in str(caught.value)


def test_send_refuses_oversize_before_connecting(smtp_server, workbook):
    handler = Recorder()
    port = smtp_server(handler)
    message = build_message(settings(port), summary(), workbook, MESSAGE_ID)
    limit = message_size(message) - 1
    with pytest.raises(MailTooLarge):
        send_message(settings(port, max_bytes=limit), message)
    assert handler.rcpt_calls == 0 and handler.envelopes == []


def test_html_escapes_text_from_files(workbook):
    hostile = '<script>alert("x")</script>'
    message = build_message(settings(25), summary(units_missing=[hostile], rejected=[("X", hostile, "1 lỗi & <b>")],
                                                  changes=[f"{hostile}: gửi bài mới"], province="Bình <Dương>"),
                            workbook, MESSAGE_ID)
    page = parse(message.as_bytes()).get_body(("html",)).get_content()
    assert "<script>" not in page and "& <b>" not in page and "<Dương>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "1 lỗi &amp; &lt;b&gt;" in page


def test_write_eml_then_send_it_like_the_nightly_job(smtp_server, tmp_path, workbook):
    message = build_message(settings(25), summary(), workbook, MESSAGE_ID)
    path = write_eml(message, tmp_path / "thu" / "bao_cao.eml")
    assert path == tmp_path / "thu" / "bao_cao.eml"
    assert os.listdir(path.parent) == ["bao_cao.eml"]  # no temporary file left behind
    stored = parse(path.read_bytes())
    assert stored["Subject"] == SUBJECT and stored["Message-ID"] == MESSAGE_ID
    book = openpyxl.load_workbook(io.BytesIO(only_attachment(stored).get_content()))
    assert book.sheetnames == ["Báo cáo tỉnh", "Tình trạng nộp"]

    handler = Recorder()
    port = smtp_server(handler)
    reread = email.message_from_bytes(path.read_bytes(), policy=email.policy.SMTP)
    send_message(settings(port), reread)
    assert len(handler.envelopes) == 1 and handler.envelopes[0][1] == ENVELOPE_TO
    assert parse(handler.envelopes[0][2])["Message-ID"] == MESSAGE_ID


def test_unit_feedback_goes_to_the_unit(smtp_server, tmp_path, workbook):
    copy = tmp_path / "phan_hoi" / "DT.xlsx"
    copy.parent.mkdir()
    copy.write_bytes(workbook.read_bytes())
    handler = Recorder()
    port = smtp_server(handler)
    message = build_unit_feedback_message(settings(port), "Bình Dương", "Huyện đoàn Dầu Tiếng",
                                          "hd.dautieng@example.vn; bithu.dt@example.vn", copy, (2, 1),
                                          "<run-2024-02-11_020000.feedback-DT.5f3a9c@tonghop>")
    send_message(settings(port), message)

    assert [rcpts for _, rcpts, _ in handler.envelopes] == [["hd.dautieng@example.vn", "bithu.dt@example.vn"]]
    received = parse(handler.envelopes[0][2])
    assert received["Subject"] == ("[Tổng hợp PTĐ] Bình Dương – Đề nghị Huyện đoàn Dầu Tiếng sửa và gửi lại "
                                   "báo cáo")
    text = received.get_body(("plain",)).get_content()
    assert text.startswith("Kính gửi: Huyện đoàn Dầu Tiếng")
    assert "2 lỗi và 1 cảnh báo" in text and "Gửi lại tệp báo cáo đã sửa" in text
    assert only_attachment(received).get_filename() == "DT.xlsx"


@pytest.mark.parametrize("counts, subject_end, expected, absent", [
    ((0, 2), "Đề nghị Huyện đoàn Dầu Tiếng kiểm tra lại báo cáo", "còn 2 cảnh báo", "lỗi"),
    ((0, 0), "Báo cáo của Huyện đoàn Dầu Tiếng đã hợp lệ", "không cần gửi lại", "Đề nghị đơn vị"),
])
def test_feedback_wording_follows_the_issues(workbook, counts, subject_end, expected, absent):
    message = parse(build_unit_feedback_message(settings(25), "Bình Dương", "Huyện đoàn Dầu Tiếng", "dt@example.vn",
                                                workbook, counts, "<x@y>").as_bytes())
    assert message["Subject"] == f"[Tổng hợp PTĐ] Bình Dương – {subject_end}"
    text = message.get_body(("plain",)).get_content()
    assert expected in text and absent not in text


def test_feedback_without_usable_address_is_a_config_error(workbook):
    with pytest.raises(MailConfigError):
        build_unit_feedback_message(settings(25), "Bình Dương", "Huyện đoàn Dầu Tiếng", "chưa có", workbook,
                                    (1, 0), "<x@y>")


def test_starttls_missing_is_a_clear_error_without_retry(smtp_server, workbook):
    handler = Recorder()
    port = smtp_server(handler)
    with pytest.raises(MailError) as caught:
        send_message(settings(port, security="starttls"),
                     build_message(settings(port), summary(), workbook, MESSAGE_ID))
    assert "không hỗ trợ STARTTLS" in str(caught.value)
    assert caught.value.attempts == 1 and handler.rcpt_calls == 0


def test_settings_are_checked_and_hide_the_password():
    with pytest.raises(MailConfigError):
        settings(25, security="tls")
    with pytest.raises(MailConfigError):
        settings(25, to=["không phải địa chỉ"])
    assert settings(25, to="a@x.vn, b@y.vn").to == ("a@x.vn, b@y.vn",)
    assert "bi-mat" not in repr(settings(25, password="bi-mat"))


# ------------------------------------------------------------------------- TLS with a throwaway certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_login(smtp_server, certificate, workbook, security):
    handler = Recorder()
    # aiosmtpd only counts STARTTLS as encryption, so implicit TLS must not demand it for AUTH.
    tls = {"tls_context": server_context(certificate), "auth_require_tls": True} if security == "starttls" else \
        {"ssl_context": server_context(certificate), "auth_require_tls": False}
    port = smtp_server(handler, authenticator=handler.authenticate, **tls)
    good = settings(port, security=security, user="tinhdoan", password="mat-khau-dung", ca_file=str(certificate[0]))
    message = build_message(good, summary(), workbook, MESSAGE_ID)

    send_message(good, message)
    assert len(handler.envelopes) == 1 and handler.logins == [b"tinhdoan"]

    with pytest.raises(MailError) as caught:
        send_message(settings(port, security=security, user="tinhdoan", password="sai",
                              ca_file=str(certificate[0])), message)
    assert caught.value.attempts == 1 and "từ chối đăng nhập" in str(caught.value)
    assert len(handler.envelopes) == 1


def test_untrusted_certificate_is_not_retried(smtp_server, certificate, workbook):
    handler = Recorder()
    port = smtp_server(handler, tls_context=server_context(certificate))
    with pytest.raises(MailError) as caught:
        send_message(settings(port, security="starttls"), build_message(settings(port), summary(), workbook,
                                                                          MESSAGE_ID))
    assert caught.value.attempts == 1 and "chứng chỉ" in str(caught.value)


@settings_for_hypothesis(max_examples=25, deadline=None)
@given(attachment=st.binary(max_size=60_000),
       changes=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=120), max_size=30),
       province=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_size_bound_is_never_below_the_serialized_size(tmp_path_factory, attachment, changes, province):
    path = tmp_path_factory.mktemp("bound") / "tong_hop.xlsx"
    path.write_bytes(attachment)
    message = build_message(settings(25, max_bytes=0), summary(changes=changes, province=province), path,
                            MESSAGE_ID)
    assert notify._size_bound(message) >= message_size(message)


def test_message_just_over_the_limit_is_still_refused(tmp_path):
    path = tmp_path / "tong_hop.xlsx"
    path.write_bytes(os.urandom(30_000))
    size = message_size(build_message(settings(25, max_bytes=0), summary(), path, MESSAGE_ID))
    with pytest.raises(MailTooLarge):
        build_message(settings(25, max_bytes=size - 1), summary(), path, MESSAGE_ID)
    build_message(settings(25, max_bytes=size), summary(), path, MESSAGE_ID)
