"""Packaging: the distribution is this project's own name, never its namesake on the registry.

The name ``digest`` on the package registry belongs to an unrelated project ("Calculate
message digests of files", with a ``digest`` command of its own), so this one is published and
installed as ``digest-papers``; the import package and the command stay ``digest``.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "digest-papers"


def test_the_distribution_is_digest_papers_and_installs_the_digest_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"digest": "digest.cli:main"}
    scripts = metadata.distribution(DISTRIBUTION).entry_points.select(group="console_scripts")
    assert [(e.name, e.value) for e in scripts] == [("digest", "digest.cli:main")]


def test_version_is_read_from_this_distribution() -> None:
    result = CliRunner().invoke(cli, ["--version"], prog_name="digest")
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip()
        == f"digest ({DISTRIBUTION}), version {metadata.version(DISTRIBUTION)}"
    )


# `pip install digest`, `pip install 'digest[postgres]'`, `pipx install digest`: the namesake.
NAMESAKE = re.compile(
    r"\b(?:pip|pipx)\s+install\s+(?:-\S+\s+)*['\"]?digest(?:\[[^\]]*\])?['\"]?(?:\s|$)"
)


def _texts() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*"))]
    found += sorted((ROOT / "digest").rglob("*.py")) + sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in found if p.is_file()]


def test_no_install_line_anywhere_names_the_namesake() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in _texts()
        for line in path.read_text(errors="replace").splitlines()
        if NAMESAKE.search(line)
    ]
    assert offenders == []
