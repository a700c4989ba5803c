"""A throwaway PostgreSQL cluster for tests and benchmarks on a developer machine.

``make test`` and ``make bench-store`` must cover PostgreSQL without any set-up by hand: when no
``JUKI_TEST_PG_URL`` is given they call :func:`start_temp_cluster`, which runs ``initdb`` into a
fresh temporary directory and starts a private server on a free loopback port (as the
``postgres`` user when run as root, since PostgreSQL refuses to run as root). Nothing is shared
with the machine's own clusters or with other people's test runs; :meth:`TempCluster.stop`
stops the server and deletes the directory. Blocking; never used by the daemon.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from juki_gateway.errors import JukiError


class PgClusterUnavailable(JukiError):
    """No PostgreSQL server binaries, or the temporary cluster did not start."""

    code = "pg_cluster_unavailable"


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        cand = Path(out.stdout.strip())
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    for cand_s in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand_s) / "pg_ctl").exists():
            return Path(cand_s)
    raise PgClusterUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TempCluster:
    """A running private PostgreSQL server; ``url`` points at its ``postgres`` database."""

    directory: Path
    port: int
    bindir: Path
    run_as: str | None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's ``postgres`` database (trust auth, loopback)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.directory / "data"), "-m",
                      "fast", "-w", "stop"),
            capture_output=True, check=False, timeout=60,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_temp_cluster(*, fsync: bool = True) -> TempCluster:
    """Create and start a private cluster; ``fsync=False`` only where durability is not measured."""
    bindir = _bindir()
    run_as: str | None = None
    directory = Path(tempfile.mkdtemp(prefix="juki-pg-"))
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            raise PgClusterUnavailable("running as root and there is no 'postgres' user") from None
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    cluster = TempCluster(directory, 0, bindir, run_as)
    data = directory / "data"
    init = subprocess.run(
        cluster._cmd(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                     "-E", "UTF8", "--locale=C", "--no-sync"),
        capture_output=True, text=True, check=False, timeout=120,
    )
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise PgClusterUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    last_error = ""
    for _attempt in range(5):
        port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories="
                f"{directory} -c fsync={'on' if fsync else 'off'} -c max_connections=60 "
                f"-c shared_buffers=128MB")
        started = subprocess.run(
            cluster._cmd(str(bindir / "pg_ctl"), "-D", str(data), "-l",
                         str(directory / "server.log"), "-w", "-t", "60", "-o", opts, "start"),
            capture_output=True, text=True, check=False, timeout=90,
        )
        if started.returncode == 0:
            cluster.port = port
            return cluster
        last_error = started.stderr.strip() or started.stdout.strip()
    with contextlib.suppress(OSError):
        last_error += (directory / "server.log").read_text()[-500:]
    shutil.rmtree(directory, ignore_errors=True)
    raise PgClusterUnavailable(f"temporary PostgreSQL did not start: {last_error[-800:]}")
