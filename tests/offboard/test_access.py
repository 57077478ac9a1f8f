"""The optional shared token on a real server on loopback (issue 18 row 3): refused before the upgrade without it,
served with it, browsers' WebSocket upgrades refused while a token is set."""

import dataclasses
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus

from positronic.offboard import protocol
from positronic.offboard.access import AUTH_TOKEN_ENV, ORIGIN_REFUSED_TEXT, UNAUTHORIZED_TEXT
from positronic.offboard.client import InferenceClient, UnauthorizedError
from positronic.offboard.server import ServerThread
from positronic.policy.remote import RemotePolicy
from tests.offboard.raw import handshake, open_raw
from tests.offboard.sources import StepSource, observation

TOKEN = 's3cret-token'


@pytest.fixture
def guarded(settings) -> ServerThread:
    with ServerThread(StepSource(), settings=dataclasses.replace(settings, auth_token=TOKEN)) as running:
        yield running


def _bearer(token: str) -> dict[str, str]:
    return {protocol.AUTHORIZATION_HEADER: protocol.authorization_value(token)}


def _http_status(port: int, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(f'http://127.0.0.1:{port}{protocol.MODELS_PATH}', headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize('headers', [{}, _bearer('wrong'), {protocol.AUTHORIZATION_HEADER: TOKEN}])
def test_a_websocket_upgrade_without_the_token_gets_401_before_any_session(guarded, headers):
    with pytest.raises(InvalidStatus) as refused:
        open_raw(guarded.port, additional_headers=headers)
    assert refused.value.response.status_code == 401
    assert refused.value.response.body.decode().strip() == UNAUTHORIZED_TEXT
    assert guarded.manager.sessions_started == 0


def test_an_http_request_without_the_token_gets_401(guarded):
    assert _http_status(guarded.port, {}) == (401, UNAUTHORIZED_TEXT + '\n')
    assert _http_status(guarded.port, _bearer(TOKEN))[0] == 200


def test_a_websocket_upgrade_with_an_origin_gets_403_even_with_the_token(guarded):
    with pytest.raises(InvalidStatus) as refused:
        open_raw(guarded.port, additional_headers=_bearer(TOKEN), origin='https://example.com')
    assert refused.value.response.status_code == 403
    assert refused.value.response.body.decode().strip() == ORIGIN_REFUSED_TEXT


def test_clients_that_send_the_token_are_served(guarded, monkeypatch):
    with open_raw(guarded.port, additional_headers=_bearer(TOKEN)) as ws:
        assert handshake(ws)[-1][protocol.STATUS] == protocol.STATUS_READY
    client = InferenceClient('127.0.0.1', guarded.port, auth_token=TOKEN)
    assert client.list_models() == ['1000', '2000', '10000']
    monkeypatch.setenv(AUTH_TOKEN_ENV, TOKEN)
    policy = RemotePolicy('127.0.0.1', guarded.port)  # the token from the environment
    try:
        assert len(policy.select_action(observation(image_side=64))) == 4
    finally:
        policy.close()


def test_a_client_without_the_token_is_told_how_to_pass_it(guarded, monkeypatch):
    monkeypatch.delenv(AUTH_TOKEN_ENV, raising=False)
    client = InferenceClient('127.0.0.1', guarded.port)
    for call in (client.list_models, client.new_session):
        with pytest.raises(UnauthorizedError, match=rf'HTTP 401: .*--policy.auth_token, or the {AUTH_TOKEN_ENV}'):
            call()


def test_without_a_token_clients_with_an_origin_or_a_token_are_served(server):
    with open_raw(server.port, additional_headers=_bearer('any'), origin='https://example.com') as ws:
        assert handshake(ws)[-1][protocol.STATUS] == protocol.STATUS_READY
