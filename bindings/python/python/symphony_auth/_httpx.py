"""``HttpxAuth``: an ``httpx.Auth`` whose flow is the core's single flight and API-call step.

Every decision (who logs in, what a follower gets, what a 401 means, when to retry) is the core's, through
``Flight``. This module only moves requests through httpx, signs off the event loop, sleeps, and wakes followers.
One flow, written once as a generator of actions, is run by ``sync_auth_flow`` (threads) and ``async_auth_flow``
(asyncio tasks).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Generator, List, Optional, Tuple

import httpx

from ._native import Config, Flight, Tokens

_Action = Tuple[Any, ...]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class HttpxAuth(httpx.Auth):
    """Symphony authentication for ``httpx.Client`` and ``httpx.AsyncClient``.

    The tokens are attached to every request to the configured pod and agent (a request anywhere else raises
    ``UsageError``: tokens are never sent elsewhere). Logins go through the client itself, so configure it with the
    TLS roots and, for certificate logins, the client certificate. Concurrent requests share one login; any number
    of 401s on one generation of tokens cause one re-login, after which each request is replayed once.

    httpx raises a transport error out of the client rather than into the auth flow: a login request that fails
    below HTTP ends the leading request with that error, and the flight hands the login to a waiting request.
    """

    def __init__(self, config: Config, *, seed: int = 0) -> None:
        self._flight = Flight(config, seed)
        self._lock = threading.Condition()
        # Counts the wake-ups, so that a follower that saw a count waits only until it changes.
        self._wakes = 0
        self._async_waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]] = []

    @classmethod
    def from_config(cls, path: str, *, seed: int = 0) -> "HttpxAuth":
        """An auth from a BDK configuration file (YAML or JSON)."""
        return cls(Config.from_file(path), seed=seed)

    # -- waking followers --------------------------------------------------------------------------------------

    def _wake(self) -> None:
        """Wakes every follower; call with ``self._lock`` held."""
        self._wakes += 1
        self._lock.notify_all()
        for loop, future in self._async_waiters:
            loop.call_soon_threadsafe(_resolve, future)
        self._async_waiters.clear()

    # -- the flow, as actions ----------------------------------------------------------------------------------

    def _tokens(self, want: str, generation: Optional[int]) -> Generator[_Action, Any, Tokens]:
        """Joins the flight and runs its steps until it hands out tokens (or raises its error)."""
        with self._lock:
            caller = self._flight.join(want, generation)
        done = False
        try:
            while True:
                with self._lock:
                    step = self._flight.poll(caller, _now_ms())
                    kind = step["type"]
                    if kind == "done":
                        done = True
                        if step["wake"]:
                            self._wake()
                    elif kind == "follow":
                        seen = self._wakes
                        waiter = yield ("register", seen)
                        if waiter is not None:
                            self._async_waiters.append(waiter)
                if kind == "done":
                    if "error" in step:
                        raise step["error"]
                    return step["tokens"]
                if kind == "follow":
                    yield ("follow", seen, waiter)
                elif kind == "sign":
                    signed = yield ("sign", step["jwt"])
                    with self._lock:
                        self._flight.report_signed(signed, _now_ms())
                elif kind == "send":
                    for login in step["requests"]:
                        request = httpx.Request(
                            login.method, login.url, headers=login.headers, content=login.body
                        )
                        response = yield ("login", request)
                        with self._lock:
                            self._flight.report_answer(
                                login.id,
                                response.status_code,
                                response.headers.multi_items(),
                                response.content,
                                _now_ms(),
                            )
                elif kind == "wait_until":
                    yield ("sleep", max(0, step["at"] - _now_ms()) / 1000)
                else:
                    # Every request handed out was answered in turn: nothing is left to await.
                    with self._lock:
                        self._flight.report_lost(_now_ms())
        finally:
            if not done:
                with self._lock:
                    if self._flight.leave(caller, _now_ms()):
                        self._wake()

    def _flow(self, request: httpx.Request) -> Generator[_Action, Any, None]:
        """Attaches the tokens, sends, and on a 401 joins the one re-login and replays once."""
        call = self._flight.api_call(request.method, str(request.url), request.headers.multi_items(), request.content)
        tokens = yield from self._tokens("current", None)
        while True:
            method, url, headers, body = call.request(tokens)
            attempt = httpx.Request(method, url, headers=headers, content=body, extensions=request.extensions)
            response = yield ("http", attempt)
            step = self._flight.handle_api(call, response.status_code, response.headers.multi_items(), _now_ms())
            kind = step["type"]
            if kind == "return":
                return
            # Read before waiting: an unread answer holds its connection, which a login may need.
            yield ("discard", response)
            if kind == "relogin":
                tokens = yield from self._tokens("newer", step["generation"])
            elif kind == "retry_at":
                yield ("sleep", max(0, step["at"] - _now_ms()) / 1000)
            else:
                raise step["error"]

    # -- the two runners ---------------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        flow = self._flow(request)
        value: Any = None
        try:
            while True:
                try:
                    action = flow.send(value)
                except StopIteration:
                    return
                kind = action[0]
                value = None
                if kind == "login":
                    response = yield action[1]
                    response.read()
                    value = response
                elif kind == "http":
                    # Status and headers are all the core needs: a streamed answer stays unread.
                    value = yield action[1]
                elif kind == "discard":
                    action[1].read()
                elif kind == "sign":
                    value = action[1].sign()
                elif kind == "sleep":
                    time.sleep(action[1])
                elif kind == "follow":
                    seen = action[1]
                    with self._lock:
                        self._lock.wait_for(lambda: self._wakes != seen)
        finally:
            flow.close()

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        await request.aread()
        flow = self._flow(request)
        value: Any = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    action = flow.send(value)
                except StopIteration:
                    return
                kind = action[0]
                value = None
                if kind == "login":
                    response = yield action[1]
                    await response.aread()
                    value = response
                elif kind == "http":
                    # Status and headers are all the core needs: a streamed answer stays unread.
                    value = yield action[1]
                elif kind == "discard":
                    await action[1].aread()
                elif kind == "register":
                    value = (loop, loop.create_future())
                elif kind == "sign":
                    # Signing takes milliseconds: off the event loop (the GIL is released while it signs).
                    value = await loop.run_in_executor(None, action[1].sign)
                elif kind == "sleep":
                    await asyncio.sleep(action[1])
                elif kind == "follow":
                    await action[2][1]
        finally:
            flow.close()


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)
