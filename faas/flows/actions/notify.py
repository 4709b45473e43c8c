"""The notification action (``faas://notify``; Globus's ``https://actions.globus.org/notification/notify``
is an alias): send an e-mail through the SMTP server the site configures.

Body, as Globus's Send Notification Email provider takes it: ``destination`` (an address, several
separated by commas, or a list), ``subject``, ``body_template`` (``$name`` / ``${name}``
placeholders filled from ``body_variables``, as Python's :class:`string.Template`),
``body_mimetype`` (``text/plain``, the default, or ``text/html``), ``sender``,
``notification_method`` (``email`` or ``any``), ``notification_priority``, ``send_credentials``.

The SMTP server is the site's, from the flows config (``faas flows serve --config``)::

    notify:
      smtp: {host: smtp.example.org, port: 587, security: starttls,   # starttls | ssl | none
             username: flows, password_env: FAAS_SMTP_PASSWORD,        # the password's variable
             sender: flows@example.org, timeout: 30, ca_file: /etc/ssl/site-ca.pem}
      allow_body_credentials: false
      recipients: ["*@example.org"]   # optional: whom flows may mail (shell patterns)
      senders: [flows@example.org]    # optional: which From addresses flows may use

The password is read from the named environment variable when a message is sent; it is never
written to the store. A flow's ``send_credentials`` (Globus flows carry their SMTP or SES
credentials there) are ignored when the site has a server; only with no ``notify.smtp`` and
``allow_body_credentials: true`` does an SMTP credential in the body pick the server.

Globus's provider is synchronous and so is this one: ``run`` sends and returns SUCCEEDED (details
``{message_id, destination, accepted, refused, subject, sender}``) or FAILED with the server's
reply (``smtp_code``, ``smtp_reply``). The action document is written before the message is
sent, so a retried ``run`` (same request id) returns it and never sends twice; a document left
ACTIVE by a process that died while sending fails as ``ActionInterrupted`` rather than risk a
second copy.
"""
from __future__ import annotations

import fnmatch
import os
import smtplib
import ssl
import string
import time
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from .base import (
    ACTIVE,
    DONE,
    FAILED,
    SUCCEEDED,
    ActionConflict,
    ActionContext,
    ActionNotFound,
    ActionUnableToRun,
    Docs,
    action_id_for,
    finish,
    new_doc,
    public,
)

DEFAULT_TIMEOUT = 30.0
MIMETYPES = {"text/plain": "plain", "text/html": "html"}
SECURITY = ("starttls", "ssl", "none")
BODY_KEYS = ("destination", "subject", "body_template", "body_mimetype", "body_variables", "sender",
             "notification_method", "notification_priority", "send_credentials")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}

#: The body's JSON Schema, served by ``faas actions serve``'s introspection.
INPUT_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["destination", "body_template"],
    "properties": {
        "destination": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                        "description": "recipient address(es): one, comma-separated, or a list"},
        "subject": {"type": "string"},
        "body_template": {"type": "string", "description": "$name placeholders filled from body_variables"},
        "body_mimetype": {"type": "string", "enum": list(MIMETYPES)},
        "body_variables": {"type": "object"},
        "sender": {"type": "string", "description": "From address [default: the site's notify.smtp.sender]"},
        "notification_method": {"type": "string", "enum": ["email", "any"]},
        "notification_priority": {"type": "string"},
        "send_credentials": {"type": "array", "items": {"type": "object"},
                             "description": "ignored where the site configures its SMTP server"},
    },
}


class _Message:
    """What ``run`` checked: the e-mail to send, minus anything secret."""

    def __init__(self, body: Any, ctx: ActionContext):
        if not isinstance(body, dict):
            raise ActionUnableToRun(f"the notify body must be an object, got {type(body).__name__}")
        unknown = sorted(k for k in body if k not in BODY_KEYS)
        if unknown:
            raise ActionUnableToRun(f"{unknown[0]}: not a key of the notification body; expected "
                                    f"{', '.join(BODY_KEYS)}")
        self.destination = _addresses(body.get("destination"))
        self.subject = _one_line(body.get("subject", ""), "subject")
        template = body.get("body_template")
        if not isinstance(template, str):
            raise ActionUnableToRun(f"body_template: expected the message text (a string), got {template!r}")
        variables = body.get("body_variables") or {}
        if not isinstance(variables, dict):
            raise ActionUnableToRun(f"body_variables: expected an object of values for the "
                                    f"template's $names, got {variables!r}")
        self.text = string.Template(template).safe_substitute(
            {str(k): v if isinstance(v, str) else _json(v) for k, v in variables.items()})
        mimetype = body.get("body_mimetype", "text/plain")
        if mimetype not in MIMETYPES:
            raise ActionUnableToRun(f"body_mimetype: expected one of {', '.join(MIMETYPES)}, got {mimetype!r}")
        self.subtype = MIMETYPES[mimetype]
        method = body.get("notification_method", "email")
        if method not in ("email", "any"):
            raise ActionUnableToRun(f"notification_method: this site sends e-mail only ('email' or "
                                    f"'any'), got {method!r}")
        creds = body.get("send_credentials")
        if creds is not None and (not isinstance(creds, list) or not all(isinstance(c, dict) for c in creds)):
            raise ActionUnableToRun(f"send_credentials: expected a list of credential objects, got "
                                    f"{type(creds).__name__}")
        self.server = _server(ctx, creds or [])
        sender = body.get("sender", self.server.get("sender"))
        if sender is None:
            raise ActionUnableToRun("sender: missing; give the From address in the body or as the "
                                    "site's notify.smtp.sender")
        self.sender = _addresses(sender, "sender")[0]
        _allowed(ctx, "senders", [self.sender], "sender")
        _allowed(ctx, "recipients", self.destination, "destination")

    def email(self, action_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.destination)
        msg["Subject"] = self.subject
        msg["Message-ID"] = make_msgid(idstring=action_id[:16], domain=self.sender.rpartition("@")[2])
        msg["X-Faas-Action-Id"] = action_id
        msg.set_content(self.text, subtype=self.subtype)
        return msg


def _json(v: Any) -> str:
    import json
    return json.dumps(v)


def _one_line(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ActionUnableToRun(f"{key}: expected a string, got {v!r}")
    if "".join(v.splitlines()) != v or any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in v):
        raise ActionUnableToRun(f"{key}: must be one line (no line breaks or control characters)")
    return v


#: not in an address we send to: what would let one string name two mailboxes (``,`` ``;``), a
#: display name or comment (``<>()"``), a route or group (``:[]\``), or break a header
_NOT_IN_ADDRESS = set(',;<>()[]:\\"')


def _addresses(v: Any, key: str = "destination") -> list[str]:
    """Addresses from one string (comma-separated) or a list of strings; each a bare
    ``local@domain`` (one ``@``, no space, control character or ``,;<>()[]:\\"``), so the
    addresses checked are the addresses the server is given, one mailbox each."""
    if isinstance(v, str):
        items = [a.strip() for a in v.split(",") if a.strip()]
    elif isinstance(v, list) and all(isinstance(a, str) for a in v):
        items = [a.strip() for a in v if a.strip()]
    else:
        raise ActionUnableToRun(f"{key}: expected an e-mail address, several separated by commas, "
                                f"or a list of them, got {v!r}")
    if not items:
        raise ActionUnableToRun(f"{key}: no address given")
    for a in items:
        local, at, domain = a.rpartition("@")
        if (not at or not local or not domain or "@" in local
                or any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c in _NOT_IN_ADDRESS for c in a)):
            raise ActionUnableToRun(f"{key}: {a!r} is not an e-mail address (local@domain)")
    return items


def _allowed(ctx: ActionContext, what: str, addresses: list[str], key: str) -> None:
    """The site may list the ``senders`` and ``recipients`` its flows may use (``notify:
    {recipients: ["*@example.org"], senders: [flows@example.org]}``, shell-style patterns,
    case-insensitive): the runner sends with the site's SMTP login, so without a list a flow's
    author can mail anyone, as anyone the server lets that login claim."""
    section = ctx.config.get("notify") or {}
    patterns = section.get(what) if isinstance(section, dict) else None
    if patterns is None:
        return
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ActionUnableToRun(f"flows config notify.{what}: expected a list of address patterns "
                                f"such as \"*@example.org\", got {patterns!r}")
    for a in addresses:
        if not any(fnmatch.fnmatchcase(a.lower(), p.strip().lower()) for p in patterns):
            raise ActionUnableToRun(f"{key}: {a!r} is not among the {what} this site allows "
                                    f"(flows config notify.{what}: {', '.join(patterns) or 'none'})")


def _server(ctx: ActionContext, creds: list[dict]) -> dict:
    """The SMTP server to use: the site's ``notify.smtp``, else (when the site allows it) the
    body's SMTP credential. Checked here so a bad config fails at run, before anything is sent."""
    section = ctx.config.get("notify") or {}
    if not isinstance(section, dict):
        raise ActionUnableToRun(f"flows config notify: expected an object with an smtp section, got {section!r}")
    smtp = section.get("smtp")
    if smtp is None:
        body_smtp = [c for c in creds if c.get("credential_type") == "smtp"]
        if body_smtp and section.get("allow_body_credentials") is True:
            v = body_smtp[0].get("credential_value")
            if not isinstance(v, dict) or not isinstance(v.get("hostname"), str):
                raise ActionUnableToRun("send_credentials[].credential_value: expected {hostname, "
                                        "username, password, port} for credential_type smtp")
            port = v.get("port", 587)
            return {"host": v["hostname"], "port": port,
                    "security": "ssl" if port == 465 else "starttls",
                    "username": v.get("username"), "_password": v.get("password")}
        raise ActionUnableToRun("this site has no SMTP server for notifications: set notify.smtp "
                                "{host, port, security, username, password_env, sender} in the flows "
                                "config (faas flows serve --config)")
    if not isinstance(smtp, dict):
        raise ActionUnableToRun(f"flows config notify.smtp: expected an object, got {smtp!r}")
    host = smtp.get("host")
    if not isinstance(host, str) or not host:
        raise ActionUnableToRun(f"flows config notify.smtp.host: expected the SMTP server's host name, got {host!r}")
    security = smtp.get("security", "starttls")
    if security not in SECURITY:
        raise ActionUnableToRun(f"flows config notify.smtp.security: expected one of "
                                f"{', '.join(SECURITY)}, got {security!r}")
    port = smtp.get("port", _DEFAULT_PORTS[security])
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ActionUnableToRun(f"flows config notify.smtp.port: expected a port number, got {port!r}")
    out = {"host": host, "port": port, "security": security, "username": smtp.get("username"),
           "sender": smtp.get("sender"), "timeout": smtp.get("timeout", DEFAULT_TIMEOUT),
           "ca_file": smtp.get("ca_file")}
    env = smtp.get("password_env")
    if out["username"] is not None:
        if not isinstance(env, str) or not env:
            raise ActionUnableToRun("flows config notify.smtp.password_env: with a username, name the "
                                    "environment variable that holds the password (the password itself "
                                    "is never written in the config)")
        if env not in os.environ:
            raise ActionUnableToRun(f"flows config notify.smtp.password_env: the environment variable "
                                    f"{env} is not set in the runner's environment")
        out["_password"] = os.environ[env]
    return out


def _tls(server: dict) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=server.get("ca_file"))
    return ctx


def send(msg: EmailMessage, server: dict, to: list[str] | None = None) -> dict:
    """Send ``msg`` through ``server`` to ``to`` (default: its To header's addresses), with its
    From as the envelope sender; ``{accepted, refused}`` or the smtplib error raised."""
    timeout = float(server.get("timeout") or DEFAULT_TIMEOUT)
    conn: smtplib.SMTP
    if server["security"] == "ssl":
        conn = smtplib.SMTP_SSL(server["host"], server["port"], timeout=timeout, context=_tls(server))
    else:
        conn = smtplib.SMTP(server["host"], server["port"], timeout=timeout)
    with conn:
        if server["security"] == "starttls":
            conn.starttls(context=_tls(server))
        if server.get("username"):
            conn.login(server["username"], server.get("_password") or "")
        if to is None:
            to = [a.strip() for a in msg["To"].split(",")]
        refused = conn.send_message(msg, from_addr=msg["From"], to_addrs=to)
    return {"accepted": [a for a in to if a not in refused],
            "refused": {a: {"smtp_code": c, "smtp_reply": _text(r)} for a, (c, r) in refused.items()}}


def _text(reply: Any) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _failure(e: Exception) -> dict:
    """FAILED details carrying what the server said."""
    d: dict = {"error": type(e).__name__, "message": str(e)}
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        d["refused"] = {a: {"smtp_code": c, "smtp_reply": _text(r)} for a, (c, r) in e.recipients.items()}
        d["message"] = "the server refused every recipient: " + "; ".join(
            f"{a}: {v['smtp_code']} {v['smtp_reply']}" for a, v in d["refused"].items())
    elif isinstance(e, smtplib.SMTPResponseException):
        d["smtp_code"], d["smtp_reply"] = e.smtp_code, _text(e.smtp_error)
        d["message"] = f"the SMTP server answered {e.smtp_code} {_text(e.smtp_error)}"
    return d


class NotifyProvider:
    kind = "notify"
    input_schema = INPUT_SCHEMA
    synchronous = True

    def __init__(self) -> None:
        self.docs = Docs(self.kind)

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        try:    # a rerun (a restarted runner) gets its action even if the site config changed since
            return self.status(action_id_for(self.kind, request_id), ctx)
        except ActionNotFound:
            pass
        message = _Message(body, ctx)
        timeout = float(message.server.get("timeout") or DEFAULT_TIMEOUT)

        def make(aid):
            doc = new_doc(self.kind, aid, request_id, ctx, display_status="Sending",
                          details={"destination": message.destination, "subject": message.subject})
            doc["_sending_until"] = time.time() + 3 * timeout + 30
            return doc
        doc, created = self.docs.create(ctx, request_id, make)
        if not created:
            return self.status(doc["action_id"], ctx)
        msg = message.email(doc["action_id"])
        base = {"message_id": msg["Message-ID"], "destination": message.destination,
                "subject": message.subject, "sender": message.sender}
        try:
            sent = send(msg, message.server, message.destination)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            finish(doc, FAILED, {**base, **_failure(e)}, f"Not sent: {type(e).__name__}")
        else:
            finish(doc, SUCCEEDED, {**base, **sent}, "Sent")
        doc.pop("_sending_until", None)
        return public(self.docs.put(ctx, doc))

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.docs.get(ctx, action_id)
        if doc["status"] == ACTIVE and time.time() > doc.get("_sending_until", 0):
            finish(doc, FAILED, {**(doc.get("details") or {}), "error": "ActionInterrupted",
                                 "message": "the process sending this message stopped before it "
                                            "recorded the server's answer; it was not sent again, "
                                            "so no one gets it twice"})
            doc.pop("_sending_until", None)
            self.docs.put(ctx, doc)
        out = public(doc)
        if out["status"] not in DONE:
            out["poll_after"] = 1
        return out

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        """A message is sent in one step: there is nothing to stop; the status as it stands."""
        return self.status(action_id, ctx)

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        doc = self.status(action_id, ctx)
        if doc["status"] not in DONE:
            raise ActionConflict(f"notify action {action_id} is still sending: release it once it "
                                 "has SUCCEEDED or FAILED")
        self.docs.delete(ctx, action_id)
        return doc
