"""A local Spark Connect server for the Spark tests, from the full ``pyspark`` package.

The full package (a JVM, 280 jars) lives in ``.cache/spark-server``, outside ``.venv``: it ships
the same ``pyspark`` package as the light client the app uses, and one would overwrite the other.
``scripts/test`` installs it when ``java`` is on PATH.

Two ways to get a server, both giving one JVM however many xdist workers run:

- ``scripts/test`` starts one before pytest (``python -m tests.spark_server exec``, which becomes
  the JVM), exports ``TEST_SPARK_URL=sc://127.0.0.1:PORT`` and kills it on exit. The tests
  only wait for its port, so the JVM starts while pytest collects and runs other tests.
- Without ``TEST_SPARK_URL`` (pytest run by hand), the first test process that needs Spark
  starts a server under ``.cache/spark-run-pytest`` and records it in a state file; every
  process using it holds a lease (a file named after its pid), all under a file lock. The last
  process to leave stops it; a server left behind by a killed run is adopted by the next one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER_PACKAGE = REPO / ".cache" / "spark-server"
SPARK_HOME = SERVER_PACKAGE / "pyspark"
SHARED_RUN = REPO / ".cache" / "spark-run-pytest"
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # 5-15 s when idle; much more while two xdist workers keep both cores busy
MAIN_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def missing() -> str | None:
    """Why no server can be started here, or None."""
    if shutil.which("java") is None:
        return "Spark tests need java on PATH (Spark 4 runs on Java 17+)"
    if not (SPARK_HOME / "bin" / "spark-submit").exists():
        return (
            f"the Spark server package is not in {SERVER_PACKAGE}: run scripts/test, or "
            f"pip install --target {SERVER_PACKAGE} --no-deps pyspark==4.3.0"
        )
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def command(port: int, run_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The ``spark-submit`` command line and environment of a server on ``port``.

    ``spark-submit`` and ``spark-class`` both ``exec``, so the process started is the JVM
    itself and a SIGTERM to it stops the server (in about a second)."""
    work = run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    confs = {
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(run_dir / "warehouse"),
        "spark.local.dir": str(work),
        "spark.sql.shuffle.partitions": "4",  # 2 cores: the default 200 tasks are all overhead
    }
    cmd = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--class",
        MAIN_CLASS,
        "--master",
        "local[2]",
        "--driver-memory",
        "1g",
        "--driver-java-options",
        f"-Djava.io.tmpdir={work}",
    ]
    for key, value in confs.items():
        cmd += ["--conf", f"{key}={value}"]
    env = dict(
        os.environ,
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP=HOST,
        SPARK_LOCAL_DIRS=str(work),
        SPARK_CONF_DIR=str(run_dir / "conf"),  # none: ignore any conf/ a developer has
    )
    for name in ("PYSPARK_PYTHON", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):
        env.pop(name, None)
    return cmd, env


def launch(port: int, run_dir: Path) -> subprocess.Popen[bytes]:
    """Start a server in the background; its output goes to ``run_dir/server.log``."""
    cmd, env = command(port, run_dir)
    with open(run_dir / "server.log", "wb") as log:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is for pytest; we stop it
        )


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"(no server log at {log})"
    return f"last lines of {log}:\n" + "\n".join(text.splitlines()[-lines:])


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    *,
    host: str = HOST,
    timeout: float = START_TIMEOUT_S,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Block until the gRPC port accepts connections; raise with the log's tail if the server
    (``proc``, when we started it) died or did not open it in time."""
    deadline = time.monotonic() + timeout
    while not port_open(port, host):
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log) if log else ""
            raise RuntimeError(
                f"The Spark Connect server exited ({proc.returncode}) before opening port "
                f"{port}. {tail}"
            )
        if time.monotonic() > deadline:
            tail = log_tail(log) if log else ""
            raise RuntimeError(
                f"No Spark Connect server on {host}:{port} after {timeout:.0f} s. {tail}"
            )
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a Spark Connect server (and not a process that reused its pid).

    The server may be another process's child, so this cannot wait for it; a child of ours
    that exited is reaped here, or it would linger as a zombie that looks alive."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0
    if waited == pid:
        return False
    proc = Path(f"/proc/{pid}")
    try:
        stat, cmdline = (proc / "stat").read_text(), (proc / "cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return _pid_exists(pid)  # no /proc: trust the pid
    if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
        return False  # dead, waiting for its parent (another test process) to reap it
    # Empty while the launcher scripts exec their way to java: still starting, so alive.
    return not cmdline or MAIN_CLASS.encode() in cmdline


def stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the JVM is still there after ``timeout``."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


# ---------------------------------------------------------------- for the tests


_shared: str | None = None
_missing: str | None = None  # why there is no server: asked once, not once per test
_launched: list[subprocess.Popen[bytes]] = []


def url() -> str:
    """The Spark Connect URL the tests use (this process asks once; later calls are free).

    Skips (or fails under CI) when no server can be had."""
    from tests.live import unavailable

    global _shared, _missing  # noqa: PLW0603
    if _missing is not None:
        unavailable(_missing)
    if _shared is None:
        try:
            _shared = _given_server() if os.environ.get("TEST_SPARK_URL") else _shared_server()
        except _NoServer as exc:
            _missing = str(exc)
            unavailable(_missing)
    return _shared


class _NoServer(Exception):
    pass


def _given_server() -> str:
    given = os.environ["TEST_SPARK_URL"]
    host_port = given.removeprefix("sc://").split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    log = os.environ.get("TEST_SPARK_LOG")  # set by scripts/test, which just started it
    try:
        wait_for_port(
            int(port or 15002),
            host=host or HOST,
            timeout=START_TIMEOUT_S if log else 10,
            log=Path(log) if log else None,
        )
    except RuntimeError as exc:
        raise _NoServer(f"TEST_SPARK_URL={given}: {exc}") from exc
    return given


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _shared_server() -> str:
    reason = missing()
    if reason:
        raise _NoServer(reason)
    state_file, leases = SHARED_RUN / "server.json", SHARED_RUN / "leases"
    with _locked(REPO / ".cache" / "spark-run-pytest.lock"):
        state = _read_state(state_file)
        if state is not None and _alive(state["pid"]):
            try:
                wait_for_port(state["port"], timeout=15)  # busy is not dead
            except RuntimeError:
                stop(state["pid"])
                state = None
        else:
            state = None
        if state is None:
            shutil.rmtree(SHARED_RUN, ignore_errors=True)
            SHARED_RUN.mkdir(parents=True)
            port = free_port()
            proc = launch(port, SHARED_RUN)
            _launched.append(proc)  # a Popen collected while its child runs warns
            try:
                wait_for_port(port, proc=proc, log=SHARED_RUN / "server.log")
            except RuntimeError as exc:
                stop(proc.pid)
                raise _NoServer(str(exc)) from exc
            state = {"pid": proc.pid, "port": port}
            state_file.write_text(json.dumps(state))
        leases.mkdir(exist_ok=True)
        (leases / str(os.getpid())).touch()
    atexit.register(_release)
    return f"sc://{HOST}:{state['port']}"


def _read_state(path: Path) -> dict[str, int] | None:
    try:
        data = json.loads(path.read_text())
        return {"pid": int(data["pid"]), "port": int(data["port"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _release() -> None:
    """Give up this process's lease; the last one out stops the server."""
    leases = SHARED_RUN / "leases"
    with _locked(REPO / ".cache" / "spark-run-pytest.lock"):
        (leases / str(os.getpid())).unlink(missing_ok=True)
        for lease in leases.glob("*"):
            if not _pid_exists(int(lease.name)):
                lease.unlink(missing_ok=True)  # a test run that was killed
        if any(leases.glob("*")):
            return
        state = _read_state(SHARED_RUN / "server.json")
        if state is not None:
            stop(state["pid"])
        for proc in _launched:
            proc.poll()  # reaped by stop(): let the Popen know
        shutil.rmtree(SHARED_RUN, ignore_errors=True)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- for scripts/test


def main(argv: list[str]) -> None:
    """``port``: print a free port. ``exec PORT RUN_DIR``: become the server (the caller's
    background pid is then the JVM's, for ``kill``)."""
    if argv[:1] == ["port"]:
        print(free_port())
        return
    if argv[:1] == ["exec"] and len(argv) == 3:
        run_dir = Path(argv[2]).resolve()
        cmd, env = command(int(argv[1]), run_dir)
        os.chdir(run_dir)
        os.execve(cmd[0], cmd, env)
    sys.exit("usage: python -m tests.spark_server port | exec PORT RUN_DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
