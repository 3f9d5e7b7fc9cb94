"""`HttpxAuth` with `httpx.Client` and `httpx.AsyncClient` against the `fake-pod` binary: logins go through the
client, tokens are attached, a 401 causes one shared re-login and a replay, for 50 threads and 200 tasks."""

from __future__ import annotations

import asyncio
import ssl
import threading

import httpx
import pytest

import symphony_auth as sa
from conftest import CERT_BOT, KEYS, RSA_BOT

TIMEOUT_S = 60


def rsa_config(pod) -> sa.Config:
    return sa.Config(
        pod.urls["pod"],
        RSA_BOT,
        private_key_path=str(KEYS / "bot-2048.pkcs8.pem"),
        key_manager_url=pod.urls["key_manager"],
        agent_url=pod.urls["agent"],
    )


def test_sync_client_logs_in_through_httpx_and_attaches_the_tokens(rsa_pod):
    before = rsa_pod.logins()
    with httpx.Client(auth=sa.HttpxAuth(rsa_config(rsa_pod)), timeout=TIMEOUT_S) as client:
        info = client.get(rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")
        assert info.status_code == 200 and info.json()["username"] == RSA_BOT
        echo = client.post(rsa_pod.urls["agent"] + "/agent/v1/util/echo", json={"hello": 1})
        assert echo.status_code == 200
        # The login went through the client: httpx saw it in the response history.
        assert [r.url.path for r in info.history] == ["/login/pubkey/authenticate", "/relay/pubkey/authenticate"]
    assert rsa_pod.logins() == before + 1


def test_a_url_outside_the_services_is_refused(rsa_pod):
    with httpx.Client(auth=sa.HttpxAuth(rsa_config(rsa_pod)), timeout=TIMEOUT_S) as client:
        with pytest.raises(sa.UsageError):
            client.get("https://elsewhere.example/pod/v2/sessioninfo")


def test_fifty_threads_meeting_a_401_cause_one_login(rsa_pod):
    url = rsa_pod.urls["pod"] + "/pod/v2/sessioninfo"
    # Fewer connections than threads: a request waiting for the login must not hold one.
    limits = httpx.Limits(max_connections=10)
    with httpx.Client(auth=sa.HttpxAuth(rsa_config(rsa_pod)), timeout=TIMEOUT_S, limits=limits) as client:
        assert client.get(url).status_code == 200
        rsa_pod.expire()
        before = rsa_pod.logins()
        barrier = threading.Barrier(50, timeout=TIMEOUT_S)
        statuses, errors = [], []

        def call():
            try:
                barrier.wait()
                statuses.append(client.get(url).status_code)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=call) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_S)
            assert not thread.is_alive(), "a thread is still sending"
    assert errors == []
    assert statuses == [200] * 50
    assert rsa_pod.logins() == before + 1


def test_two_hundred_tasks_meeting_a_401_cause_one_login(rsa_pod):
    url = rsa_pod.urls["pod"] + "/pod/v2/sessioninfo"

    async def main():
        # Fewer connections than tasks: a request waiting for the login must not hold one.
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(auth=sa.HttpxAuth(rsa_config(rsa_pod)), timeout=TIMEOUT_S, limits=limits) as client:
            assert (await client.get(url)).status_code == 200
            rsa_pod.expire()
            before = rsa_pod.logins()
            start = asyncio.Event()

            async def call():
                await start.wait()
                return (await client.get(url)).status_code

            tasks = [asyncio.create_task(call()) for _ in range(200)]
            start.set()
            statuses = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S)
            return statuses, before

    statuses, before = asyncio.run(main())
    assert statuses == [200] * 200
    assert rsa_pod.logins() == before + 1


def test_async_certificate_login(cert_pod):
    urls = cert_pod.urls
    config = sa.Config(
        urls["pod"],
        CERT_BOT,
        certificate=True,
        session_auth_url=urls["session_auth"],
        key_manager_url=urls["key_auth"],
        agent_url=urls["agent"],
    )
    tls = ssl.create_default_context(cafile=urls["ca_cert"])
    tls.load_cert_chain(str(cert_pod.tls_dir / f"{CERT_BOT}-cert.pem"), str(cert_pod.tls_dir / f"{CERT_BOT}-key.pem"))

    async def main():
        async with httpx.AsyncClient(auth=sa.HttpxAuth(config), verify=tls, timeout=TIMEOUT_S) as client:
            return await client.get(urls["pod"] + "/pod/v2/sessioninfo")

    info = asyncio.run(main())
    assert info.status_code == 200 and info.json()["username"] == CERT_BOT


def test_a_rejected_login_raises_the_core_error(rsa_pod):
    config = sa.Config(rsa_pod.urls["pod"], "nobody", private_key_path=str(KEYS / "bot-2048.pkcs8.pem"))
    with httpx.Client(auth=sa.HttpxAuth(config), timeout=TIMEOUT_S) as client:
        with pytest.raises(sa.CredentialsRejectedError, match="rejected bot"):
            client.get(rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")


def test_a_task_cancelled_while_leading_the_login_hands_it_over(slow_pod):
    url = slow_pod.urls["pod"] + "/pod/v2/sessioninfo"
    auth = sa.HttpxAuth(rsa_config(slow_pod))

    async def main():
        async with httpx.AsyncClient(auth=auth, timeout=TIMEOUT_S) as client:
            leader = asyncio.create_task(client.get(url))
            deadline = asyncio.get_running_loop().time() + TIMEOUT_S
            while not auth._flight.has_leader():  # polling the condition, bounded by the deadline
                assert asyncio.get_running_loop().time() < deadline, "no task leads a login"
                await asyncio.sleep(0.01)
            follower = asyncio.create_task(client.get(url))
            await asyncio.sleep(0.05)  # lets the follower join; the leader's login answer takes 300 ms
            leader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await leader
            return await asyncio.wait_for(follower, TIMEOUT_S)

    response = asyncio.run(main())
    assert response.status_code == 200
    assert response.json()["username"] == RSA_BOT


def test_a_streamed_answer_is_left_unread_for_the_caller(rsa_pod):
    url = rsa_pod.urls["pod"] + "/pod/v2/sessioninfo"
    with httpx.Client(auth=sa.HttpxAuth(rsa_config(rsa_pod)), timeout=TIMEOUT_S) as client:
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert not response.is_stream_consumed
            assert b"".join(response.iter_bytes())
