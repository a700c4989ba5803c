"""The container definition (``Containerfile``): the directives an operator relies on. The
suite does not need docker; the health check's command is run for real by the wheel test."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINERFILE = REPO / "Containerfile"
WORKDIR = "/var/lib/juki-gateway"


def instructions(path: Path = CONTAINERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out = []
    for line in logical:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def healthcheck_command(path: Path = CONTAINERFILE) -> list[str]:
    """The HEALTHCHECK's CMD as an argv list (exec form)."""
    (args,) = [a for i, a in instructions(path) if i == "HEALTHCHECK"]
    return list(json.loads(args.split("CMD", 1)[1]))


def test_containerfile_directives() -> None:
    """Two stages on a slim Python base, the wheel installed, a non-root user, the working
    directory as a volume and the workdir, the endpoint and metrics ports exposed, a health
    check on /health, SIGTERM to stop, and `juki-gateway serve` as the entrypoint."""
    ins = instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) == 2 and all(re.match(r"python:3\.1[1-9]-slim", f) for f in froms)
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert "pip wheel" in runs and "juki_gateway-*.whl" in runs and "--no-deps" in runs
    (user,) = [a for i, a in ins if i == "USER"]
    assert user not in ("root", "0") and "useradd --system --uid 10001" in runs
    assert [a for i, a in ins if i == "VOLUME"] == [json.dumps([WORKDIR])]
    assert [a for i, a in ins if i == "WORKDIR"][-1] == WORKDIR
    exposed = {int(p) for i, a in ins if i == "EXPOSE" for p in a.split()}
    assert exposed == {7101, 7102, 7103, 7104, 7120}
    health = healthcheck_command()
    assert health[0] == "python" and "/health" in health[-1] and "['metrics']" in health[-1]
    assert ("STOPSIGNAL", "SIGTERM") in ins
    (entry,) = [json.loads(a) for i, a in ins if i == "ENTRYPOINT"]
    assert entry == ["juki-gateway", "serve"]
    (cmd,) = [json.loads(a) for i, a in ins if i == "CMD"]
    assert cmd == ["--config", f"{WORKDIR}/gateway.toml"]
    env = " ".join(a for i, a in ins if i == "ENV")
    assert f"JUKI_GATEWAY_CONFIG={WORKDIR}/gateway.toml" in shlex.split(env)


def test_dockerignore_sends_only_the_sources() -> None:
    """The build context is the package sources, pyproject.toml and README.md (no .venv, no
    .git, no working directory with keys)."""
    lines = [ln for ln in (REPO / ".dockerignore").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!juki_gateway"} <= set(lines)
    copied = [a for i, a in instructions() if i == "COPY" and "--from" not in a]
    assert copied == ["pyproject.toml README.md ./", "juki_gateway ./juki_gateway"]
