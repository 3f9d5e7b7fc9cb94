"""conformance/flight-transcripts.json through the Python API: the Common JWT as the core's single flight attaches,
refreshes and replaces it (Flight.bearer, Flight.handle_bearer, ApiCall.request_with), step by step."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

import pytest

import symphony_auth as sa
from conftest import REPO

TRANSCRIPTS = json.loads((REPO / "conformance" / "flight-transcripts.json").read_text())


def flight(spec: dict) -> sa.Flight:
    config = sa.Config(
        spec["pod"],
        spec["username"],
        private_key_path=str(REPO / spec["key"]),
        key_manager=spec["key_manager"],
    )
    jwt = spec["common_jwt"]
    config = config.with_common_jwt(on_pod_calls=jwt["on_pod_calls"], scope=jwt["scope"], leeway_ms=jwt["leeway_ms"])
    return sa.Flight(config, spec["seed"])


def request_json(parts: Tuple[str, str, List[Tuple[str, str]], bytes]) -> dict:
    method, url, headers, body = parts
    return {
        "method": method,
        "url": url,
        "headers": {name: value.replace(sa.USER_AGENT, "symphony-auth/<version>") for name, value in headers},
        "body": body.decode(),
    }


def token_json(kind: str, token: sa.AccessToken) -> dict:
    return {
        "type": kind,
        "token": token.expose_secret(),
        "generation": token.generation,
        "expires_at": token.expires_at,
        "refresh_at": token.refresh_at,
    }


class Run:
    """A scenario in progress: the flight, the tokens of the last login, and each call with its last bearer."""

    def __init__(self, spec: dict) -> None:
        self.flight = flight(spec)
        self.tokens: Optional[sa.Tokens] = None
        self.calls: Dict[str, Tuple[sa.ApiCall, Optional[sa.AccessToken]]] = {}

    def login(self, step: dict, at: int) -> dict:
        want = step["want"]
        caller = self.flight.join(want, step.get("generation")) if want == "newer" else self.flight.join(want)
        answers = iter(step.get("answers", []))
        sent: List[dict] = []
        while True:
            output = self.flight.poll(caller, at)
            kind = output["type"]
            if kind == "sign":
                self.flight.report_signed(output["jwt"].sign(), at)
            elif kind == "send":
                for request in output["requests"]:
                    sent.append({"endpoint": request.endpoint, "url": request.url})
                    answer = next(answers)
                    if "kind" in answer:
                        self.flight.report_failure(request.id, answer["kind"], "transcript", at)
                    else:
                        body = answer.get("body", "").encode()
                        self.flight.report_answer(request.id, answer["status"], answer.get("headers"), body, at)
            elif kind == "done":
                if "error" in output:
                    return {"requests": sent, "error": str(output["error"])}
                self.tokens = output["tokens"]
                return {
                    "requests": sent,
                    "tokens": {"generation": self.tokens.generation, "session": self.tokens.session_token},
                }
            else:
                pytest.fail(f"a transcript login is answered at once, not {output}")

    def apply(self, step: dict, at: int) -> Any:
        kind = step["type"]
        if kind == "login":
            return self.login(step, at)
        if kind == "api_call":
            call = self.flight.api_call(step["method"], step["url"], bearer_auth=step.get("bearer_auth", False))
            self.calls[step["call"]] = (call, None)
            return {"wants_bearer": call.wants_bearer}
        call, bearer = self.calls[step["call"]]
        if kind == "bearer":
            answer = self.flight.bearer(call, self.tokens, at)
            kept = answer.get("token")
            self.calls[step["call"]] = (call, kept)
            if answer["type"] == "attach":
                return token_json("attach", kept)
            if answer["type"] == "fetch":
                return {"type": "fetch", "request": request_json(answer["request"])}
            return {key: value for key, value in answer.items()}
        if kind == "bearer_answer":
            answer = self.flight.handle_bearer(
                call, self.tokens, step.get("status"), step.get("headers"), step.get("body", "").encode(), at,
                kind=step.get("kind"), detail="transcript",
            )
            if answer["type"] == "attach":
                self.calls[step["call"]] = (call, answer["token"])
                return token_json("attach", answer["token"])
            if answer["type"] == "fail":
                return {"type": "fail", "error": dict(answer["error"].details)}
            return answer
        if kind == "send":
            return {"request": request_json(call.request_with(self.tokens, bearer))}
        if kind == "api_answer":
            answer = self.flight.handle_api(
                call, step.get("status"), step.get("headers"), at, kind=step.get("kind"), detail="transcript"
            )
            if answer["type"] == "return":
                return {"type": "return", "status": step["status"]}
            if answer["type"] == "fail":
                return {"type": "fail", "error": answer["details"]}
            return answer
        pytest.fail(f"unknown input {kind}")


@pytest.mark.parametrize("scenario", TRANSCRIPTS["scenarios"], ids=lambda s: s["name"])
def test_flight_transcript(scenario: dict) -> None:
    run = Run(scenario["config"])
    for n, step in enumerate(scenario["steps"]):
        result = run.apply(step["input"], step["at"])
        actual = {
            "result": result,
            "common_jwt_refreshes": run.flight.common_jwt_refreshes,
            "state": run.flight.state(),
        }
        assert actual == step["expect"], f"{scenario['name']}, step {n}: {step['input']}"


def test_the_access_tokens_repr_hides_it() -> None:
    scenario = TRANSCRIPTS["scenarios"][0]
    run = Run(scenario["config"])
    for step in scenario["steps"][:4]:
        run.apply(step["input"], step["at"])
    _, token = run.calls["a"]
    assert token is not None and token.expose_secret() not in repr(token)
