"""A login storm with the logging bridge on, run by `test_logging.py` in its own process (a deadlock would freeze
this one whole). Bot threads and HttpxAuth threads (the flight's entry points) call through five expiries of the
fake pod, while threads log at DEBUG from Python and ask both for their state, with the GIL switching as often as
it can. Exits 0 and prints a JSON summary when every thread finished, every call succeeded (but for a replay that
an expiry overtook: its 401 with fresh tokens is the answer then, by design) and no record held a secret."""

from __future__ import annotations

import json
import logging
import sys
import threading

import httpx

import symphony_auth as sa
from conftest import FakePod, KEYS, RSA_BOT
from test_logging import CORE, TIMEOUT_S, Records, assert_no_canary, rsa_config, secrets_of

WORKERS = 6
EXPIRIES = 5


def main() -> None:
    pod = FakePod("--rsa-bot", f"{RSA_BOT}={KEYS / 'bot-2048.pub.pem'}")
    try:
        summary = storm(pod)
    finally:
        pod.stop()
    print(json.dumps(summary))


def storm(pod: FakePod) -> dict:
    logger = logging.getLogger("symphony_auth")
    logs = Records()
    logger.addHandler(logs)
    logger.setLevel(logging.DEBUG)
    assert sa.install_logging() is True
    bot = sa.Bot(rsa_config(pod))
    auth = sa.HttpxAuth(rsa_config(pod))
    url = pod.urls["pod"] + "/pod/v2/sessioninfo"
    stop = threading.Event()
    progress = threading.Condition()
    counts = {"calls": 0, "overtaken": 0}
    failures: list[BaseException] = []
    chatty = logging.getLogger("symphony_auth.test")

    def worker(call) -> None:
        try:
            while not stop.is_set():
                try:
                    status = call()
                except sa.UnauthorizedError:
                    status = 401
                assert status in (200, 401), status
                with progress:
                    counts["calls"] += 1
                    counts["overtaken"] += status == 401
                    progress.notify_all()
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
            with progress:
                progress.notify_all()

    def with_httpx() -> None:
        with httpx.Client(auth=auth, timeout=TIMEOUT_S) as client:
            worker(lambda: client.get(url).status_code)

    def chatter() -> None:
        i = 0
        while not stop.is_set():
            chatty.debug("python thread logging %d", i)
            bot.state()
            auth._flight.state()
            i += 1

    threads = [threading.Thread(target=worker, args=(lambda: bot.send("GET", url).status,)) for _ in range(WORKERS)]
    threads += [threading.Thread(target=with_httpx) for _ in range(WORKERS)]
    threads += [threading.Thread(target=chatter) for _ in range(3)]
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for _ in range(EXPIRIES):
            pod.expire()
            with progress:
                target = counts["calls"] + 4 * WORKERS
                progressed = progress.wait_for(lambda: counts["calls"] >= target or failures, TIMEOUT_S)
                assert progressed, f"no progress in {TIMEOUT_S} s: {counts}"
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT_S)
            assert not thread.is_alive(), "a thread is stuck"
    assert failures == [], failures
    assert counts["overtaken"] < counts["calls"] / 2, counts
    relogins = len([r for r in logs.named(CORE) if "HTTP 401" in r.getMessage()])
    assert relogins >= EXPIRIES, relogins
    assert logs.named("symphony_auth.test"), "the Python threads logged"
    assert_no_canary(logs.records, secrets_of(bot.tokens()))
    return {**counts, "refused_401": relogins, "records": len(logs.records)}


if __name__ == "__main__":
    main()
