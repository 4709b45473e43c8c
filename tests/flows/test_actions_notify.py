"""The notification action against a real SMTP server (aiosmtpd on 127.0.0.1) that receives the
message: plain SMTP, STARTTLS with a login, the server's refusals, and a Globus flow's notify step."""
from __future__ import annotations

import email
import email.policy
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from helpers import free_port

import faas.flows as ff
from faas.flows.actions import ActionConflict, ActionContext, ActionUnableToRun, canonical, resolve
from faas.flows.actions.notify import NotifyProvider

GLOBUS_NOTIFY = "https://actions.globus.org/notification/notify"


class Inbox:
    """aiosmtpd handler: keeps every message; refuses recipients at ``nobody@...``."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox()
    c = Controller(inbox, hostname="127.0.0.1", port=free_port())
    c.start()
    try:
        yield c, inbox
    finally:
        c.stop()


def site(port, **smtp):
    return {"notify": {"smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                                "sender": "flows@site.example", **smtp}}}


def ctx(tmp_path, config):
    return ActionContext((tmp_path / "site").as_uri(), "run-n", "flow-n", "alice", config=config)


def test_globus_url_is_an_alias():
    assert canonical(GLOBUS_NOTIFY) == "faas://notify"
    assert isinstance(resolve(GLOBUS_NOTIFY), NotifyProvider)


def test_sends_once_per_request_id(smtp, tmp_path):
    c, inbox = smtp
    p = resolve("faas://notify")
    body = {"destination": "curator@lab.example, pi@lab.example", "subject": "Run $x finished",
            "body_template": "Hello $Name, the data is in ${where}.", "body_variables":
            {"Name": "Ada", "where": "/archive"}, "notification_method": "email",
            "notification_priority": "high"}
    cx = ctx(tmp_path, site(c.port))
    doc = p.run(body, "req-1", cx)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["details"]["accepted"] == ["curator@lab.example", "pi@lab.example"]
    again = NotifyProvider().run(body, "req-1", cx)          # a retried run: same action, no mail
    assert again["action_id"] == doc["action_id"] and len(inbox.messages) == 1
    mail_from, rcpt, msg = inbox.messages[0]
    assert mail_from == "flows@site.example" and rcpt == ["curator@lab.example", "pi@lab.example"]
    assert msg["Subject"] == "Run $x finished"            # only the body is a template, as Globus's
    assert msg.get_content().strip() == "Hello Ada, the data is in /archive."
    assert msg["Message-ID"].strip() == doc["details"]["message_id"]
    assert p.cancel(doc["action_id"], cx)["status"] == "SUCCEEDED"
    p.release(doc["action_id"], cx)


def test_html_and_a_list_of_destinations(smtp, tmp_path):
    c, inbox = smtp
    doc = resolve(GLOBUS_NOTIFY).run(
        {"destination": ["a@x.example", "b@x.example"], "subject": "s", "sender": "me@x.example",
         "body_template": "<h1>Hi $who</h1>", "body_mimetype": "text/html",
         "body_variables": {"who": "Bo"}}, "req-html", ctx(tmp_path, site(c.port)))
    assert doc["status"] == "SUCCEEDED"
    _, rcpt, msg = inbox.messages[0]
    assert rcpt == ["a@x.example", "b@x.example"] and msg["From"] == "me@x.example"
    assert msg.get_content_type() == "text/html" and "<h1>Hi Bo</h1>" in msg.get_content()


def test_refusal_fails_with_the_servers_reply(smtp, tmp_path):
    c, inbox = smtp
    p, cx = resolve("faas://notify"), ctx(tmp_path, site(c.port))
    doc = p.run({"destination": "nobody@lab.example", "subject": "s", "body_template": "b"}, "req-550", cx)
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "SMTPRecipientsRefused"
    assert doc["details"]["refused"]["nobody@lab.example"] == {
        "smtp_code": 550, "smtp_reply": "5.1.1 no such user here"}
    assert "550" in doc["details"]["message"] and inbox.messages == []
    # some refused, some accepted: sent (Globus: success once the server accepts the message)
    doc = p.run({"destination": "nobody@lab.example, ok@lab.example", "body_template": "b"}, "req-part", cx)
    assert doc["status"] == "SUCCEEDED" and doc["details"]["accepted"] == ["ok@lab.example"]
    assert list(doc["details"]["refused"]) == ["nobody@lab.example"]
    # no server listening: FAILED with the connection error, and a retry does not send later
    dead = ctx(tmp_path, site(free_port()))
    doc = p.run({"destination": "a@b.example", "body_template": "b"}, "req-dead", dead)
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "ConnectionRefusedError"


@pytest.mark.parametrize("body, key", [
    ({"subject": "s", "body_template": "b"}, "destination"),
    ({"destination": "not-an-address", "body_template": "b"}, "destination"),
    ({"destination": "a@b.example"}, "body_template"),
    ({"destination": "a@b.example", "body_template": "b", "body_mimetype": "image/png"}, "body_mimetype"),
    ({"destination": "a@b.example", "body_template": "b", "subject": "a\r\nBcc: x@y.example"}, "subject"),
    ({"destination": "a@b.example", "body_template": "b", "subject": "a\u2028Bcc: x@y.example"}, "subject"),
    ({"destination": ["a@b.example,c@d.example"], "body_template": "b"}, "destination"),
    ({"destination": "x@evil.example@b.example", "body_template": "b"}, "destination"),
    ({"destination": "a@b.example", "body_template": "b", "sender": "a\x00@b.example"}, "sender"),
    ({"destination": "a@b.example", "body_template": "b", "body_variables": [1]}, "body_variables"),
    ({"destination": "a@b.example", "body_template": "b", "notification_method": "sms"}, "notification_method"),
    ({"destination": "a@b.example", "body_template": "b", "subjet": "typo"}, "subjet"),
    ("just text", "must be an object"),
])
def test_bad_bodies_name_the_key(body, key, tmp_path):
    with pytest.raises(ActionUnableToRun, match=key):
        resolve("faas://notify").run(body, "req-bad", ctx(tmp_path, site(25)))


def test_site_config_errors(tmp_path, monkeypatch):
    p, body = resolve("faas://notify"), {"destination": "a@b.example", "body_template": "b"}
    with pytest.raises(ActionUnableToRun, match="no SMTP server"):
        p.run(body, "r1", ctx(tmp_path, {}))
    with pytest.raises(ActionUnableToRun, match="notify.smtp.security"):
        p.run(body, "r2", ctx(tmp_path, site(25, security="tls1")))
    with pytest.raises(ActionUnableToRun, match="password_env"):
        p.run(body, "r3", ctx(tmp_path, site(25, username="flows")))
    monkeypatch.delenv("FAAS_TEST_SMTP_PW", raising=False)
    with pytest.raises(ActionUnableToRun, match="FAAS_TEST_SMTP_PW is not set"):
        p.run(body, "r4", ctx(tmp_path, site(25, username="flows", password_env="FAAS_TEST_SMTP_PW")))
    # a Globus flow's own SMTP credentials: refused unless the site allows them
    creds = [{"credential_type": "smtp", "credential_value": {"hostname": "127.0.0.1", "username": "u",
                                                              "password": "p"}}]
    with pytest.raises(ActionUnableToRun, match="no SMTP server"):
        p.run({**body, "send_credentials": creds, "sender": "x@y.example"}, "r5", ctx(tmp_path, {}))


def test_interrupted_send_is_not_repeated(tmp_path, smtp):
    c, inbox = smtp
    p, cx = NotifyProvider(), ctx(tmp_path, site(c.port))
    # as a process that died after writing the document, before the server answered
    from faas.flows.actions.base import new_doc
    doc, created = p.docs.create(cx, "req-died", lambda aid: dict(
        new_doc("notify", aid, "req-died", cx, display_status="Sending"), _sending_until=0))
    assert created
    again = p.run({"destination": "a@b.example", "body_template": "b"}, "req-died", cx)
    assert again["status"] == "FAILED" and again["details"]["error"] == "ActionInterrupted"
    assert inbox.messages == []
    p.release(again["action_id"], cx)
    # a document still within its sending window is ACTIVE, and may not be released
    doc, _ = p.docs.create(cx, "req-busy", lambda aid: dict(
        new_doc("notify", aid, "req-busy", cx, display_status="Sending"), _sending_until=9e12))
    assert p.status(doc["action_id"], cx)["status"] == "ACTIVE"
    with pytest.raises(ActionConflict):
        p.release(doc["action_id"], cx)


@pytest.fixture
def tls_smtp(tmp_path):
    """aiosmtpd with STARTTLS required and a login (user flows, password from the environment)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"flows" and auth_data.password == b"s3cret"
        logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=False)   # False: aiosmtpd answers 535 itself
    inbox = Inbox()
    c = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=tls,
                   require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    c.start()
    try:
        yield c, inbox, cert, logins
    finally:
        c.stop()


def test_starttls_and_login(tls_smtp, tmp_path, monkeypatch):
    c, inbox, cert, logins = tls_smtp
    monkeypatch.setenv("FAAS_TEST_SMTP_PW", "s3cret")
    config = site(c.port, host="localhost", security="starttls", username="flows",
                  password_env="FAAS_TEST_SMTP_PW", ca_file=str(cert))
    cx = ctx(tmp_path, config)
    doc = resolve("faas://notify").run({"destination": "a@b.example", "subject": "tls",
                                        "body_template": "over TLS"}, "req-tls", cx)
    assert doc["status"] == "SUCCEEDED", doc
    assert logins == [(b"flows", True)] and inbox.messages[0][2]["Subject"] == "tls"
    # the password is nowhere in the store
    store_root = tmp_path / "site"
    assert not any(b"s3cret" in f.read_bytes() for f in store_root.rglob("*") if f.is_file())
    monkeypatch.setenv("FAAS_TEST_SMTP_PW", "wrong")
    doc = resolve("faas://notify").run({"destination": "a@b.example", "body_template": "x"},
                                       "req-tls-bad", cx)
    assert doc["status"] == "FAILED" and doc["details"].get("smtp_code") == 535, doc
    assert len(inbox.messages) == 1


def test_flow_with_a_globus_notify_step(smtp, tmp_path):
    """Globus's documented shape: credentials in the body, kept out of logs by __Private_Parameters;
    the site's server is used (the flow runs unchanged)."""
    c, inbox = smtp
    defn = {"StartAt": "Notify", "States": {"Notify": {
        "Type": "Action", "ActionUrl": GLOBUS_NOTIFY, "ResultPath": "$.NotifyResult",
        "Parameters": {
            "destination.$": "$.curator", "sender": "flows@site.example",
            "subject": "Submission received", "body_mimetype": "text/plain",
            "body_template": "Dataset $name is ready for curation.",
            "body_variables": {"name.$": "$.dataset"},
            "send_credentials": [{"credential_type": "smtp", "credential_value": {
                "hostname": "smtp.globus.example", "username": "u", "password": "p"}}],
            "__Private_Parameters": ["send_credentials"]},
        "End": True}}}
    doc = ff.run(defn, {"curator": "curator@lab.example", "dataset": "run-42"},
                 store_url=(tmp_path / "site").as_uri(), config=site(c.port))
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["NotifyResult"]["details"]["accepted"] == ["curator@lab.example"]
    _, rcpt, msg = inbox.messages[0]
    assert rcpt == ["curator@lab.example"] and msg["Subject"] == "Submission received"
    assert msg.get_content().strip() == "Dataset run-42 is ready for curation."


def test_rerun_after_a_config_change_returns_the_action(smtp, tmp_path):
    """A runner restarted without the SMTP settings still finds the message it sent."""
    c, inbox = smtp
    body = {"destination": "a@b.example", "body_template": "once"}
    doc = resolve("faas://notify").run(body, "req-again", ctx(tmp_path, site(c.port)))
    again = NotifyProvider().run(body, "req-again", ctx(tmp_path, {}))
    assert again["action_id"] == doc["action_id"] and again["status"] == "SUCCEEDED"
    assert len(inbox.messages) == 1
