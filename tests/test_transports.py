"""Transports against a real, scripted aiosmtpd server on 127.0.0.1 (and real files)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import load_settings
from digest.delivery.transports import (
    ConnectionFailure,
    DkimSigned,
    FileTransport,
    MemoryTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    UnknownOutcome,
    classify_reply,
    make_transport,
)
from digest.mail.dkim import DkimSigner
from digest.models import Message
from tests.smtpserver import Script, ScriptedServer, SilentServer

UNSUB = "https://digest.example.org/unsubscribe/" + "t" * 60


def make_message(recipient: str = "reader@example.com", edition: str = "daily-2026-11-26"):
    """A multipart/alternative digest-like email with the RFC 8058 list headers."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "digest <digest@example.org>"
    msg["To"] = recipient
    msg["Subject"] = "Trending papers, 26 Nov: 3 papers"
    msg["Date"] = "Thu, 26 Nov 2026 07:00:00 +0000"
    msg["Message-ID"] = "<abc.123@example.org>"
    msg["List-Id"] = "digest <digest.example.org>"
    msg["List-Unsubscribe"] = f"<{UNSUB}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = "Theme: Diffusion\n. a line starting with a dot\nPaper one\n"
    html = "<html><body><h1>Diffusion</h1><p>Paper one</p></body></html>"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return Message(
        sender="digest <digest@example.org>",
        recipient=recipient,
        subject=str(msg["Subject"]),
        text=text,
        html=html,
        headers={"Message-ID": "<abc.123@example.org>", "X-Digest-Edition": edition},
        raw=msg.as_bytes(),
    )


def smtp(port: int, **kw) -> SmtpTransport:
    kw.setdefault("security", "none")
    kw.setdefault("timeout", 5)
    return SmtpTransport(host="127.0.0.1", port=port, envelope_from="bounce@example.org", **kw)


async def send_all(transport, *messages) -> None:
    try:
        for message in messages:
            await transport.send(message)
    finally:
        await transport.aclose()


def test_smtp_delivers_text_html_and_list_headers_that_parse_back() -> None:
    with ScriptedServer() as server:
        asyncio.run(send_all(smtp(server.port), make_message()))
    (got,) = server.messages
    assert got.mail_from == "bounce@example.org" and got.rcpt_tos == ["reader@example.com"]
    parsed = email.message_from_bytes(got.content, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == f"<{UNSUB}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in parsed.iter_parts())
    assert ". a line starting with a dot" in text  # dot-stuffing undone by the server
    assert "<h1>Diffusion</h1>" in html


def test_pool_keeps_connections_open_and_reconnects_after_the_server_drops_one() -> None:
    async def scenario(port: int) -> None:
        transport = smtp(port, connections=2)
        try:
            await transport.send(make_message("a@example.com"))
            await transport.send(make_message("b@example.com"))
            await asyncio.sleep(0.8)  # the server's idle timeout closes the connection
            await transport.send(make_message("c@example.com"))
        finally:
            await transport.aclose()

    with ScriptedServer(timeout=0.4) as server:
        asyncio.run(scenario(server.port))
    assert [m.rcpt_tos[0] for m in server.messages] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


@pytest.mark.parametrize(
    ("stage", "reply", "kind", "suppress"),
    [
        ("rcpt", "421 4.7.0 Try again later, closing connection", TemporaryFailure, None),
        ("rcpt", "450 4.2.1 Mailbox busy", TemporaryFailure, None),
        ("data", "451 4.3.0 Local error in processing", TemporaryFailure, None),
        ("rcpt", "452 4.2.2 Mailbox full", TemporaryFailure, None),
        ("rcpt", "550 5.1.1 No such user here", PermanentFailure, True),
        ("data", "552 5.3.4 Message too big", PermanentFailure, False),
        ("data", "554 5.7.1 Message rejected as spam", PermanentFailure, False),
    ],
)
def test_each_reply_maps_to_what_it_means_and_the_connection_carries_on(
    stage: str, reply: str, kind: type, suppress: bool | None
) -> None:
    bad, good = "bad@example.com", "good@example.com"
    script = Script(**{stage: {bad: reply}})

    async def scenario(port: int) -> Exception:
        transport = smtp(port, connections=1)
        try:
            with pytest.raises(kind) as info:
                await transport.send(make_message(bad))
            await transport.send(make_message(good))  # same pool, next message still goes
            return info.value
        finally:
            await transport.aclose()

    with ScriptedServer(script) as server:
        error = asyncio.run(scenario(server.port))
    assert error.code == int(reply[:3])
    if suppress is not None:
        assert error.suppress is suppress
    assert [m.rcpt_tos for m in server.messages] == [[good]]


def test_disconnect_after_the_data_is_sent_is_an_unknown_outcome() -> None:
    script = Script(data={"lost@example.com": "disconnect"})

    async def scenario(port: int) -> None:
        transport = smtp(port, connections=1)
        try:
            with pytest.raises(UnknownOutcome):
                await transport.send(make_message("lost@example.com"))
            await transport.send(make_message("next@example.com"))  # reconnects
        finally:
            await transport.aclose()

    with ScriptedServer(script) as server:
        asyncio.run(scenario(server.port))
    assert [m.rcpt_tos for m in server.messages] == [["next@example.com"]]


def test_no_final_reply_within_the_timeout_is_an_unknown_outcome() -> None:
    script = Script(data={"*": "hang"})
    with ScriptedServer(script) as server:
        with pytest.raises(UnknownOutcome):
            asyncio.run(send_all(smtp(server.port, timeout=0.3), make_message()))


def test_a_server_that_never_answers_times_out_as_a_connection_failure() -> None:
    with SilentServer() as silent:
        with pytest.raises(ConnectionFailure, match="127.0.0.1"):
            asyncio.run(send_all(smtp(silent.port, timeout=0.3), make_message()))


def test_starttls_required_but_not_offered_is_an_error_not_a_plaintext_fallback() -> None:
    with ScriptedServer() as server:
        with pytest.raises(ConnectionFailure, match="STARTTLS"):
            asyncio.run(send_all(smtp(server.port, security="starttls"), make_message()))
    assert server.messages == []


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_untrusted_certificate_is_rejected_and_a_trusted_ca_file_accepted(
    ca: trustme.CA, tmp_path: Path, security: str
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ScriptedServer(tls_context=_server_context(ca), implicit_tls=security == "tls") as server:
        with pytest.raises(ConnectionFailure, match="(?i)certificate"):
            asyncio.run(send_all(smtp(server.port, security=security), make_message()))
        assert server.messages == []
        asyncio.run(send_all(smtp(server.port, security=security, ca_file=ca_file), make_message()))
    assert len(server.messages) == 1


def test_wrong_password_is_a_connection_failure_and_the_right_one_sends() -> None:
    with ScriptedServer(auth=("mailer", "s3cret")) as server:
        with pytest.raises(ConnectionFailure, match="535"):
            asyncio.run(
                send_all(smtp(server.port, username="mailer", password="nope"), make_message())
            )
        asyncio.run(
            send_all(smtp(server.port, username="mailer", password="s3cret"), make_message())
        )
    assert len(server.messages) == 1


def test_refused_sender_pauses_instead_of_suppressing_the_recipient() -> None:
    error = classify_reply(553, "5.1.8 Sender address rejected", stage="mail")
    assert isinstance(error, ConnectionFailure)


def _dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    import base64

    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_covers_the_list_headers_and_verifies(tmp_path: Path) -> None:
    key_file, record = _dkim_key(tmp_path)
    settings = load_settings(
        dkim_key_file=key_file, dkim_selector="mail", sender="digest <digest@example.org>"
    )
    signer = DkimSigner.from_settings(settings)
    with ScriptedServer() as server:
        asyncio.run(send_all(DkimSigned(smtp(server.port), signer), make_message()))
    content = server.messages[0].content

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    assert dkim.verify(content, dnsfunc=dns)
    signature = email.message_from_bytes(content)["DKIM-Signature"].replace("\r\n", "")
    for header in ("list-unsubscribe", "list-unsubscribe-post", "message-id", "from", "to"):
        assert header in signature.lower()
    tampered = content.replace(b"t" * 20, b"x" * 20, 1)  # someone swaps the unsubscribe link
    assert tampered != content and not dkim.verify(tampered, dnsfunc=dns)


def test_file_transport_writes_numbered_eml_and_html_per_edition(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    asyncio.run(send_all(FileTransport(outbox), make_message("a@x.org"), make_message("b@x.org")))
    asyncio.run(send_all(FileTransport(outbox), make_message("c@x.org")))  # a later run appends
    folder = outbox / "daily-2026-11-26"
    assert sorted(p.name for p in folder.iterdir()) == [
        "1.eml", "1.html", "2.eml", "2.html", "3.eml", "3.html",
    ]  # fmt: skip
    third = email.message_from_bytes((folder / "3.eml").read_bytes())
    assert third["To"] == "c@x.org"
    assert "<h1>Diffusion</h1>" in (folder / "3.html").read_text()


def test_make_transport_follows_the_settings(tmp_path: Path) -> None:
    assert isinstance(make_transport(load_settings(transport="memory")), MemoryTransport)
    file = make_transport(load_settings(outbox=tmp_path / "o"))
    assert isinstance(file, FileTransport) and file.outbox == tmp_path / "o"
    pool = make_transport(
        load_settings(transport="smtp", smtp_connections=7, allow_local_links=True)
    )
    assert isinstance(pool, SmtpTransport) and pool.concurrency == 7


def test_unusable_ca_file_or_dkim_key_is_a_one_line_start_up_error(tmp_path: Path) -> None:
    from digest.errors import DigestError

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate or key\n")
    with pytest.raises(DigestError, match="DIGEST_SMTP_CA_FILE"):
        make_transport(load_settings(transport="smtp", smtp_ca_file=junk, allow_local_links=True))
    with pytest.raises(DigestError, match="DIGEST_DKIM_KEY_FILE"):
        make_transport(load_settings(dkim_key_file=junk, sender="d <d@example.org>"))
    with pytest.raises(DigestError, match="^DIGEST_DKIM_KEY_FILE: no such file"):
        load_settings(dkim_key_file=tmp_path / "missing.pem")  # now stops at start-up
