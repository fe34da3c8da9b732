"""The images' Dockerfiles, linted structurally (Docker is not needed): dockerfile_lint.py has the rules."""

from __future__ import annotations

import re

import pytest

from tests.deploy.dockerfile_lint import final_stage, image_problems
from tests.deploy.schemas import DEPLOY, REPOSITORY

IMAGES = sorted((DEPLOY / "images").glob("*.Dockerfile"))
CPU, CUDA = DEPLOY / "images" / "cpu.Dockerfile", DEPLOY / "images" / "cuda.Dockerfile"


def test_both_images_are_there() -> None:
    assert IMAGES == [CPU, CUDA]


@pytest.mark.parametrize("dockerfile", IMAGES, ids=lambda path: path.name)
def test_the_image_keeps_every_rule(dockerfile) -> None:
    assert image_problems(dockerfile.read_text()) == []


@pytest.mark.parametrize("dockerfile", IMAGES, ids=lambda path: path.name)
def test_the_image_copies_every_package_folder_and_nothing_else(dockerfile) -> None:
    """setup.py's folders are the package: one left out would be missing from the image, one more is noise."""
    from_setup = set(re.findall(r'"(\w+)": "effcap\.\w+"', (REPOSITORY / "setup.py").read_text()))
    copied = {line.split()[1] for line in dockerfile.read_text().splitlines() if re.match(r"COPY (\w+) \1$", line)}
    assert copied == from_setup and all((REPOSITORY / folder).is_dir() for folder in copied)


def test_the_cuda_image_installs_a_cuda_torch_and_ray() -> None:
    text = CUDA.read_text()
    assert re.search(r"TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+", text)
    assert '".[server,ray]"' in text and "assert torch.version.cuda" in text


def test_the_cpu_image_installs_the_cpu_torch() -> None:
    text = CPU.read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu torch" in text and "torch.version.cuda is None" in text


def test_the_build_context_leaves_secrets_out() -> None:
    ignored = (REPOSITORY / ".dockerignore").read_text().split()
    assert {"deploy/secrets", "deploy/.env", "**/*.key", "**/*.pem", ".venv", ".git"} <= set(ignored)


BROKEN = {
    "a single stage": (lambda text: text.split("FROM ${PYTHON_IMAGE} AS runtime")[0], "not a multi-stage build"),
    "root": (lambda text: text.replace("USER 10001:10001", "USER 0"), "USER 0 is root"),
    "no user": (lambda text: text.replace("USER 10001:10001\n", ""), "sets no USER"),
    "a named user": (lambda text: text.replace("USER 10001:10001", "USER effcap"), "is a name"),
    "no health check": (lambda text: re.sub(r"HEALTHCHECK .*?\|\| exit 1\n", "", text, flags=re.S), "no HEALTHCHECK"),
    "exit code 2 kept": (lambda text: text.replace(" || exit 1", ""), "Docker reserves"),
    "plaintext health": (lambda text: text.replace("--tls-ca /run/secrets/effcap-tls/ca.crt", ""), "does not verify"),
    "no volume": (lambda text: text.replace('VOLUME ["/data"]\n', ""), "no VOLUME /data"),
    "plaintext server": (lambda text: text.replace('"--tls-cert", ', ""), "does not serve TLS"),
    "insecure": (
        lambda text: text.replace('"--data-dir", "/data"', '"--data-dir", "/data", "--insecure"'),
        "--insecure",
    ),
    "shell-form CMD": (lambda text: re.sub(r"CMD \[.*?\]\n", "CMD effcap serve\n", text, flags=re.S), "exec form"),
    "the whole context": (lambda text: text.replace("COPY notebook notebook", "COPY . ."), "COPY .: may bring secrets"),
    "a key copied": (
        lambda text: text.replace("COPY notebook notebook", "COPY deploy/secrets/tls.key /k"),
        "may bring secrets",
    ),
    "a token in ENV": (lambda text: text.replace("PYTHONUNBUFFERED=1", "EFFCAP_TOKEN=abc"), "ENV EFFCAP_TOKEN"),
    "a password ARG": (lambda text: text.replace("ARG EXTRAS=server", "ARG DB_PASSWORD"), "ARG DB_PASSWORD"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_a_broken_dockerfile_is_caught(breakage: str) -> None:
    """The lint names each breakage of the real CPU Dockerfile (a lint that passes anything is no lint)."""
    break_it, expected = BROKEN[breakage]
    broken = break_it(CPU.read_text())
    assert broken != CPU.read_text(), "the breakage did not apply"
    problems = image_problems(broken)
    assert any(expected in problem for problem in problems), problems


def test_the_final_stage_has_no_build_tools_from_pip() -> None:
    """The runtime stage copies the built environment; pip installs run only in the build stage."""
    for dockerfile in IMAGES:
        final = final_stage(dockerfile.read_text())
        assert not any(i.name == "RUN" and "pip install" in i.value for i in final)
