"""A bot for an OBO user: the app of a BDK file's `app` section acting for one user, against `fake-pod`."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

import symphony_auth as sa
from conftest import KEYS, FakePod

APP = "my-app"


@pytest.fixture(scope="module")
def obo_pod():
    pod = FakePod(
        "--app",
        f"{APP}={KEYS / 'bot-2048.pub.pem'}",
        "--user",
        "12345:j.doe:installed",
        "--user",
        "23456:r.roe",
    )
    yield pod
    pod.stop()


def app_only_file(pod: FakePod, tmp_path) -> str:
    """A BDK file with the app's section and no bot section."""
    url = urlparse(pod.urls["pod"])
    config = {
        "scheme": url.scheme,
        "host": url.hostname,
        "port": url.port,
        "app": {"appId": APP, "privateKey": {"path": str(KEYS / "bot-2048.pkcs8.pem")}},
        "retry": {"maxAttempts": 1},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_bot_for_an_obo_user_by_id_and_by_username(obo_pod, tmp_path):
    path = app_only_file(obo_pod, tmp_path)
    by_id = sa.Bot(sa.Config.obo_from_file(path, user_id=12345))
    assert by_id.session_info()["username"] == "j.doe"
    tokens = by_id.tokens()
    assert tokens.key_manager_token is None, "an OBO session has no key-manager token"
    by_name = sa.Bot(sa.Config.obo_from_file(path, username="j.doe"))
    assert by_name.session_info()["id"] == 12345


def test_a_user_who_has_not_installed_the_app_is_a_rejection(obo_pod, tmp_path):
    bot = sa.Bot(sa.Config.obo_from_file(app_only_file(obo_pod, tmp_path), user_id=23456))
    with pytest.raises(sa.CredentialsRejectedError) as raised:
        bot.session_info()
    assert raised.value.details["class"] == "obo_not_installed"


def test_the_user_is_named_once():
    with pytest.raises(sa.ConfigurationError, match="user_id or username"):
        sa.Config.obo_from_file("unused.json")
    with pytest.raises(sa.ConfigurationError, match="user_id or username"):
        sa.Config.obo_from_file("unused.json", user_id=1, username="a")
