"""What the server benchmarks share: a real `assay serve` on a free loopback port in a temp
home with the demo model, an organization key for it, and percentile formatting."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assay.demo.tpch import tpch_model_dir

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
ASSAY = str(Path(sys.executable).with_name("assay"))
MODEL_ID = "abd3361c-705d-5dd2-b031-d77674fb926b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One `assay serve` process in a temp home: the demo model plus ``model_files``
    (file name -> YAML text) written beside it."""

    root: Path
    database: Path
    env: dict[str, str] = field(default_factory=dict)
    model_files: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "serve.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(ASSAY_HOME=str(self.home), ASSAY_DUCKDB_PATH=str(self.database),
                   ASSAY_MODELS_DIR=str(self.home / "models" / "tpch"),
                   ASSAY_RATE_LIMIT_PER_MINUTE="0")  # fmt: skip
        env.update(self.env)
        return env

    def start(self) -> Server:
        models = self.home / "models" / "tpch"
        shutil.copytree(tpch_model_dir(), models)
        for name, text in self.model_files.items():
            (models / name).write_text(text)
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [ASSAY, "serve", "--port", str(self.port)], env=self._env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"assay serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("assay serve did not come up within 60 s")

    def key(self) -> str:
        """A new organization token (`assay keys create --org` prints it on its last line)."""
        out = subprocess.run(
            [ASSAY, "keys", "create", "--org"], env=self._env(), check=True,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1]

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"},
                            timeout=httpx.Timeout(120, connect=10))  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def status(self, name: str) -> int:
        """A /proc/<pid>/status figure in bytes (VmRSS: now; VmHWM: the peak so far)."""
        assert self.proc is not None
        return proc_status(self.proc.pid, name)


def proc_status(pid: int | str, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise KeyError(name)


@contextlib.contextmanager
def serving(
    database: Path,
    env: Mapping[str, str] | None = None,
    model_files: Mapping[str, str] | None = None,
) -> Iterator[tuple[Server, str]]:
    """A started server and an organization key; the server is always stopped."""
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        server = Server(Path(tmp), database, env=dict(env or {}), model_files=model_files or {})
        try:
            server.start()
            yield server, server.key()
        except Exception:
            if server.log.exists():
                print(f"--- server log ---\n{server.log.read_text()[-4000:]}", file=sys.stderr)
            raise
        finally:
            server.stop()


def pct(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``samples`` (q in 0..100)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def ms(samples: Sequence[float], digits: int = 3) -> str:
    """p50 / p95 / min of seconds, in milliseconds."""
    p50, p95, low = pct(samples, 50) * 1e3, pct(samples, 95) * 1e3, min(samples) * 1e3
    return f"p50 {p50:8.{digits}f} ms   p95 {p95:8.{digits}f} ms   min {low:8.{digits}f} ms"


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.split(b"\n") if line.strip()]


def job_lines(body: bytes) -> list[dict[str, Any]]:
    return [line for line in lines(body) if "job_id" in line]
