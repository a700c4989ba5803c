"""The built wheel is a complete package: installed into a fresh virtualenv outside the
repository, ``init``, ``serve``, ``simulate quickstart`` and ``ops export`` work from a
directory outside it, with ``juki_gateway`` imported from the installed wheel."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_support import free_port_base
from tests.test_container import WORKDIR, healthcheck_command

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parent.parent


def _offline_build() -> bool:
    """True when this environment can build the wheel without fetching the build back end
    (``make install`` puts setuptools>=68 and wheel into the dev venv, from the dev extra)."""
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    return major >= 68 and importlib.util.find_spec("wheel") is not None


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh virtualenv with the wheel built from this checkout, and the environment to run
    it in (no PYTHONPATH). juki_gateway comes only from the wheel (installed with --no-deps);
    its third-party dependencies are the dev venv's, reached through a .pth file naming the dev
    venv's site-packages (computed from sys.executable), so the test needs no network and no
    minutes of downloads. Those site-packages hold no importable juki_gateway: the dev venv's
    editable install is a .pth hook there, and .pth files are only read in site directories."""
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    src = root / "src"  # setuptools writes build/ and *.egg-info beside the sources: a copy
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "juki_gateway", src / "juki_gateway",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUKI_GATEWAY_CONFIG")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist")]
    if _offline_build():
        build.append("--no-build-isolation")
    _run([*build, str(src)], cwd=root, env=env, timeout=300)
    wheels = sorted((root / "dist").glob("juki_gateway-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root, env=env,
         timeout=120)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheels[0])], cwd=root, env=env, timeout=300)
    target = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=root, env=env, timeout=60).stdout.strip())
    dev = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (target / "juki-test-dev-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(dev)))
    yield venv, env


def test_wheel_runs_init_serve_and_quickstart_outside_the_repo(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """From a directory outside the repository, the installed wheel's juki-gateway initialises
    a working directory, serves it (a real daemon, healthy within 90 s, as the container's
    health check also says), runs the shipped quickstart scenario with every invariant held,
    and exports the shipped operator files; the package it imports is the installed one."""
    venv, env = installed
    exe = str(venv / "bin" / "juki-gateway")
    cwd = tmp_path / "outside"
    cwd.mkdir()
    assert not cwd.resolve().is_relative_to(REPO)
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import json, importlib.metadata as m, juki_gateway, sys; print(json.dumps("
                  "[juki_gateway.__file__, str(m.distribution('juki-gateway').locate_file('')),"
                  " sys.path]))"], cwd=cwd, env=env, timeout=60)
    module, dist, path = json.loads(where.stdout)
    site = str(venv.resolve())
    assert Path(module).resolve().is_relative_to(site), module
    assert Path(dist).resolve().is_relative_to(site), dist
    # no entry of sys.path reaches the checkout's sources (the dev venv's site-packages, which
    # may lie inside the checkout, only lends the third-party dependencies)
    assert not any(p and (Path(p) / "juki_gateway").exists()
                   and not Path(p).resolve().is_relative_to(site) for p in path), path
    assert not any(p and Path(p).resolve() == REPO.resolve() for p in path), path
    assert not any(p in ("", ".") for p in path[1:]), path

    port_base = free_port_base()
    _run([exe, "init", "wd", "--port-base", str(port_base)], cwd=cwd, env=env, timeout=120)
    config = str(cwd / "wd" / "gateway.toml")
    # the container's HEALTHCHECK command, pointed at this working directory
    probe = [str(venv / "bin" / "python"),
             *(a.replace(f"{WORKDIR}/gateway.toml", config) for a in healthcheck_command()[1:])]
    refused = subprocess.run(probe, cwd=cwd, env=env, capture_output=True, timeout=30,
                             check=False)
    assert refused.returncode != 0  # nothing listens yet
    log = (tmp_path / "serve.out").open("wb")
    daemon = subprocess.Popen([exe, "serve", "--config", config], cwd=cwd, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        health = f"http://127.0.0.1:{port_base + 20}/health"
        deadline = time.monotonic() + 90
        status = None
        while status != 200:
            assert daemon.poll() is None, (tmp_path / "serve.out").read_text()[-3000:]
            assert time.monotonic() < deadline, f"/health still {status}"
            try:
                with urllib.request.urlopen(health, timeout=5) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code  # 500 until every link is up
            except OSError:
                status = None  # not listening yet
            time.sleep(0.3)
        _run(probe, cwd=cwd, env=env, timeout=30)
        sim = _run([exe, "simulate", "quickstart", "--config", config, "--duration", "8",
                    "--no-progress", "--json", str(cwd / "summary.json")],
                   cwd=cwd, env=env, timeout=300)
        assert "RESULT: all invariants held" in sim.stdout, sim.stdout[-3000:]
        summary = json.loads((cwd / "summary.json").read_text())
        assert summary["ok"] is True
        exported = _run([exe, "ops", "export", "ops"], cwd=cwd, env=env, timeout=60)
        names = sorted(p.name for p in (cwd / "ops").iterdir())
        assert names == sorted(p.name for p in (REPO / "juki_gateway" / "ops").iterdir()
                               if p.is_file()), exported.stdout
        assert "juki-gateway.service" in names and "alerts.yml" in names
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=40)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
            raise
        log.close()
    assert code == 0, (tmp_path / "serve.out").read_text()[-3000:]
