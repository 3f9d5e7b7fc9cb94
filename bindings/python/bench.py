#!/usr/bin/env python3
"""Cold login and 401 recovery: this package vs the official `symphony-bdk-python` 3.0.0, in one run, against the
same `fake-pod` and the same 4096-bit RSA key.

- cold login: a new client, then the first login (session and key-manager tokens), timed from the call;
- 401 recovery: logged in, the fake expires every token (`expire` on its stdin), then one session-info call is
  timed: the 401, the re-login and the replay. The logins the fake counted during the recovery are shown too.

Setup (from the repository root; the virtual environment under the ignored target directory):

    cargo build --release -p symphony-auth-testkit --bin fake-pod
    python3 -m venv target/python-bench-venv
    target/python-bench-venv/bin/pip install ./bindings/python symphony-bdk-python==3.0.0 httpx==0.28.1
    target/python-bench-venv/bin/python bindings/python/bench.py [--rounds 5] [--fake-pod PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[2]
KEY = REPO / "fixtures" / "keys" / "bot-4096.pkcs8.pem"
PUBLIC_KEY = REPO / "fixtures" / "keys" / "bot-4096.pub.pem"
BOT = "bench.bot"
TIMEOUT_S = 60


class FakePod:
    """`fake-pod` as a process: its URLs and its stdin commands; stopped by closing its stdin."""

    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary), "--rsa-bot", f"{BOT}={PUBLIC_KEY}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()
        self.urls = json.loads(self.lines.get(timeout=TIMEOUT_S))

    def command(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.lines.get(timeout=TIMEOUT_S))

    def logins(self) -> int:
        return self.command("counters")["requests"]["/login/pubkey/authenticate"]

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(TIMEOUT_S)


class Results:
    def __init__(self) -> None:
        self.rows: Dict[str, List[float]] = {}
        self.logins: Dict[str, List[int]] = {}

    def add(self, name: str, seconds: float, logins: int = -1) -> None:
        self.rows.setdefault(name, []).append(seconds * 1000)
        if logins >= 0:
            self.logins.setdefault(name, []).append(logins)

    def print(self) -> None:
        print(f"{'':44} {'median ms':>10} {'min ms':>9} {'max ms':>9}  logins per recovery")
        for name, values in self.rows.items():
            logins = self.logins.get(name)
            shown = ", ".join(str(n) for n in sorted(set(logins))) if logins else ""
            print(
                f"{name:44} {statistics.median(values):10.1f} {min(values):9.1f} {max(values):9.1f}  {shown}"
            )


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_binding(pod: FakePod, rounds: int, results: Results) -> None:
    import symphony_auth as sa

    urls = pod.urls
    info = urls["pod"] + "/pod/v2/sessioninfo"

    def bot() -> "sa.Bot":
        return sa.Bot.from_values(
            urls["pod"], BOT, private_key_path=str(KEY), key_manager_url=urls["key_manager"], agent_url=urls["agent"]
        )

    for _ in range(rounds):
        fresh = bot()
        results.add("symphony_auth.Bot: cold login", timed(fresh.tokens))
    logged_in = bot()
    logged_in.tokens()
    for _ in range(rounds):
        pod.command("expire")
        before = pod.logins()
        seconds = timed(lambda: logged_in.send("GET", info))
        results.add("symphony_auth.Bot: 401 recovery", seconds, pod.logins() - before)

    try:
        import httpx
    except ImportError:
        return
    config = sa.Config(urls["pod"], BOT, private_key_path=str(KEY), key_manager_url=urls["key_manager"])
    for _ in range(rounds):
        with httpx.Client(auth=sa.HttpxAuth(config), timeout=TIMEOUT_S) as client:
            results.add("symphony_auth.HttpxAuth: cold login + call", timed(lambda: client.get(info)))
    with httpx.Client(auth=sa.HttpxAuth(config), timeout=TIMEOUT_S) as client:
        client.get(info)
        for _ in range(rounds):
            pod.command("expire")
            before = pod.logins()
            seconds = timed(lambda: client.get(info))
            results.add("symphony_auth.HttpxAuth: 401 recovery", seconds, pod.logins() - before)


def bench_bdk(pod: FakePod, rounds: int, results: Results) -> None:
    from symphony.bdk.core.config.loader import BdkConfigLoader
    from symphony.bdk.core.symphony_bdk import SymphonyBdk

    def host_port(url: str) -> dict:
        scheme, rest = url.split("://")
        host, port = rest.rsplit(":", 1)
        return {"scheme": scheme, "host": host, "port": int(port)}

    with tempfile.TemporaryDirectory(prefix="bench-bdk-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(
            json.dumps(
                {
                    **host_port(pod.urls["pod"]),
                    "keyManager": host_port(pod.urls["key_manager"]),
                    "agent": host_port(pod.urls["agent"]),
                    "bot": {"username": BOT, "privateKey": {"path": str(KEY)}},
                }
            )
        )
        config = BdkConfigLoader.load_from_file(str(path))

    async def run() -> None:
        for _ in range(rounds):
            async with SymphonyBdk(config) as bdk:
                start = time.perf_counter()
                await asyncio.wait_for(bdk.bot_session().refresh(), TIMEOUT_S)
                results.add("symphony-bdk-python: cold login", time.perf_counter() - start)
        async with SymphonyBdk(config) as bdk:
            await bdk.bot_session().refresh()
            for _ in range(rounds):
                pod.command("expire")
                before = pod.logins()
                start = time.perf_counter()
                await asyncio.wait_for(bdk.sessions().get_session(), TIMEOUT_S)
                results.add("symphony-bdk-python: 401 recovery", time.perf_counter() - start, pod.logins() - before)

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = REPO / "target" / "release" / "fake-pod"
    parser.add_argument("--fake-pod", type=Path, default=default, help=f"default {default}")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.fake_pod.is_file():
        print(f"{args.fake_pod} is missing: cargo build --release -p symphony-auth-testkit --bin fake-pod",
              file=sys.stderr)
        return 2
    print(
        f"Python {sys.version.split()[0]}, symphony-auth {version('symphony-auth')}, "
        f"symphony-bdk-python {version('symphony-bdk-python')}; 4096-bit key, {args.rounds} rounds each"
    )
    results = Results()
    pod = FakePod(args.fake_pod)
    try:
        bench_binding(pod, args.rounds, results)
        bench_bdk(pod, args.rounds, results)
    finally:
        pod.stop()
    results.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
