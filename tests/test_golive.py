"""Going live, end to end, as an admin does it: the built wheel in a fresh venv, sending
through a relay with STARTTLS, a login and a certificate from a private CA.

Marked ``slow`` (about a minute: it builds the wheel and makes a venv) and run in CI like
every other test. Nothing is fetched: the wheel is built without build isolation, and the
fresh venv sees the test environment's dependencies through a ``.pth`` line placed after its
own site-packages, so `digest` itself comes only from the wheel (the test checks that).
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import ssl
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import trustme

from tests.conftest import TEST_SECRET
from tests.smtpserver import ScriptedServer
from tests.webserver import digest_web, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "digest", "templates", "examples")
ADMIN = "you@example.org"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the source tree (the checkout stays untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (built,) = dist.glob("digest_papers-*-py3-none-any.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `digest` command of a fresh venv with only the wheel installed in it."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "zz_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    where = subprocess.run(
        [str(python), "-c", "import digest; print(digest.__file__)"],
        check=True, capture_output=True, text=True, cwd=venv,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(venv)), f"digest was imported from {where}, not the wheel"
    return venv / "bin" / "digest"


@pytest.fixture
def relay(tmp_path: Path):
    """A local relay that insists on STARTTLS and a login, its certificate from a private CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "relay-ca.pem"))
    with ScriptedServer(
        tls_context=context, require_starttls=True, auth=("mailer", "relay-password-42")
    ) as server:
        yield server


def test_going_live_from_the_wheel_to_a_message_in_the_relays_mailbox(
    installed: Path, relay: ScriptedServer, tmp_path: Path
) -> None:
    # Steps 2-4 of the README's checklist: the settings file (here the .env digest reads in its
    # working folder, as /etc/digest/digest.env is read by the units). With no network here the
    # public URL is the wheel's own `digest web` on 127.0.0.1, which must be allowed explicitly.
    port = free_port()
    settings = {
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_ALLOW_LOCAL_LINKS": "true",
        "DIGEST_TRANSPORT": "smtp",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(relay.port),
        "DIGEST_SMTP_USERNAME": "mailer",
        "DIGEST_SMTP_PASSWORD": "relay-password-42",
        "DIGEST_SMTP_CA_FILE": str(tmp_path / "relay-ca.pem"),
        "DIGEST_FROM": "Papers <papers@example.org>",
        "DIGEST_SOURCES": "file",
        "DIGEST_PAPERS_FILE": str(ROOT / "examples" / "papers.json"),
        "DIGEST_APPROVAL": "required",
    }
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}

    def digest(*args: str, code: int = 0) -> str:
        result = subprocess.run(
            [str(installed), *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        assert result.returncode == code, (
            f"digest {' '.join(args)}:\n{result.stdout}{result.stderr}"
        )
        return result.stdout + result.stderr

    assert digest("--version").startswith("digest (digest-papers), version ")
    digest("init")
    with digest_web(env, tmp_path, port=port, command=[str(installed)]):
        # Step 7: every check passes, the relay's STARTTLS, certificate and login included.
        checked = digest("check")
        verdicts = {line.split()[1]: line.split()[0] for line in checked.splitlines() if line}
        assert verdicts["smtp"] == verdicts["base_url"] == verdicts["database"] == "ok", checked
        assert set(verdicts.values()) <= {"ok", "skip"}, checked
        # Step 8: the first edition is built, previewed, approved, then sent.
        digest("subscribers", "add", ADMIN)
        assert "fetched 48" in digest("build")
        held = digest("send", code=1)  # DIGEST_APPROVAL=required: not before approval
        assert "approv" in held and relay.messages == []
        assert "wrote preview.html" in digest(
            "preview", "--subscriber", ADMIN, "--out", "preview.html"
        )
        assert digest("preview", "--send-to", ADMIN).strip().endswith(" sent")
        assert "approved" in digest("approve")
        sent = digest("send")
        status = digest("status")
    assert ": sent 1, deferred 0, failed 0, unknown 0" in sent and "written to" not in sent
    assert "relay-password-42" not in checked + sent + status

    assert relay.handler.auth_attempts >= 1
    assert [m.rcpt_tos for m in relay.messages] == [[ADMIN], [ADMIN]]
    test_copy, edition = (
        email.message_from_bytes(m.content, policy=email.policy.default) for m in relay.messages
    )
    assert edition["From"] == "Papers <papers@example.org>" and edition["To"] == ADMIN
    assert edition["List-Unsubscribe"].startswith(f"<http://127.0.0.1:{port}/unsubscribe/")
    assert test_copy["Subject"].startswith("[TEST] ")
    html = edition.get_body(("html",)).get_content()
    assert f"http://127.0.0.1:{port}/" in html and (tmp_path / "preview.html").exists()
