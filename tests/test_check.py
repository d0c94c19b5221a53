"""`digest check` (issue 11 #3): what an admin runs before going live and from monitoring.

Against real parts: a real `digest web` answering /healthz, real aiosmtpd servers with
STARTTLS, AUTH and a CA made by trustme, real SQLite files (digest's and a stranger's), a
real RSA key whose printed DNS record must verify the test email's DKIM signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
import trustme
from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from digest.cli import cli
from digest.store import Store
from tests.conftest import TEST_SECRET
from tests.smtpserver import ScriptedServer
from tests.test_transports import _dkim_key, _server_context
from tests.webserver import digest_web, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """A ready install but for the web app: migrated database, file transport, a secret key."""
    store = Store(db_url)
    store.migrate()
    store.close()
    return {
        "DIGEST_DATABASE_URL": db_url,
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_FROM": "digest <digest@example.org>",
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
        "DIGEST_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens there
    }


@pytest.fixture
def web(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """`digest web` in its own process; the settings point DIGEST_BASE_URL at it."""
    with digest_web(env, tmp_path) as base:
        yield {**env, "DIGEST_BASE_URL": base}


def check(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, ["check", *args], env=env, catch_exceptions=False)


def line_of(output: str, name: str) -> str:
    """The one line of check ``name`` in the text output."""
    (line,) = [line for line in output.splitlines() if line.split()[1:2] == [name]]
    return line


def statuses(env: dict[str, str], *args: str) -> dict[str, tuple[str, str]]:
    """name -> (status, detail) from `digest check --json`."""
    result = check(env, "--json", *args)
    return {c["name"]: (c["status"], c["detail"]) for c in json.loads(result.output)["checks"]}


def test_a_ready_install_passes_one_line_per_check(web: dict[str, str]) -> None:
    result = check(web)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "settings"], ["ok", "database"], ["ok", "secret"], ["ok", "templates"],
        ["skip", "dkim"], ["skip", "smtp"], ["ok", "base_url"],
    ]  # fmt: skip
    assert f"{web['DIGEST_DATABASE_URL']} revision" in lines[1]
    assert "DIGEST_DKIM_KEY_FILE not set" in lines[4]
    assert f"{web['DIGEST_BASE_URL']}/healthz answered 200" in lines[6]
    assert TEST_SECRET not in result.output
    report = json.loads(check(web, "--json").output)
    assert report["ok"] is True and report["exit_code"] == 0 and len(report["checks"]) == 7


def test_base_url_that_does_not_answer_fails(env: dict[str, str]) -> None:
    result = check(env)
    assert result.exit_code == 1
    line = line_of(result.output, "base_url")
    assert line.startswith("FAIL base_url") and "cannot connect" in line


def test_invalid_settings_exit_2_with_one_line_and_json(env: dict[str, str]) -> None:
    bad = {**env, "DIGEST_SMTP_PORT": "not-a-port"}
    result = CliRunner().invoke(cli, ["check"], env=bad)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "FAIL settings  DIGEST_SMTP_PORT: Input should be a valid integer, unable to parse "
        "string as an integer (got 'not-a-port')"
    ]
    report = json.loads(CliRunner().invoke(cli, ["check", "--json"], env=bad).output)
    assert report["exit_code"] == 2 and report["checks"][0]["status"] == "fail"


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_strangers_database_fails_and_no_command_ever_changes_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    theirs = tmp_path / "inventory.db"
    engine = sa.create_engine(f"sqlite:///{theirs}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("INSERT INTO parts (name) VALUES ('bolt')")
    engine.dispose()
    before = _fingerprint(theirs)
    strangers = {**env, "DIGEST_DATABASE_URL": f"sqlite:///{theirs}"}
    status, detail = statuses(strangers)["database"]
    assert status == "fail" and "is not a digest database (other tables: parts" in detail
    init = CliRunner().invoke(cli, ["init"], env=strangers)
    assert init.exit_code == 1 and len(init.output.strip().splitlines()) == 1
    assert "is not a digest database" in init.output
    assert _fingerprint(theirs) == before
    assert sorted(p.name for p in tmp_path.glob("inventory.db*")) == ["inventory.db"]


def test_a_missing_or_old_database_fails_and_is_left_as_it_is(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.db"
    status, detail = statuses({**env, "DIGEST_DATABASE_URL": f"sqlite:///{missing}"})["database"]
    assert status == "fail" and "does not exist; `digest init` creates it" in detail
    assert not missing.exists()
    old = tmp_path / "old.db"
    cfg = Config()
    cfg.set_main_option("script_location", "digest.store:migrations")
    engine = sa.create_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    status, detail = statuses({**env, "DIGEST_DATABASE_URL": f"sqlite:///{old}"})["database"]
    assert (
        status == "fail" and "at revision 0001" in detail and "`digest init` upgrades it" in detail
    )
    assert Store(f"sqlite:///{old}").revision() == "0001"  # looked at, not migrated


def test_a_short_key_or_not_the_key_that_signed_the_emails_fails(
    env: dict[str, str], tmp_path: Path
) -> None:
    short = statuses({**env, "DIGEST_SECRET_KEY": "too-short"})["secret"]
    assert short == ("fail", "DIGEST_SECRET_KEY has 9 characters; it needs 32+")
    assert statuses(env)["secret"][1].endswith("no email sent yet")
    added = CliRunner().invoke(cli, ["subscribers", "add", "ada@example.org"], env=env)
    assert added.exit_code == 0
    papers = ROOT / "examples" / "papers.json"
    assert CliRunner().invoke(cli, ["collect", "--file", str(papers)], env=env).exit_code == 0
    sent = CliRunner().invoke(cli, ["send"], env=env)
    assert sent.exit_code == 0 and "outbox: 1," in sent.output, sent.output
    assert statuses(env)["secret"] == (
        "ok",
        "DIGEST_SECRET_KEY, 43 characters; the links sent so far were signed with it",
    )
    other = {**env, "DIGEST_SECRET_KEY": "another-key-0123456789-abcdefghijklmnopq"}
    status, detail = statuses(other)["secret"]
    assert status == "fail" and "is not the key that signed the links" in detail
    assert other["DIGEST_SECRET_KEY"] not in check(other).output


def test_a_broken_template_override_fails_naming_file_and_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.txt").write_text("{{ brand.name }}\n{% if %}\n")
    status, detail = statuses({**env, "DIGEST_TEMPLATES_DIR": str(folder)})["templates"]
    assert status == "fail" and detail.startswith(f"{folder / 'digest.txt'}, line 2")
    (folder / "digest.txt").write_text("{{ brand.name }} {{ no_such_thing }}\n")
    status, detail = statuses({**env, "DIGEST_TEMPLATES_DIR": str(folder)})["templates"]
    assert status == "fail" and "no_such_thing" in detail and "digest.txt" in detail


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """The CA that signs the test SMTP servers' certificates."""
    return trustme.CA()


def smtp_env(env: dict[str, str], port: int, **more: str) -> dict[str, str]:
    # The test's base URL is a local `digest web`: allowed explicitly with the smtp transport.
    return {
        **env, "DIGEST_TRANSPORT": "smtp", "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port), "DIGEST_ALLOW_LOCAL_LINKS": "true", **more,
    }  # fmt: skip


def test_smtp_starttls_auth_and_the_certificate_are_checked_and_nothing_is_sent(
    env: dict[str, str], authority: trustme.CA, tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ca.pem", tmp_path / "other-ca.pem"
    authority.cert_pem.write_to_path(str(ours))
    trustme.CA().cert_pem.write_to_path(str(theirs))
    login = {"DIGEST_SMTP_USERNAME": "mailer", "DIGEST_SMTP_PASSWORD": "s3cret-pass"}
    with ScriptedServer(
        tls_context=_server_context(authority), auth=("mailer", "s3cret-pass")
    ) as server:
        good = smtp_env(env, server.port, DIGEST_SMTP_CA_FILE=str(ours), **login)
        status, detail = statuses(good)["smtp"]
        assert status == "ok", detail
        assert "STARTTLS TLSv1." in detail and "certificate verified" in detail
        assert "AUTH accepted" in detail and "sender <digest@example.org> accepted" in detail
        wrong_ca = {**good, "DIGEST_SMTP_CA_FILE": str(theirs)}
        status, detail = statuses(wrong_ca)["smtp"]
        assert status == "fail" and detail.startswith("STARTTLS") and "certificate" in detail
        wrong_password = {**good, "DIGEST_SMTP_PASSWORD": "guess"}
        result = check(wrong_password)
        assert result.exit_code == 1
        line = line_of(result.output, "smtp")
        assert line.startswith("FAIL smtp") and "AUTH: 535" in line
        assert "guess" not in result.output and "s3cret-pass" not in check(good).output
    assert server.messages == []
    with ScriptedServer(tls_context=_server_context(authority), implicit_tls=True) as implicit:
        tls = smtp_env(
            env, implicit.port, DIGEST_SMTP_SECURITY="tls", DIGEST_SMTP_CA_FILE=str(ours)
        )
        status, detail = statuses(tls)["smtp"]
        assert (
            status == "ok" and "implicit TLS TLSv1." in detail and "certificate verified" in detail
        )
        status, detail = statuses({**tls, "DIGEST_SMTP_CA_FILE": str(theirs)})["smtp"]
        assert status == "fail" and detail.startswith("connect") and "certificate" in detail
    with ScriptedServer() as plain:
        status, detail = statuses(smtp_env(env, plain.port, DIGEST_SMTP_SECURITY="none"))["smtp"]
        assert status == "ok" and "no encryption (DIGEST_SMTP_SECURITY=none)" in detail
        refused = smtp_env(env, plain.port)  # starttls required, not offered: never plain text
        assert statuses(refused)["smtp"] == ("fail", "STARTTLS: the server does not offer it")
    assert plain.messages == []


def test_send_to_sends_one_test_email_signed_with_the_dkim_key_whose_record_is_printed(
    env: dict[str, str], authority: trustme.CA, tmp_path: Path
) -> None:
    key_file, _ = _dkim_key(tmp_path)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with ScriptedServer(tls_context=_server_context(authority)) as server:
        settings = smtp_env(
            env, server.port, DIGEST_SMTP_CA_FILE=str(ca_file),
            DIGEST_DKIM_KEY_FILE=str(key_file), DIGEST_DKIM_SELECTOR="mail",
        )  # fmt: skip
        report = json.loads(check(settings, "--json", "--send-to", "admin@example.net").output)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["send"]["status"] == "ok" and "a***@example.net" in checks["send"]["detail"]
    dkim_check = checks["dkim"]
    assert dkim_check["status"] == "ok" and dkim_check["dns_name"] == "mail._domainkey.example.org"
    assert "2048-bit RSA key; publish: mail._domainkey.example.org TXT" in dkim_check["detail"]
    ((message),) = server.messages
    assert message.rcpt_tos == ["admin@example.net"]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return dkim_check["dns_txt"].encode()

    assert dkim.verify(message.content, dnsfunc=dns)  # the record printed is the one to publish
    assert b"test email from `digest check`" in message.content


def test_an_unusable_dkim_key_fails(env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    status, detail = statuses({**env, "DIGEST_DKIM_KEY_FILE": str(junk)})["dkim"]
    assert status == "fail" and detail.startswith("DIGEST_DKIM_KEY_FILE:")


def test_the_database_check_reads_postgresql_the_same_way(
    env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    database = request.getfixturevalue("pg_url")
    pg = {**env, "DIGEST_DATABASE_URL": database}
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parts (id integer PRIMARY KEY)")
    status, detail = statuses(pg)["database"]
    assert status == "fail" and "is not a digest database (other tables: parts" in detail
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE parts")
    engine.dispose()
    assert statuses(pg)["database"][1].endswith("is empty; `digest init` creates the schema")
    assert CliRunner().invoke(cli, ["init"], env=pg).exit_code == 0
    status, detail = statuses(pg)["database"]
    assert status == "ok" and detail.startswith(f"{database} revision ")
