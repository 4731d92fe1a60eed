"""tools/lint_docker.sh: the docker/ recipes pass it, and it fails on broken ones.

The images cannot be built on these machines (no container registry), so the lint
(hadolint over the Dockerfiles, the compose-spec schema over docker/compose.yaml) is
what checks them; these tests make sure it cannot pass silently: a Dockerfile or a
compose file with a known mistake must make it exit non-zero and name the mistake.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
LINT = ROOT / "tools" / "lint_docker.sh"
DOCKER = ROOT / "docker"


def lint(*files: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(LINT), *map(str, files)], cwd=ROOT, capture_output=True, text=True,
        timeout=600, check=False)


def test_the_docker_recipes_pass_the_lint():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_a_broken_dockerfile_fails_and_is_named(tmp_path: Path):
    bad = tmp_path / "bad.Dockerfile"
    # An unpinned base image and a `cd` inside RUN: hadolint's DL3007 and DL3003.
    bad.write_text("FROM ubuntu:latest\nRUN cd /tmp && echo hi\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3003" in result.stdout


def test_a_broken_compose_file_fails_and_is_named(tmp_path: Path):
    bad = tmp_path / "compose.yaml"
    good = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert good["services"]["baxter-bridge"]["network_mode"] == "host"
    # A misspelt key in a merged anchor: only a lint that resolves the merge sees it.
    text = (DOCKER / "compose.yaml").read_text().replace(
        "  network_mode: host\n  environment:", "  netwrk_mode: host\n  environment:", 1)
    assert "netwrk_mode" in text
    bad.write_text(text)
    result = lint(bad)
    assert result.returncode != 0
    assert "netwrk_mode" in result.stdout + result.stderr


def test_compose_builds_the_linted_dockerfiles():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    built = {(DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve()
             for svc in compose["services"].values() if "build" in svc}
    linted = {p.resolve() for p in DOCKER.glob("*.Dockerfile")}
    assert built == linted == {DOCKER / "sim.Dockerfile", DOCKER / "baxter.Dockerfile"}


@pytest.mark.parametrize("doc", ["README.md", "docker/README.md", ".dockerignore",
                                 "src/graspq/package.xml"])
def test_docker_paths_named_in_docs_exist(doc: str):
    named = set(re.findall(r"docker/[\w.-]+", (ROOT / doc).read_text()))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"{doc} names {missing}"


def _dockerfiles() -> list[Path]:
    return sorted(DOCKER.glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: p.name)
def test_pins_the_dockerfiles_pick_by_grep_exist_once(dockerfile: Path):
    # `pip install "$(grep -E '^numpy==' requirements.txt)"`: a pin that moved to another
    # file, or appears twice, would install nothing or break the build.
    picks = re.findall(r"grep -E '\^([\w.-]+)==' ([\w.-]+)", dockerfile.read_text())
    assert picks, "each image picks a pin by grep (numpy or opencv): the pattern changed?"
    for package, requirements in picks:
        lines = [line for line in (ROOT / requirements).read_text().splitlines()
                 if line.startswith(f"{package}==")]
        assert len(lines) == 1, f"{dockerfile.name}: {package} in {requirements}: {lines}"


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: p.name)
def test_what_the_dockerfiles_copy_is_in_the_build_context(dockerfile: Path):
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    sources = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += [s for s in line.split()[1:-1] if s != "."]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
        assert source.split("/")[0] not in ignored, f"{source} is in .dockerignore"


def test_entrypoint_unsets_an_empty_ros_ip():
    entrypoint = DOCKER / "entrypoint.sh"
    assert entrypoint.stat().st_mode & 0o111, "the images run it: it must be executable"
    result = subprocess.run(
        ["bash", str(entrypoint), "bash", "-c", 'echo "${ROS_IP-unset} ${ROS_HOSTNAME-unset}"'],
        env={"PATH": "/usr/bin:/bin", "ROS_IP": "", "ROS_HOSTNAME": "robot-pc"},
        capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split()[-2:] == ["unset", "robot-pc"]
