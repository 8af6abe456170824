"""Real `assay serve` processes on loopback for API tests, and the keys to call them with.

The served model is the tpch demo model plus a `slow` view (a derived table counting to 10^13:
it runs until cancelled), so tests can hold jobs open on purpose.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from assay.demo.tpch import tpch_model_dir

REPO = Path(__file__).resolve().parents[2]
ASSAY = str(Path(sys.executable).with_name("assay"))
MODEL_ID = "abd3361c-705d-5dd2-b031-d77674fb926b"
SLOW_VIEW = """
sql: SELECT i FROM range(10000000000000) t(i)
description: Counts to 10^13; a query on it runs until it is cancelled.
dimensions:
  i: {primary_key: true}
measures:
  count: {aggregate_type: count}
"""
SLOW_TOPIC = "base_view: slow\n"
SLOW_QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "slow", "fields": ["slow.count"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One `assay serve` process; restartable on the same home (its job store survives)."""

    home: Path
    database: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(ASSAY_HOME=str(self.home), ASSAY_DUCKDB_PATH=str(self.database),
                   ASSAY_MODELS_DIR=str(self.home / "models" / "tpch"),
                   ASSAY_RATE_LIMIT_PER_MINUTE="0")  # fmt: skip
        env.update(self.env)
        return env

    def start(self) -> Server:
        with open(self.home / f"serve-{self.port}.log", "ab") as log:  # the child keeps its copy
            self.proc = subprocess.Popen(
                [ASSAY, "serve", "--port", str(self.port)], env=self._env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"assay serve exited: {(self.home / f'serve-{self.port}.log').read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("assay serve did not come up within 30 s")

    def key(self, *args: str) -> str:
        """A new token from `assay keys create` (the last line of its output)."""
        out = subprocess.run(
            [ASSAY, "keys", "create", *(args or ("--org",))],
            check=False, env=self._env(), capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:  # say why: a bare CalledProcessError hides the command's words
            raise RuntimeError(f"assay keys create {' '.join(args)} exited {out.returncode}: "
                               f"{out.stderr.strip() or out.stdout.strip()}")  # fmt: skip
        return out.stdout.strip().splitlines()[-1]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def make_home(root: Path) -> Path:
    home = root / "home"
    models = home / "models" / "tpch"
    shutil.copytree(tpch_model_dir(), models)
    (models / "slow.view.yaml").write_text(SLOW_VIEW)
    (models / "slow.topic.yaml").write_text(SLOW_TOPIC)
    return home


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """A server with the defaults that matter for contract tests (no rate limit)."""
    env = {
        "ASSAY_RUN_WAIT_SECONDS": "5",
        "ASSAY_WAIT_SECONDS": "2",
        "ASSAY_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }  # the tests' receivers listen there
    srv = Server(make_home(tmp_path_factory.mktemp("server")), tpch_path, env=env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def org_key(server: Server) -> str:
    return server.key("--org")


@pytest.fixture
def api(server: Server, org_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {org_key}"},
                      timeout=60) as client:  # fmt: skip
        yield client
