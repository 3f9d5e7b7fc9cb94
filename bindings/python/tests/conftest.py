"""Shared fixtures: the repository's files and the `fake-pod` binary as a subprocess."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KEYS = REPO / "fixtures" / "keys"
READY_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 20


def fake_pod_binary() -> Path:
    """The binary run.sh builds (FAKE_POD overrides it)."""
    explicit = os.environ.get("FAKE_POD")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "fake-pod"


class FakePod:
    """`fake-pod` as a process: its URLs, its stdin commands (`expire`, `counters`), stopped by closing stdin."""

    def __init__(self, *args: str) -> None:
        binary = fake_pod_binary()
        if not binary.exists():
            pytest.fail(f"{binary} is missing: build it with `cargo build -p symphony-auth-testkit --bin fake-pod`")
        self.proc = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.urls = json.loads(self._next(READY_TIMEOUT_S, "its ready line"))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _next(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.strip():
            self.stop()
            pytest.fail(f"fake-pod printed no {what}; stderr: {self.proc.stderr.read().strip()!r}")
        return line

    def command(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._next(COMMAND_TIMEOUT_S, f"answer to {command!r}"))

    def logins(self) -> int:
        """Session logins received (RSA and certificate)."""
        requests = self.command("counters")["requests"]
        return requests["/login/pubkey/authenticate"] + requests["/sessionauth/v1/authenticate"]

    def expire(self) -> None:
        assert self.command("expire") == {"expired": True}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


RSA_BOT = "rsa.bot"
CERT_BOT = "cert.bot"


@pytest.fixture(scope="module")
def rsa_pod():
    pod = FakePod("--rsa-bot", f"{RSA_BOT}={KEYS / 'bot-2048.pub.pem'}")
    yield pod
    pod.stop()


@pytest.fixture(scope="module")
def cert_pod(tmp_path_factory):
    tls = tmp_path_factory.mktemp("tls")
    pod = FakePod("--cert-bot", CERT_BOT, "--tls-dir", str(tls), "--https", "--ecdsa")
    pod.tls_dir = tls
    yield pod
    pod.stop()


@pytest.fixture(scope="module")
def slow_pod():
    """A fake whose every answer takes 300 ms: a login is under way long enough to act during it."""
    pod = FakePod("--rsa-bot", f"{RSA_BOT}={KEYS / 'bot-2048.pub.pem'}", "--latency-ms", "300")
    yield pod
    pod.stop()
