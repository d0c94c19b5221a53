"""The message bytes: they parse back, carry the list headers, and refuse header injection."""

from __future__ import annotations

import email
import email.policy
import html

import pytest

from digest.errors import DigestError
from digest.mail.mime import MAX_LINE, SplicedMessage, format_address, seven_bit_html
from digest.mail.render import Renderer
from digest.models import Subscriber
from tests.test_render import SUBSCRIBER, sample_edition, selection_of


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def raw_header(raw: bytes, name: str) -> str:
    """A header exactly as written (unfolded lines joined), from the raw bytes."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    lines = head.split("\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower() + ":"):
            value = line
            for cont in lines[i + 1 :]:
                if not cont.startswith((" ", "\t")):
                    break
                value += "\r\n" + cont
            return value
    raise AssertionError(f"no {name} header")


@pytest.fixture
def digest_message(settings):
    edition = sample_edition(30)
    renderer = Renderer(settings)
    return renderer, renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(
        SUBSCRIBER
    )


def test_message_parses_back_into_text_and_html_with_list_headers(digest_message) -> None:
    renderer, message = digest_message
    parsed = parse(message.raw)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    # Python keeps the wire's CRLF line ends in decoded parts.
    assert parts[0].get_content().replace("\r\n", "\n") == message.text
    assert parts[1].get_content().replace("\r\n", "\n") == message.html + "\n"
    assert parts[1]["Content-Transfer-Encoding"] == "7bit"
    unsub, _ = renderer.links(SUBSCRIBER)
    assert parsed["From"] == "digest <digest@example.org>"
    assert parsed["To"] == "ada@example.org"
    assert parsed["Subject"] == message.subject == "digest: 30 trending papers, 26 Nov 2026"
    assert parsed["Date"] and parsed["Message-ID"] == message.headers["Message-ID"]
    assert parsed["List-Id"] == "digest <digest.digest.example.org>"
    assert parsed["List-Unsubscribe"] == f"<{unsub}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"
    assert not parsed.defects and not any(p.defects for p in parts)


def test_list_unsubscribe_is_one_unfolded_uri(settings) -> None:
    long_base = settings.model_copy(
        update={"base_url": "https://newsletters.some-long-university-domain.example.org/digest"}
    )
    renderer = Renderer(long_base)
    edition = sample_edition(3, themes=1)
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    line = raw_header(message.raw, "List-Unsubscribe")
    unsub, _ = renderer.links(SUBSCRIBER)
    assert len(unsub) > 100
    assert line == f"List-Unsubscribe: <{unsub}>"  # one line, no encoded-word
    assert parse(message.raw)["List-Unsubscribe"] == f"<{unsub}>"


def test_every_line_is_short_and_the_html_part_is_ascii(digest_message) -> None:
    _, message = digest_message
    for line in message.raw.split(b"\r\n"):
        assert len(line) <= MAX_LINE
    assert b"\n" not in message.raw.replace(b"\r\n", b"")  # CRLF only
    assert message.html.isascii()


def test_non_ascii_names_and_subjects_are_encoded_words(settings) -> None:
    named = settings.model_copy(
        update={"name": "Résumé des papiers ✨", "sender": "Zoë Café <news@example.org>"}
    )
    renderer = Renderer(named)
    edition = sample_edition(3, themes=1)
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    head = message.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # everything RFC 2047 encoded
    assert b"=?utf-8?" in head
    parsed = parse(message.raw)
    assert parsed["Subject"] == "Résumé des papiers ✨: 3 trending papers, 26 Nov 2026"
    assert parsed["From"].addresses[0].display_name == "Zoë Café"
    assert parsed["From"].addresses[0].addr_spec == "news@example.org"
    assert "Résumé des papiers ✨" in html.unescape(parsed.get_body("html").get_content())


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ("Plain Name <zoë@example.org>", "Plain Name"),
        ('"Doe, Jane" <zoë@example.org>', "Doe, Jane"),
    ],
)
def test_an_ascii_name_with_an_international_address_is_sent(settings, sender, name) -> None:
    """An ASCII display name beside a UTF-8 local part (RFC 6532) builds a message whose From
    reads back as written, instead of failing with UnicodeEncodeError."""
    renderer = Renderer(settings.model_copy(update={"sender": sender}))
    edition = sample_edition(2, themes=1)
    message = renderer.prepare_digest(edition, selection_of(edition)).for_subscriber(SUBSCRIBER)
    head = message.raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")  # UTF-8 headers (RFC 6532)
    (address,) = email.message_from_string(head, policy=email.policy.default)["From"].addresses
    assert (address.display_name, address.addr_spec) == (name, "zoë@example.org")


@pytest.mark.parametrize(
    "update",
    [
        {"name": "digest\r\nBcc: victim@example.org"},
        {"name": "digest\nX-Evil: 1"},
        {"sender": "digest <d@example.org>\r\nBcc: victim@example.org"},
        {"reply_to": "a@example.org\nBcc: b@example.org"},
    ],
)
def test_line_breaks_in_header_values_are_refused(settings, update) -> None:
    edition = sample_edition(2, themes=1)
    with pytest.raises(DigestError, match="line break"):
        Renderer(settings.model_copy(update=update)).prepare_digest(edition, selection_of(edition))


def test_line_breaks_in_recipient_or_subject_are_refused(settings) -> None:
    edition = sample_edition(2, themes=1)
    renderer = Renderer(settings)
    prepared = renderer.prepare_digest(edition, selection_of(edition))
    with pytest.raises(DigestError, match="To contains a line break"):
        prepared.for_subscriber(Subscriber(email="a@example.org\r\nBcc: b@example.org", id=1))
    with pytest.raises(DigestError, match="Subject contains a line break"):
        renderer.prepare_digest(
            edition, selection_of(edition), subject_prefix="[TEST]\r\nBcc: x@y.z "
        )
    with pytest.raises(DigestError, match="not an email address"):
        format_address("To", "not an address")


def test_placeholders_in_long_lines_stay_under_998_bytes() -> None:
    slot = "SLOT-URL-1"
    html = "<p>" + ("word " * 150) + f'<a href="{slot}">x</a> ' + ("word " * 150) + "</p>"
    spliced = SplicedMessage(
        sender="d@example.org", subject="s", text=f"see {slot}\n", html=html, placeholders=[slot]
    )
    url = "https://example.org/unsubscribe/" + "A" * 400
    raw, text, out_html, _ = spliced.build("a@example.org", {slot: url})
    assert all(len(line) <= MAX_LINE for line in raw.split(b"\r\n"))
    parsed = parse(raw)
    assert url in parsed.get_body("html").get_content()
    assert parsed.get_body("plain").get_content() == f"see {url}\r\n"
    assert url in out_html and text == f"see {url}\n"


def test_seven_bit_html_keeps_characters_as_references() -> None:
    out = seven_bit_html("<p>Zoë 🚀 " + "x " * 1000 + "</p>")
    assert out.isascii() and "Zo&#235; &#128640;" in out
    assert max(len(line) for line in out.split("\n")) < MAX_LINE
