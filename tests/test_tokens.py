"""Link tokens: HMAC-SHA256 as documented, old SHA-1 links honoured for a transition, purpose
and subscriber binding (issue 12, "SHA-256").

The signature of a new token is recomputed here with hashlib and hmac alone, not by asking
itsdangerous, so the documented format is what is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from digest.tokens import (
    LEGACY_SHA1_UNTIL,
    MAX_AGE,
    Purpose,
    Signer,
    TokenData,
    TokenError,
    TokenExpired,
)
from tests.conftest import TEST_SECRET

BEFORE_CUTOFF = LEGACY_SHA1_UNTIL - timedelta(days=1)
AFTER_CUTOFF = LEGACY_SHA1_UNTIL + timedelta(seconds=1)


def _hmac_sha256(purpose: str, message: bytes) -> str:
    """The documented signature: base64url, unpadded, of HMAC-SHA256 keyed with
    SHA-256(salt + "signer" + secret), the salt being ``digest.<purpose>``."""
    key = hashlib.sha256(f"digest.{purpose}".encode() + b"signer" + TEST_SECRET.encode()).digest()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _old_token(purpose: Purpose, payload: list[int]) -> str:
    """A token made the way digest made them before: itsdangerous' defaults, HMAC-SHA1."""
    kind = URLSafeTimedSerializer if MAX_AGE[purpose] else URLSafeSerializer
    return kind(TEST_SECRET, salt=f"digest.{purpose}").dumps(payload)


def _signer(now: datetime = BEFORE_CUTOFF) -> Signer:
    return Signer(TEST_SECRET, clock=lambda: now)


# --- the new format is HMAC-SHA256 ---


@pytest.mark.parametrize("purpose", [Purpose.UNSUBSCRIBE, Purpose.PREFERENCES])
def test_a_link_token_is_the_id_and_its_hmac_sha256(purpose: Purpose) -> None:
    token = _signer().make(purpose, 4217)
    assert token == "4217." + _hmac_sha256(purpose, b"4217")
    assert len(token.rsplit(".", 1)[1]) == 43  # 32 bytes: SHA-256, not SHA-1's 20 (27 chars)


def test_a_confirm_token_signs_id_nonce_and_time_with_hmac_sha256() -> None:
    before = int(time.time())
    token = _signer().make(Purpose.CONFIRM, 4217, 3)
    after = int(time.time())
    value, signature = token.rsplit(".", 1)
    assert signature == _hmac_sha256("confirm", value.encode())
    subscriber, nonce, stamp = value.split(".")
    assert (subscriber, nonce) == ("4217", "3")
    signed_at = int.from_bytes(base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4)), "big")
    assert before <= signed_at <= after


@pytest.mark.parametrize("purpose", list(Purpose))
def test_new_tokens_verify_for_their_purpose_only(purpose: Purpose) -> None:
    signer = _signer()
    token = signer.make(purpose, 12, 5)
    assert signer.verify(token, purpose) == TokenData(12, 5)
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(TokenError):
                signer.verify(token, other)


def test_a_token_for_one_subscriber_cannot_be_turned_into_another() -> None:
    signer = _signer()
    token = signer.make(Purpose.UNSUBSCRIBE, 12)
    forged = "13" + token[2:]
    with pytest.raises(TokenError, match="this unsubscribe link is not valid"):
        signer.verify(forged, Purpose.UNSUBSCRIBE)
    other_key = Signer("another-secret-key-0123456789-abcdefgh").make(Purpose.UNSUBSCRIBE, 12)
    with pytest.raises(TokenError):
        signer.verify(other_key, Purpose.UNSUBSCRIBE)


@pytest.mark.parametrize("payload", [b"abc", b"-1", b"1.2.3", b"", b"99999999999999999999"])
def test_a_genuine_signature_over_a_payload_that_is_no_id_is_refused(payload: bytes) -> None:
    token = payload.decode() + "." + _hmac_sha256("unsubscribe", payload)
    with pytest.raises(TokenError):
        _signer().verify(token, Purpose.UNSUBSCRIBE)


def test_an_expired_confirm_token_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = _signer()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - MAX_AGE[Purpose.CONFIRM] - 5)
    token = signer.make(Purpose.CONFIRM, 12, 1)
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(TokenExpired, match="this confirm link has expired"):
        signer.verify(token, Purpose.CONFIRM)


# --- old HMAC-SHA1 tokens: unsubscribe for good, preferences until LEGACY_SHA1_UNTIL ---


def test_an_old_sha1_preferences_link_works_in_the_transition_only() -> None:
    old = _old_token(Purpose.PREFERENCES, [4217])
    assert _signer(BEFORE_CUTOFF).verify(old, Purpose.PREFERENCES) == TokenData(4217)
    with pytest.raises(TokenError, match="this preferences link is not valid"):
        _signer(AFTER_CUTOFF).verify(old, Purpose.PREFERENCES)


def test_an_old_sha1_unsubscribe_link_in_an_old_email_works_for_good() -> None:
    old = _old_token(Purpose.UNSUBSCRIBE, [4217])
    assert _signer(BEFORE_CUTOFF).verify(old, Purpose.UNSUBSCRIBE) == TokenData(4217)
    far = _signer(AFTER_CUTOFF + timedelta(days=3650))
    assert far.verify(old, Purpose.UNSUBSCRIBE) == TokenData(4217)


def test_an_old_sha1_confirm_link_works_until_it_expires() -> None:
    old = _old_token(Purpose.CONFIRM, [4217, 2])
    assert _signer().verify(old, Purpose.CONFIRM) == TokenData(4217, 2)
    with pytest.raises(TokenExpired):
        _signer().verify(old, Purpose.CONFIRM, max_age=-1)


def test_old_sha1_tokens_keep_their_purpose_and_subscriber() -> None:
    old = _old_token(Purpose.UNSUBSCRIBE, [4217])
    for other in (Purpose.PREFERENCES, Purpose.CONFIRM):
        with pytest.raises(TokenError):
            _signer().verify(old, other)
    tampered = URLSafeSerializer(
        "another-secret-key-0123456789-abcdefgh", salt="digest.unsubscribe"
    )
    with pytest.raises(TokenError):
        _signer().verify(tampered.dumps([4217]), Purpose.UNSUBSCRIBE)


def test_the_readme_states_the_end_of_the_transition() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert re.search(rf"keep working until\s+{LEGACY_SHA1_UNTIL.date().isoformat()}", readme)


def test_feedback_token_binds_subscriber_and_paper_and_nothing_else():
    """A "more like this" link names one subscriber and one paper; it opens nothing else."""
    signer = Signer("k" * 40)
    token = signer.make_feedback(7, "hep-th/9901001")
    assert "/" not in token  # one URL path segment
    data = signer.verify_feedback(token)
    assert (data.subscriber_id, data.arxiv_id) == (7, "hep-th/9901001")
    with pytest.raises(TokenError):
        signer.verify(token, Purpose.PREFERENCES)
    with pytest.raises(TokenError):
        signer.verify_feedback(signer.make(Purpose.PREFERENCES, 7))
    with pytest.raises(TokenError):
        signer.verify_feedback(token.replace("~hep", "~hap"))
    with pytest.raises(TokenError):
        Signer("j" * 40).verify_feedback(token)


def test_feedback_tokens_are_the_bytes_itsdangerous_signs():
    """make_feedback's fast HMAC gives exactly the token the itsdangerous signer gives."""
    from itsdangerous import Signer as ItsdangerousSigner

    reference = ItsdangerousSigner("k" * 40, salt="digest.feedback", digest_method=hashlib.sha256)
    signer = Signer("k" * 40)
    for sid, arxiv_id in [(1, "2411.01234"), (123456789, "hep-th/9901001"), (0, "2411.00001v2")]:
        payload = f"{sid}~{arxiv_id.replace('/', '_')}"
        assert signer.make_feedback(sid, arxiv_id) == reference.sign(payload).decode()


def test_link_tokens_are_the_bytes_itsdangerous_signs():
    """Unsubscribe and preferences tokens (the fast HMAC too) are itsdangerous' very tokens,
    so every link in emails already sent keeps verifying, and confirm tokens still expire."""
    from itsdangerous import Signer as ItsdangerousSigner

    signer = Signer("k" * 40)
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES):
        reference = ItsdangerousSigner(
            "k" * 40, salt=f"digest.{purpose}", digest_method=hashlib.sha256
        )
        for sid, nonce in [(1, 0), (123456789012, 0), (7, 3)]:
            payload = f"{sid}.{nonce}" if nonce else str(sid)
            token = signer.make(purpose, sid, nonce)
            assert token == reference.sign(payload).decode()
            assert signer.verify(token, purpose) == TokenData(sid, nonce)
    confirm = signer.make(Purpose.CONFIRM, 5, 2)
    assert confirm.count(".") == 3  # id, nonce, timestamp, signature
    assert signer.verify(confirm, Purpose.CONFIRM) == TokenData(5, 2)
