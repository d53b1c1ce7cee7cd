"""The nightly run's mail against a real SMTP server on 127.0.0.1: once, never twice, retried when down."""

from __future__ import annotations

import email
import email.policy
import io
from dataclasses import replace

import openpyxl
import pytest
from conftest import REGISTRY
from test_nightly import RECEIVED, unit_file
from test_notify import Recorder, free_port, smtp_server  # noqa: F401  (smtp_server is a fixture)

from pipeline.core.config import Config, MailConfig, PathsConfig, ReportConfig
from pipeline.nightly.ledger import Ledger
from pipeline.nightly.job import nightly_run


@pytest.fixture
def inbox_with_units(inbox, registry):
    unit_file(inbox, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng.xlsx")
    unit_file(inbox, registry, "PG", "BCH HUYỆN ĐOÀN PHÚ GIÁO", "Phú Giáo.xlsx", {(2021, "admitted_pupils"): "ba"})
    return inbox


def mail_config(inbox, outbox, port: int, **mail) -> Config:
    settings = dict(host="127.0.0.1", port=port, security="none", sender="tinhdoan@example.vn",
                    to=("bantochuc@example.vn",), cc=("lanhdao@example.vn",), retries=2, backoff_seconds=0.01,
                    timeout_seconds=5)
    settings.update(mail)
    return Config(paths=PathsConfig(inbox=inbox, outbox=outbox, registry=REGISTRY),
                  report=ReportConfig(province="Bình Dương"), mail=MailConfig(**settings))


def states(outbox) -> list[tuple[str, str, int]]:
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        return [(m.kind, m.state, m.attempts) for m in ledger.mails()]


def test_the_report_arrives_once_with_the_workbook(inbox_with_units, outbox, smtp_server):
    handler = Recorder()
    port = smtp_server(handler)
    config = mail_config(inbox_with_units, outbox, port)
    result = nightly_run(config)
    assert [(m.kind, m.state) for m in result.mails] == [("report", "sent")]
    assert len(handler.envelopes) == 1
    sender, recipients, raw = handler.envelopes[0]
    assert sender == "tinhdoan@example.vn"
    assert sorted(recipients) == ["bantochuc@example.vn", "lanhdao@example.vn"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bình Dương" in message["Subject"] and "2/18 đơn vị" in message["Subject"]
    assert message["Message-ID"] == result.mails[0].message_id
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "tong_hop.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    assert book.sheetnames[:5] == ["Báo cáo tỉnh", "Tình trạng nộp", "Số liệu đơn vị", "Chỉ tiêu", "Thay đổi"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Huyện đoàn Phú Giáo" in body  # rejected units are named
    assert states(outbox) == [("report", "sent", 1)]
    # nothing changed: no run, no mail
    again = nightly_run(config)
    assert again.state == "unchanged" and again.mails == []
    assert len(handler.envelopes) == 1


def test_server_down_keeps_the_mail_pending_and_the_next_run_sends_it_once(inbox_with_units, outbox, smtp_server):
    port = free_port()  # nothing listens here yet
    config = mail_config(inbox_with_units, outbox, port)
    first = nightly_run(config)
    assert first.state == "completed" and first.folder is not None
    assert [(m.kind, m.state) for m in first.mails] == [("report", "failed")]
    assert (first.folder / "thu_bao_cao.eml").exists()
    assert states(outbox) == [("report", "failed", 1)]
    handler = Recorder()
    smtp_server(handler, port=port)
    second = nightly_run(config)  # the inbox did not change: no new run, but the pending mail goes out
    assert second.state == "unchanged"
    assert [(m.kind, m.state) for m in second.mails] == [("report", "sent")]
    assert len(handler.envelopes) == 1
    message = email.message_from_bytes(handler.envelopes[0][2], policy=email.policy.default)
    assert message["Message-ID"] == first.mails[0].message_id
    third = nightly_run(config)
    assert third.mails == [] and len(handler.envelopes) == 1
    assert states(outbox) == [("report", "sent", 2)]


def test_a_4xx_reply_is_retried_within_the_run(inbox_with_units, outbox, smtp_server):
    handler = Recorder(data_replies=["451 4.3.0 thử lại sau"])
    config = mail_config(inbox_with_units, outbox, smtp_server(handler))
    result = nightly_run(config)
    assert [(m.kind, m.state) for m in result.mails] == [("report", "sent")]
    assert handler.data_calls == 2 and len(handler.envelopes) == 1


def test_an_oversize_message_is_refused_with_a_clear_error(inbox_with_units, outbox, smtp_server):
    handler = Recorder()
    config = mail_config(inbox_with_units, outbox, smtp_server(handler), max_bytes=5_000)
    result = nightly_run(config)
    assert result.state == "completed"
    assert handler.envelopes == []
    with Ledger(outbox / "tonghop.sqlite") as ledger:
        [mail] = ledger.mails()
    assert mail.state == "too_large"
    assert "MB" in mail.last_error or "byte" in mail.last_error.lower()
    assert not (result.folder / "thu_bao_cao.eml").exists()
    assert nightly_run(config).mails == []  # never retried


def test_without_smtp_the_mail_is_written_as_eml(inbox_with_units, outbox):
    config = Config(paths=PathsConfig(inbox=inbox_with_units, outbox=outbox, registry=REGISTRY))
    result = nightly_run(config)
    assert result.mails == []
    eml = email.message_from_bytes((result.folder / "thu_bao_cao.eml").read_bytes(), policy=email.policy.default)
    assert next(eml.iter_attachments()).get_filename() == "tong_hop.xlsx"
    assert states(outbox) == [("report", "written", 0)]


def test_feedback_mails_go_to_the_units(inbox_with_units, outbox, smtp_server, registry):
    handler = Recorder()
    config = mail_config(inbox_with_units, outbox, smtp_server(handler))
    config = replace(config, mail=replace(config.mail, feedback_to_units=True))
    result = nightly_run(config)
    sent = sorted((m.kind, m.state) for m in result.mails)
    assert sent == [("feedback:PG", "sent"), ("report", "sent")]
    unit_mail = next(e for e in handler.envelopes if registry.unit("PG").email in e[1])
    message = email.message_from_bytes(unit_mail[2], policy=email.policy.default)
    assert next(message.iter_attachments()).get_filename().endswith(".xlsx")


def test_a_value_change_is_in_the_mail(inbox_with_units, outbox, smtp_server, registry):
    handler = Recorder()
    config = mail_config(inbox_with_units, outbox, smtp_server(handler))
    first = nightly_run(config)
    old = first.consolidation.submissions["DT"].values[(2022, "members_total")]
    unit_file(inbox_with_units, registry, "DT", "BCH HUYỆN ĐOÀN DẦU TIẾNG", "Dầu Tiếng lần 2.xlsx",
              {(2022, "members_total"): old + 10}, mtime=RECEIVED + 60)
    nightly_run(config)
    assert len(handler.envelopes) == 2
    message = email.message_from_bytes(handler.envelopes[1][2], policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()
    old_text = f"{old:,}".replace(",", ".")
    new_text = f"{old + 10:,}".replace(",", ".")
    assert f"Tổng số đoàn viên: {old_text} → {new_text}" in body
