"""A throwaway PostgreSQL server on loopback for the history tests: initdb into a scratch folder, pg_ctl
start on a free port, a scratch database, pg_ctl stop. As root the server runs as the `postgres` user
(PostgreSQL refuses to run as root). Used by tests/nightly/test_history_regression.py when
ORIN_TRT_TEST_POSTGRES_URL is not set, and by .ci/run:

    python tests/pg_server.py start DIR     # prints the SQLAlchemy URL
    python tests/pg_server.py stop DIR
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DATABASE = "orin_trt_test"


def pg_bin() -> Path | None:
    """The server binaries: initdb on PATH, else Debian's newest /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path) -> str:
    binaries = pg_bin()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb); apt-get install postgresql")
    folder = Path(folder)
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    _run([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
          "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off", "start"])
    _run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE])
    (folder / "port").write_text(str(port))
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"


def stop(folder: Path) -> None:
    binaries = pg_bin()
    data = Path(folder) / "data"
    if binaries is not None and (data / "postmaster.pid").exists():
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(where))
    elif action == "stop":
        stop(where)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} start|stop DIR")
