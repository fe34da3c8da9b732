"""Structural checks of the images' Dockerfiles, without Docker: what an operator relies on, read from the parse.

The parse is `dockerfile-parse`'s (line continuations, comments and ARG substitution in FROM as Docker does them);
the rules are ours: a multi-stage build whose final stage runs as a numeric non-root user, checks its health with
`effcap health`, keeps /data as a volume, serves TLS from mounted secrets, and copies nothing secret.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

from dockerfile_parse import DockerfileParser

SECRETS_DIR = "/run/secrets/effcap-tls/"
# A name that says it holds a secret, in ENV or ARG: build arguments and environment stay in the image's history.
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE|API_?KEY|CREDENTIAL)", re.IGNORECASE)
# What COPY/ADD may never bring in: the whole context, keys, certificates, the compose secrets folder.
SECRET_SOURCE = re.compile(r"(^\.$|^\./?$|\.(key|pem|crt|p12|pfx)$|secrets)")


@dataclass(frozen=True)
class Instruction:
    name: str
    value: str


def final_stage(text: str) -> list[Instruction]:
    """The instructions after the last FROM: what the image that runs is made of."""
    stages = _stages(text)
    return stages[-1] if stages else []


def image_problems(text: str) -> list[str]:
    """Every rule the Dockerfile breaks, in words; empty when it keeps them all."""
    stages = _stages(text)
    problems = []
    if len(stages) < 2:
        problems.append("not a multi-stage build: build tools and caches would ship in the image")
    final = stages[-1] if stages else []
    if not any(i.name == "COPY" and "--from=" in i.value for i in final):
        problems.append("the final stage copies nothing from a build stage")
    problems += _user_problems(final)
    problems += _healthcheck_problems(final)
    if not any(i.name == "VOLUME" and "/data" in _words(i.value) for i in final):
        problems.append("no VOLUME /data: the store would live in the container's writable layer")
    problems += _command_problems(final)
    for stage in stages:
        problems += _secret_problems(stage)
    return problems


def _stages(text: str) -> list[list[Instruction]]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    stages: list[list[Instruction]] = []
    for entry in parser.structure:
        instruction = Instruction(entry["instruction"], entry["value"])
        if instruction.name == "FROM":
            stages.append([])
        elif instruction.name != "COMMENT" and stages:
            stages[-1].append(instruction)
    return stages


def _user_problems(final: list[Instruction]) -> list[str]:
    users = [i.value.split(":")[0].strip() for i in final if i.name == "USER"]
    if not users:
        return ["the final stage sets no USER: the server would run as root"]
    if not users[-1].isdigit():
        return [f"USER {users[-1]} is a name: Kubernetes' runAsNonRoot can verify only a numeric user"]
    if int(users[-1]) == 0:
        return ["USER 0 is root"]
    return []


def _healthcheck_problems(final: list[Instruction]) -> list[str]:
    checks = [i.value for i in final if i.name == "HEALTHCHECK"]
    if not checks:
        return ["no HEALTHCHECK"]
    check = checks[-1]
    problems = []
    if "effcap health" not in check:
        problems.append("the HEALTHCHECK does not ask the server's gRPC health service (effcap health)")
    if f"--tls-ca {SECRETS_DIR}ca.crt" not in check:
        problems.append(f"the HEALTHCHECK does not verify the server with {SECRETS_DIR}ca.crt")
    if "|| exit 1" not in check:
        problems.append("the HEALTHCHECK can exit 2, which Docker reserves: map failures to exit 1")
    return problems


def _command_problems(final: list[Instruction]) -> list[str]:
    commands = [i.value for i in final if i.name == "CMD"]
    if not commands:
        return ["no CMD"]
    try:
        command = json.loads(commands[-1])
    except json.JSONDecodeError:
        return ["CMD is not in exec form: the server would not receive SIGTERM"]
    problems = []
    if command[:2] != ["effcap", "serve"]:
        problems.append("CMD does not run effcap serve")
    for option, file in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")):
        if not _has_option(command, option, SECRETS_DIR + file):
            problems.append(f"CMD does not serve TLS by default ({option} {SECRETS_DIR}{file})")
    if "--insecure" in command:
        problems.append("CMD serves --insecure")
    return problems


def _secret_problems(stage: list[Instruction]) -> list[str]:
    problems = []
    for instruction in stage:
        if instruction.name in ("COPY", "ADD"):
            sources = [word for word in _words(instruction.value)[:-1] if not word.startswith("--")]
            problems += [
                f"{instruction.name} {source}: may bring secrets into a layer"
                for source in sources
                if SECRET_SOURCE.search(source)
            ]
            if instruction.name == "ADD" and any("://" in source for source in sources):
                problems.append("ADD of a URL: unverified bytes in a layer")
        elif instruction.name in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", " " + instruction.value)
            names = names or [instruction.value.split()[0]]
            problems += [
                f"{instruction.name} {name}: a secret's name, kept in the image's history"
                for name in names
                if SECRET_NAME.search(name)
            ]
    return problems


def _has_option(command: list[str], option: str, value: str) -> bool:
    return any(word == option and following == value for word, following in zip(command, command[1:]))


def _words(value: str) -> list[str]:
    if value.lstrip().startswith("["):
        return json.loads(value)
    return value.split()
