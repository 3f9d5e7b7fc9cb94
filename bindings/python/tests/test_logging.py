"""`install_logging()`: the native side's spans and events (and ureq's `log` records) reach Python's `logging`
under `symphony_auth.*` against the `fake-pod` binary: a login, a 401 re-login and a failure each leave their
records, the level cap holds records back on the Rust side, ureq-proto's TRACE dump never reaches Python (so a
bot still works at level 1), no record holds a secret, and threads logging during a login storm never deadlock."""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading

import httpx
import pytest

import symphony_auth as sa
from conftest import KEYS, RSA_BOT

TIMEOUT_S = 60
CORE = "symphony_auth.symphony_auth_core.trace"
KEY_PEM = (KEYS / "bot-2048.pkcs8.pem").read_text()
FAIL_FAST = {"max_attempts": 1, "initial_interval_ms": 10, "multiplier": 2.0, "max_interval_ms": 100}
HEX_64 = re.compile(r"[0-9a-fA-F]{64}")


def rsa_config(pod, username: str = RSA_BOT, **kwargs) -> sa.Config:
    return sa.Config(
        pod.urls["pod"],
        username,
        private_key_path=str(KEYS / "bot-2048.pkcs8.pem"),
        key_manager_url=pod.urls["key_manager"],
        agent_url=pod.urls["agent"],
        **kwargs,
    )


class Records(logging.Handler):
    """Every record of the `symphony_auth` loggers, thread-safe."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]

    def messages(self, name: str = CORE) -> list[str]:
        return [r.getMessage() for r in self.named(name)]


@pytest.fixture
def logs():
    """A handler on `symphony_auth` at the lowest level, the bridge installed at it; afterwards, the bridge off."""
    logger = logging.getLogger("symphony_auth")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(1)
    assert sa.install_logging() is True, "built with the tracing feature, nothing else installed a subscriber"
    try:
        yield handler
    finally:
        sa.install_logging(logging.CRITICAL + 1)
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def secrets_of(*tokens: sa.Tokens) -> list[str]:
    """The strings no record may hold: the tokens, their base64, and the key's base64 lines."""
    found = []
    for t in tokens:
        for token in (t.session_token, t.key_manager_token):
            if token:
                found += [token, base64.b64encode(token.encode()).decode().rstrip("=")]
    found += [line for line in KEY_PEM.splitlines() if line and not line.startswith("-----")]
    return found


def assert_no_canary(records: list[logging.LogRecord], secrets: list[str]) -> None:
    assert records, "nothing was logged: nothing to check"
    for record in records:
        texts = [record.getMessage(), str(record.msg), repr(record.args)]
        for text in texts:
            assert "eyJ" not in text, f"a JWT in {record.name}: {text[:200]!r}"
            assert not HEX_64.search(text), f"a 64-hex run in {record.name}: {text[:200]!r}"
            for secret in secrets:
                assert secret not in text, f"a secret in {record.name}: {text[:200]!r}"


def test_a_login_is_traced_with_the_span_fields(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod))
    tokens = bot.tokens()
    started = [m for m in logs.messages() if "login started" in m]
    assert len(started) == 1, logs.messages()
    pod = rsa_pod.urls["pod"].rstrip("/")
    for field in (f'username="{RSA_BOT}"', 'method="rsa"', "attempt=1", 'reason="initial"'):
        assert field in started[0], started[0]
    assert f"{pod}/login/pubkey/authenticate" in started[0], started[0]
    logged_in = [r for r in logs.named(CORE) if "logged in" in r.getMessage()]
    assert len(logged_in) == 1 and logged_in[0].levelno == logging.INFO
    assert "generation=1" in logged_in[0].getMessage() and f'username="{RSA_BOT}"' in logged_in[0].getMessage()
    # ureq's `log` records come through the same bridge, each under its own target.
    assert any(r.name.startswith("symphony_auth.ureq.") for r in logs.records), {r.name for r in logs.records}
    assert_no_canary(logs.records, secrets_of(tokens))


def test_a_401_relogin_is_traced(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod))
    first = bot.tokens()
    rsa_pod.expire()
    response = bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")
    assert response.status == 200
    second = bot.tokens()
    assert second.generation == 2
    refused = [r for r in logs.named(CORE) if "HTTP 401" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert "generation=1" in refused[0].getMessage()
    relogin = [m for m in logs.messages() if "login started" in m and 'reason="relogin"' in m]
    assert len(relogin) == 1, logs.messages()
    assert any("logged in" in m and "generation=2" in m for m in logs.messages()), logs.messages()
    assert_no_canary(logs.records, secrets_of(first, second))


def test_a_rejected_login_is_traced_with_its_class(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod, "nobody"))
    with pytest.raises(sa.CredentialsRejectedError):
        bot.tokens()
    failed = [r for r in logs.named(CORE) if "login failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    assert 'class="rejected"' in failed[0].getMessage() and "status=401" in failed[0].getMessage()
    assert 'username="nobody"' in failed[0].getMessage()
    assert_no_canary(logs.records, secrets_of())


def test_an_unreachable_pod_is_traced_as_unavailable(logs):
    bot = sa.Bot.from_values(
        "http://127.0.0.1:9", "bot", private_key_path=str(KEYS / "bot-2048.pkcs8.pem"), retry=FAIL_FAST
    )
    with pytest.raises(sa.UnavailableError):
        bot.tokens()
    failed = [m for m in logs.messages() if "login failed" in m]
    assert len(failed) == 1 and 'class="unavailable"' in failed[0], logs.messages()


def test_the_cap_keeps_records_below_it_on_the_rust_side(rsa_pod, logs):
    # The Python logger takes everything (level 1); only the cap set at install can hold these back.
    sa.install_logging(logging.WARNING)
    sa.Bot(rsa_config(rsa_pod)).tokens()
    assert logs.records == []
    sa.install_logging(logging.INFO)
    sa.Bot(rsa_config(rsa_pod)).tokens()
    assert any("logged in" in m for m in logs.messages()), logs.messages()
    assert all(r.levelno >= logging.INFO for r in logs.records), [(r.name, r.levelno) for r in logs.records]


def test_a_bot_works_at_level_1_and_the_ureq_proto_dump_never_reaches_python(rsa_pod, caplog):
    # What `logging.basicConfig(level=1)` does to the root logger; the bridge reads the effective level.
    caplog.set_level(1)
    try:
        assert sa.install_logging() is True
        bot = sa.Bot(rsa_config(rsa_pod))
        tokens = bot.tokens()
        assert bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo").status == 200
    finally:
        sa.install_logging(logging.CRITICAL + 1)
    ours = [r for r in caplog.records if r.name.startswith("symphony_auth.")]
    assert any(r.levelno == 5 and r.levelname == "TRACE" for r in ours), "TRACE records are bridged"
    assert not [r for r in ours if r.name.startswith("symphony_auth.ureq_proto") and r.levelno < logging.DEBUG]
    assert_no_canary(ours, secrets_of(tokens))


def test_threads_logging_through_a_login_storm_never_deadlock(rsa_pod, logs):
    """Bot threads, HttpxAuth threads (the flight's entry points), threads asking for state and threads logging
    at DEBUG, with the GIL switching as often as it can, through five expiries: all finish, and every call succeeds
    but for a replay that an expiry overtook (its 401 with fresh tokens is the answer then, by design)."""
    bot = sa.Bot(rsa_config(rsa_pod))
    auth = sa.HttpxAuth(rsa_config(rsa_pod))
    url = rsa_pod.urls["pod"] + "/pod/v2/sessioninfo"
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

    def with_httpx() -> None:
        with httpx.Client(auth=auth, timeout=TIMEOUT_S) as client:
            worker(lambda: client.get(url).status_code)

    def logging_thread() -> None:
        i = 0
        while not stop.is_set():
            chatty.debug("python thread logging %d", i)
            bot.state()
            auth._flight.state()
            i += 1

    threads = [threading.Thread(target=worker, args=(lambda: bot.send("GET", url).status,), daemon=True) for _ in range(6)]
    threads += [threading.Thread(target=with_httpx, daemon=True) for _ in range(6)]
    threads += [threading.Thread(target=logging_thread, daemon=True) for _ in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for _ in range(5):
            rsa_pod.expire()
            with progress:
                target = counts["calls"] + 24
                assert progress.wait_for(lambda: counts["calls"] >= target or failures, TIMEOUT_S), "no progress"
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT_S)
            assert not thread.is_alive(), "a thread is stuck: deadlock"
    finally:
        stop.set()
        sys.setswitchinterval(interval)
    assert failures == []
    assert counts["overtaken"] < counts["calls"] / 2, counts
    assert len([m for m in logs.messages() if "HTTP 401" in m]) >= 5
    assert logs.named("symphony_auth.test"), "the Python threads logged"
    assert_no_canary(logs.records, secrets_of(bot.tokens()))
