#!/usr/bin/env python3
"""Compatibility check: the official Symphony BDK for Python against auth-testkit's `fake-pod`.

For each scenario it starts `fake-pod`, writes a BDK YAML config pointing at it, and with
`SymphonyBdk`:

  1. logs in (`bot_session().refresh()`): session token, then key manager token or, with SKD,
     the agent version check instead;
  2. reads the session info (`sessions().get_session()`, GET /pod/v2/sessioninfo);
  3. echoes through the agent with both tokens (`UtilApi.v1_util_echo_post`, POST /agent/v1/util/echo);
  4. calls the health service (GET /agent/v3/health, GET /agent/v1/info);
  5. closes the BDK and then the fake (by closing its stdin).

Scenarios: RSA and certificate (mutual TLS, CA trusted through `ssl.trustStore.path`), each with
and without `--skd`. Every HTTP request the SDK makes is logged with its status.
Exit status: 0 when every check of every scenario passed, 1 otherwise, 2 on bad usage.

Usage: python bdk_python.py [--fake-pod PATH] [--only NAME]... [--cert-login-without-content-type] [-v]

`--cert-login-without-content-type` is a diagnostic, not a fix: it makes the SDK's bodiless
certificate logins go out without any Content-Type header (the SDK sends `application/json`,
and aiohttp would add `application/octet-stream`), to check the rest of the certificate path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import subprocess
import sys
import tempfile
import threading
import traceback
from importlib.metadata import version as dist_version
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml
from symphony.bdk.core.client.api_client_factory import ApiClientFactory
from symphony.bdk.core.config.loader import BdkConfigLoader
from symphony.bdk.core.symphony_bdk import SymphonyBdk
from symphony.bdk.gen import rest
from symphony.bdk.gen.agent_api.util_api import UtilApi
from symphony.bdk.gen.agent_model.simple_message import SimpleMessage
from symphony.bdk.gen.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FAKE_POD = REPO / "target-compat" / "debug" / "fake-pod"
BOT_KEY = REPO / "fixtures" / "keys" / "bot-2048.pkcs8.pem"
BOT_PUB = REPO / "fixtures" / "keys" / "bot-2048.pub.pem"
RSA_BOT = "rsabot"
CERT_BOT = "certbot"
READY_TIMEOUT_S = 30
CALL_TIMEOUT_S = 20

SCENARIOS = {
    # name: (auth, skd)
    "rsa": ("rsa", False),
    "rsa-skd": ("rsa", True),
    "cert": ("cert", False),
    "cert-skd": ("cert", True),
}

# ---------------------------------------------------------------------------------------------
# Request log: every HTTP call the SDK's generated clients make, with its status or error.

REQUESTS: list[str] = []
CERT_LOGINS = ("/sessionauth/v1/authenticate", "/keyauth/v1/authenticate")
STRIPPED = False  # set by strip_cert_login_content_type()
_original_request = rest.RESTClientObject.request


async def _logged_request(self, method, url, headers=None, body=None, *args, **kwargs):
    call = f"{method} {urlsplit(url).path}"
    if method == "POST":
        content_type = (headers or {}).get("Content-Type", "application/json (added by the SDK's rest.py)")
        if STRIPPED and url.endswith(CERT_LOGINS):
            content_type = "none, stripped by --cert-login-without-content-type"
        call += f" [Content-Type: {content_type}; {'no body' if body is None else 'body'}]"
    try:
        response = await _original_request(self, method, url, headers, body, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - logged and re-raised
        REQUESTS.append(f"{call} -> {type(exc).__name__}: {exc}")
        raise
    REQUESTS.append(f"{call} -> {response.status}")
    return response


rest.RESTClientObject.request = _logged_request


def strip_cert_login_content_type() -> None:
    """Diagnostic only (see --cert-login-without-content-type): certificate logins without Content-Type."""
    global STRIPPED
    STRIPPED = True
    original = aiohttp.ClientSession._request

    def request(self, method, url, **kwargs):
        if str(url).endswith(CERT_LOGINS) and not kwargs.get("data"):
            kwargs["headers"] = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "content-type"}
            kwargs["data"] = None
            kwargs["skip_auto_headers"] = ["Content-Type"]
        return original(self, method, url, **kwargs)

    aiohttp.ClientSession._request = request


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{type(exc).__name__}: HTTP {exc.status} {exc.reason}: {exc.body}"
    return f"{type(exc).__name__}: {exc}".strip()

# ---------------------------------------------------------------------------------------------
# fake-pod as a subprocess.


class FakePod:
    """Starts fake-pod, reads its ready line, stops it by closing its stdin."""

    def __init__(self, binary: Path, args: list[str]):
        self.proc = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(f"fake-pod did not print its ready line; stderr: {self.proc.stderr.read().strip()!r}")
        self.urls = json.loads(line[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def host_port(url: str) -> dict:
    parts = urlsplit(url)
    return {"scheme": parts.scheme, "host": parts.hostname, "port": parts.port}


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, unverified (the fake's tokens are RS512 JWTs)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ---------------------------------------------------------------------------------------------
# One scenario.


def bdk_config(urls: dict, auth: str, tls_dir: Path | None) -> dict:
    pod = host_port(urls["pod"])
    config = {
        **pod,  # pod, agent and (for RSA) key manager: one plain HTTP port
        "retry": {"maxAttempts": 1},  # fail fast and show the first error, no retry loop
    }
    if auth == "rsa":
        config["bot"] = {"username": RSA_BOT, "privateKey": {"path": str(BOT_KEY)}}
    else:
        # sessionAuth -> /sessionauth, keyManager -> /keyauth (and /relay, unused with certificates):
        # both on the fake's mutual-TLS port.
        config["sessionAuth"] = host_port(urls["session_auth"])
        config["keyManager"] = host_port(urls["key_auth"])
        config["ssl"] = {"trustStore": {"path": urls["ca_cert"]}}
        config["bot"] = {"username": CERT_BOT, "certificate": {"path": str(tls_dir / f"{CERT_BOT}.pem")}}
    return config


class Checks:
    def __init__(self, scenario: str):
        self.scenario = scenario
        self.failures: list[str] = []

    async def run(self, name: str, coro):
        """Awaits `coro` (with a timeout); a failure is recorded, not raised. Returns its value or None."""
        try:
            value = await asyncio.wait_for(coro, CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            detail = describe(exc)
            self.failures.append(f"{name}: {detail}")
            print(f"  FAIL {name}: {detail}")
            logging.debug("traceback:\n%s", traceback.format_exc())
            return None
        print(f"  ok   {name}")
        return value

    def expect(self, name: str, condition: bool, detail: str) -> None:
        if condition:
            print(f"  ok   {name}")
        else:
            self.failures.append(f"{name}: {detail}")
            print(f"  FAIL {name}: {detail}")


async def run_scenario(binary: Path, scenario: str) -> list[str]:
    auth, skd = SCENARIOS[scenario]
    bot = RSA_BOT if auth == "rsa" else CERT_BOT
    checks = Checks(scenario)
    REQUESTS.clear()
    print(f"== {scenario}")
    with tempfile.TemporaryDirectory(prefix="bdk-compat-") as tmp:
        tmp = Path(tmp)
        args = [f"--rsa-bot={RSA_BOT}={BOT_PUB}"]
        tls_dir = None
        if auth == "cert":
            tls_dir = tmp / "tls"
            args += ["--cert-bot", CERT_BOT, "--tls-dir", str(tls_dir)]
        if skd:
            args.append("--skd")
        with FakePod(binary, args) as fake:
            config_path = tmp / "config.yaml"
            config_path.write_text(yaml.safe_dump(bdk_config(fake.urls, auth, tls_dir)))
            logging.debug("config:\n%s", config_path.read_text())
            config = BdkConfigLoader.load_from_file(str(config_path))

            async with SymphonyBdk(config) as bdk:
                session = bdk.bot_session()
                # 1. Login.
                await checks.run("login (bot_session().refresh())", session.refresh())
                logged_in = not checks.failures
                session_token = km_token = None
                if logged_in:
                    session_token = await checks.run("session token", session.session_token)
                    km_token = await checks.run("key manager token", session.key_manager_token)
                else:
                    print("  skip session info and echo: no session")
                if session_token:
                    claims = jwt_claims(session_token)
                    checks.expect("session token sub", claims.get("sub") == bot, f"claims {claims}")
                    checks.expect(
                        "session token canUseSimplifiedKeyDelivery",
                        bool(claims.get("canUseSimplifiedKeyDelivery")) == skd,
                        f"claims {claims}",
                    )
                if logged_in and skd:
                    checks.expect("SKD: no key manager token", km_token == "", f"got {km_token!r}")
                elif logged_in:
                    checks.expect("key manager token issued", bool(km_token), f"got {km_token!r}")

                # 2. Session info.
                user = None
                if logged_in:
                    user = await checks.run("sessions().get_session()", bdk.sessions().get_session())
                if user is not None:
                    checks.expect(
                        "session info username", user.username == bot, f"username {user.username!r}, id {user.id}"
                    )

                # 3. Echo through the agent with both tokens (no BDK service wraps it: the generated
                # UtilApi on an agent client built from the same config).
                if session_token is not None and km_token is not None:
                    factory = ApiClientFactory(config)
                    try:
                        echoed = await checks.run(
                            "agent echo (POST /agent/v1/util/echo)",
                            UtilApi(factory.get_agent_client()).v1_util_echo_post(
                                session_token=session_token,
                                key_manager_token=km_token,
                                echo_input=SimpleMessage(message="hello fake-pod"),
                            ),
                        )
                    finally:
                        await factory.close_clients()
                    if echoed is not None:
                        checks.expect("echo body", echoed.message == "hello fake-pod", f"got {echoed!r}")

                # 4. Health service.
                health = await checks.run("health().health_check()", bdk.health().health_check())
                if health is not None:
                    checks.expect("health status UP", health.status == "UP", f"got {health!r}")
                info = await checks.run("health().get_agent_info()", bdk.health().get_agent_info())
                if info is not None:
                    checks.expect("agent info version", bool(info.version), f"got {info!r}")

            # 5. The BDK closed its clients on leaving `async with`; now the fake.
        checks.expect("fake-pod exits 0 after stdin closes", fake.proc.returncode == 0, f"exit {fake.proc.returncode}")

    print("  requests the SDK made:")
    for line in REQUESTS:
        print(f"    {line}")
    return [f"{scenario}: {f}" for f in checks.failures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fake-pod", type=Path, default=DEFAULT_FAKE_POD, help=f"default {DEFAULT_FAKE_POD}")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument(
        "--cert-login-without-content-type",
        action="store_true",
        help="diagnostic: send certificate logins without a Content-Type header",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (SDK and tracebacks)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.fake_pod.is_file():
        print(f"fake-pod not found at {args.fake_pod}; build it with\n"
              "  CARGO_TARGET_DIR=target-compat cargo build -p symphony-auth-testkit --bin fake-pod", file=sys.stderr)
        return 2

    print(f"symphony-bdk-python {dist_version('symphony-bdk-python')}, Python {sys.version.split()[0]}")
    if args.cert_login_without_content_type:
        strip_cert_login_content_type()
        print("DIAGNOSTIC: certificate logins are sent without Content-Type (not the SDK's behaviour)")
    failures: list[str] = []
    for scenario in args.only or SCENARIOS:
        try:
            failures += asyncio.run(run_scenario(args.fake_pod, scenario))
        except Exception as exc:  # noqa: BLE001 - a scenario that cannot even start is a failure too
            failures.append(f"{scenario}: {describe(exc)}")
            print(f"  FAIL {scenario}: {describe(exc)}")
            logging.debug("traceback:\n%s", traceback.format_exc())

    print()
    if failures:
        print(f"FAILED ({len(failures)}):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print("all scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
