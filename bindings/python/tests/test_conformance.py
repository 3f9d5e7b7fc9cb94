"""The conformance files (conformance/*.json) through the Python API: the machine transcripts step by step, and
the login vectors as machine scenarios (the same translation as the C binding's)."""

from __future__ import annotations

import base64
import json

import pytest

import symphony_auth as sa
from conftest import REPO

TRANSCRIPTS = json.loads((REPO / "conformance" / "machine-transcripts.json").read_text())
VECTORS = json.loads((REPO / "conformance" / "login-vectors.json").read_text())
T = 1_700_000_000_000


def machine(spec: dict) -> sa.Authenticator:
    endpoints = spec["endpoints"]
    pod = endpoints["pod"]
    kwargs = dict(
        key_manager_url=endpoints.get("key_manager"),
        session_auth_url=endpoints.get("session_auth"),
        agent_url=endpoints.get("agent"),
        jwt_lifetime_secs=spec["jwt_lifetime_secs"],
        retry=spec["retry"],
        cool_down=spec["cool_down"],
        key_manager=spec["key_manager"],
        parallel_login=spec["parallel"],
    )
    if spec["method"] == "rsa":
        kwargs["private_key_path"] = str(REPO / spec["key"])
    else:
        kwargs["certificate"] = True
    return sa.Authenticator(sa.Config(pod, spec["username"], **kwargs), spec["seed"])


def version_placeholder(value: str) -> str:
    return value.replace(sa.USER_AGENT, "symphony-auth/<version>")


def output_json(output: dict) -> dict:
    kind = output["type"]
    if kind == "sign":
        jwt = output["jwt"]
        return {"type": "sign", "exp": jwt.exp, "signing_input": jwt.signing_input.decode()}
    if kind == "send":
        return {
            "type": "send",
            "requests": [
                {
                    "id": r.id,
                    "endpoint": r.endpoint,
                    "method": r.method,
                    "url": r.url,
                    "headers": {name: version_placeholder(value) for name, value in r.headers},
                    "body": r.body.decode(),
                }
                for r in output["requests"]
            ],
        }
    if kind == "wait_until":
        return {"type": "wait_until", "at": output["at"]}
    if kind == "done":
        if "error" in output:
            return {"type": "done", "error": output["error"].details}
        t = output["tokens"]
        return {
            "type": "done",
            "tokens": {
                "generation": t.generation,
                "session": t.session_token,
                "key_manager": t.key_manager_token,
                "authorization": t.authorization_token,
                "simplified_key_delivery": t.simplified_key_delivery,
            },
        }
    return {"type": kind}


def events(m: sa.Authenticator) -> list:
    out = []
    while (event := m.poll_event()) is not None:
        event.pop("message", None)
        out.append(event)
    return out


class Runner:
    """Feeds inputs as the transcripts describe them; keeps the last JWT to sign."""

    def __init__(self, m: sa.Authenticator) -> None:
        self.m = m
        self.jwt = None

    def give(self, step_input: dict, at: int):
        kind = step_input["type"]
        m = self.m
        try:
            if kind == "poll":
                return None
            if kind == "sign":
                m.supply_jwt(self.jwt.sign(), at)
                return None
            if kind == "sign_fails":
                m.supply_signing_failure(step_input["reason"], at)
                return None
            if kind == "response":
                m.handle_response(
                    step_input["id"], step_input["status"], step_input.get("headers"), step_input["body"], at
                )
                return "accepted"
            if kind == "failure":
                m.handle_failure(step_input["id"], step_input["kind"], "test", at)
                return "accepted"
            if kind == "refresh":
                return m.refresh(at)
            if kind == "unauthorized":
                return m.report_unauthorized(step_input["generation"])
            if kind == "timeout":
                m.handle_timeout(at)
                return None
            if kind == "abandon":
                m.abandon_requests(at)
                return None
        except sa.UsageError as error:
            message = str(error)
            if kind == "unauthorized":
                return "unknown_generation"
            assert "no outstanding request" in message, message
            return "unknown_request"
        raise AssertionError(f"unknown input {kind}")

    def poll(self, at: int) -> dict:
        output = self.m.poll_output(at)
        if output["type"] == "sign":
            self.jwt = output["jwt"]
        return output


@pytest.mark.parametrize("scenario", TRANSCRIPTS["scenarios"], ids=lambda s: s["name"])
def test_machine_transcript(scenario):
    runner = Runner(machine(scenario["config"]))
    for n, step in enumerate(scenario["steps"]):
        expect, at = step["expect"], step["at"]
        result = runner.give(step["input"], at)
        output = output_json(runner.poll(at))
        got = {"output": output, "events": events(runner.m), "state": runner.m.state()}
        if "result" in expect:
            got["result"] = result
        wanted = {key: expect[key] for key in got if key in expect}
        assert "output" in wanted and "state" in wanted, f"step {n} expects no output or state"
        assert {key: got[key] for key in wanted} == wanted, f"step {n}: {step['input']}"


# -- login vectors, as machine scenarios ------------------------------------------------------------------------


def cert_bot(key_manager: str, **urls) -> sa.Authenticator:
    config = sa.Config(
        "https://pod.example", "cert.bot", certificate=True, key_manager=key_manager, parallel_login=False, **urls
    )
    return sa.Authenticator(config)


def rsa_bot(vector: dict, pod: str, **kwargs) -> sa.Authenticator:
    config = sa.Config(
        pod,
        vector["username"],
        private_key_path=str(REPO / vector["key"]),
        jwt_lifetime_secs=vector["lifetime_secs"],
        **kwargs,
    )
    return sa.Authenticator(config)


def session_token(claims: dict) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzUxMiJ9.{payload}.c2ln"


def token_body(token: str) -> str:
    return json.dumps({"token": token})


SKD_TOKEN = session_token({"sub": "1234567890", "canUseSimplifiedKeyDelivery": True})


@pytest.mark.parametrize("vector", VECTORS["login_jwt"], ids=lambda v: v["name"])
def test_login_jwt(vector):
    now = vector["now_unix_ms"]
    m = rsa_bot(vector, "https://acme.symphony.com", key_manager="never")
    sign = m.poll_output(now)
    assert sign["type"] == "sign"
    assert sign["jwt"].exp == now // 1000 + vector["lifetime_secs"]
    if "signing_input" in vector:
        assert sign["jwt"].signing_input.decode() == vector["signing_input"]
    m.supply_jwt(sign["jwt"].sign(), now)
    send = m.poll_output(now)
    (request,) = send["requests"]
    assert (request.id, request.endpoint, request.method) == (1, "RsaSession", "POST")
    assert request.url == "https://acme.symphony.com/login/pubkey/authenticate"
    assert json.loads(request.body) == {"token": vector["jwt"]}


@pytest.mark.parametrize("vector", VECTORS["requests"], ids=lambda v: v["name"])
def test_login_request(vector):
    base, endpoint = vector["base_url"], vector["endpoint"]
    jwts = {jwt["name"]: jwt for jwt in VECTORS["login_jwt"]}
    if endpoint == "RsaSession":
        jwt = jwts[vector["jwt_from"]]
        now = jwt["now_unix_ms"]
        m = rsa_bot(jwt, base, key_manager="never", allow_insecure_http=True)
        m.supply_jwt(m.poll_output(now)["jwt"].sign(), now)
    elif endpoint == "RsaKeyManager":
        jwt = jwts[vector["jwt_from"]]
        now = jwt["now_unix_ms"]
        m = rsa_bot(jwt, base, key_manager="always", parallel_login=False, allow_insecure_http=True)
        m.supply_jwt(m.poll_output(now)["jwt"].sign(), now)
        m.poll_output(now)
        m.handle_response(1, 200, None, token_body("session-token"), now)
    elif endpoint == "CertificateSession":
        now = T
        m = cert_bot("never", session_auth_url=base)
    elif endpoint == "CertificateKeyManager":
        now = T
        m = cert_bot("always", key_manager_url=base)
        m.poll_output(now)
        m.handle_response(1, 200, None, token_body("session-token"), now)
    elif endpoint == "AgentVersion":
        now = T
        m = cert_bot("auto", agent_url=base)
        m.poll_output(now)
        m.handle_response(1, 200, None, token_body(SKD_TOKEN), now)
    else:
        raise AssertionError(f"unknown endpoint {endpoint}")
    send = m.poll_output(now)
    assert send["type"] == "send"
    (request,) = send["requests"]
    assert request.endpoint == endpoint
    assert request.method == vector["method"]
    assert request.url == vector["uri"]
    if "body_json" in vector:
        assert json.loads(request.body) == vector["body_json"]
    else:
        assert request.body.decode() == vector["body"]
    headers = {name: version_placeholder(value) for name, value in request.headers}
    partial = "absent_headers" in vector or "body_json" in vector
    if partial:
        assert {k: headers.get(k) for k in vector["headers"]} == vector["headers"]
    else:
        assert headers == vector["headers"]
    for absent in vector.get("absent_headers", []):
        assert absent not in headers


@pytest.mark.parametrize("vector", VECTORS["skd"], ids=lambda v: json.dumps(v)[:60])
def test_simplified_key_delivery(vector):
    token = session_token(vector["claims"]) if "claims" in vector else vector["token"]
    m = cert_bot("auto")
    m.poll_output(T)
    m.handle_response(1, 200, None, token_body(token), T)
    output = m.poll_output(T)
    if vector["skd"]:
        assert output["type"] == "done"
        assert output["tokens"].session_token == token
        assert output["tokens"].key_manager_token is None
        assert output["tokens"].simplified_key_delivery
    else:
        assert output["type"] == "send"
        assert [(r.id, r.endpoint) for r in output["requests"]] == [(2, "CertificateKeyManager")]


@pytest.mark.parametrize("vector", VECTORS["agent_versions"], ids=lambda v: json.dumps(v)[:60])
def test_agent_version(vector):
    body = json.dumps({"version": vector["version"]}) if "version" in vector else vector["body"]
    m = cert_bot("auto", agent_url="https://agent.example")
    m.poll_output(T)
    m.handle_response(1, 200, None, token_body(SKD_TOKEN), T)
    m.poll_output(T)
    m.handle_response(2, vector["status"], None, body, T)
    output = m.poll_output(T)
    if vector["supports_skd"]:
        assert output["type"] == "done"
        assert output["tokens"].simplified_key_delivery
    else:
        assert output["type"] == "send"
        assert [(r.id, r.endpoint) for r in output["requests"]] == [(3, "CertificateKeyManager")]


@pytest.mark.parametrize("vector", VECTORS["login_responses"], ids=lambda v: json.dumps(v)[:60])
def test_login_response(vector):
    policy = VECTORS["login_responses_policy"]
    now = policy["now_unix_ms"]
    retry = {k: policy[k] for k in ("max_attempts", "initial_interval_ms", "multiplier", "max_interval_ms", "jitter")}
    config = sa.Config(
        "https://pod.example", "cert.bot", certificate=True, key_manager="never", parallel_login=False, retry=retry
    )
    m = sa.Authenticator(config)
    m.poll_output(now)
    events(m)
    m.handle_response(1, vector["status"], vector.get("headers"), vector.get("body", ""), now)
    output = m.poll_output(now)
    seen = events(m)
    outcome = vector["outcome"]
    if outcome == "token":
        assert output["type"] == "done"
        assert output["tokens"].session_token == vector["token"]
    elif outcome in ("rejected", "protocol"):
        (failed,) = [e for e in seen if e["type"] == "login_failed"]
        assert failed["error"]["class"] == outcome
        assert failed["error"]["endpoint"] == "CertificateSession"
        assert failed["error"]["status"] == vector["status"]
        if outcome == "protocol":
            assert failed["error"]["problem"] == vector["problem"]
        expected = sa.CredentialsRejectedError if outcome == "rejected" else sa.ProtocolError
        assert isinstance(output["error"], expected)
    elif outcome == "retry":
        (scheduled,) = [e for e in seen if e["type"] == "retry_scheduled"]
        assert (scheduled["endpoint"], scheduled["attempt"]) == ("CertificateSession", 1)
        assert scheduled["max_attempts"] == policy["max_attempts"]
        if "delay_ms" in vector:
            assert scheduled["delay_ms"] == vector["delay_ms"]
        elif "retry_after_secs" in vector:
            assert scheduled["delay_ms"] == vector["retry_after_secs"] * 1000
        assert scheduled["cause"] == {"status": vector["status"]}
    else:
        raise AssertionError(f"unknown outcome {outcome}")
