import dataclasses
import time

import numpy as np
import pytest

from positronic import keys
from positronic.offboard.server import ServerThread
from positronic.policy.remote import RemotePolicy, flat_meta, shrink_images
from tests.offboard.sources import expected_translations, observation


@pytest.fixture
def policy(server: ServerThread):
    remote = RemotePolicy(host='127.0.0.1', port=server.port, infer_timeout_s=5.0)
    yield remote
    remote.close()


def test_select_action_returns_the_servers_chunk(policy):
    chunk = policy.select_action(observation(x=0.42))
    np.testing.assert_allclose([a['robot_command']['pose'][:3] for a in chunk], expected_translations(0.42, 4))


def test_meta_is_the_servers_meta_flattened_under_server(policy):
    assert policy.meta == {
        'type': 'remote',
        'server.type': 'step',
        'server.model_id': '10000',
        'server.chunk_size': 4,
        'server.features.state': [8],
    }


def test_model_id_picks_the_servers_model(server):
    remote = RemotePolicy(host='127.0.0.1', port=server.port, model_id=2000)
    try:
        assert remote.meta['server.model_id'] == '2000'
    finally:
        remote.close()


def test_large_images_are_shrunk_before_sending(policy, source):
    obs = observation(image_side=240)
    obs[keys.IMAGE_WRIST] = np.full((720, 1280, 3), 200, np.uint8)
    policy.select_action(obs)
    assert source.received_shapes[keys.IMAGE_WRIST] == (360, 640, 3)
    assert source.received_shapes[keys.IMAGE_EXTERIOR] == (240, 240, 3)


def test_reset_opens_a_fresh_session(policy, server):
    policy.select_action(observation())
    started = server.manager.sessions_started
    policy.reset({'task': keys.STACK_CUBES_TASK})
    assert server.manager.sessions_started == started + 1
    assert len(policy.select_action(observation())) == 4
    assert server.manager.active_sessions == 1


def test_a_lost_session_is_replaced_on_the_next_call(server):
    from positronic.offboard.client import ServerTimeoutError

    remote = RemotePolicy(host='127.0.0.1', port=server.port, infer_timeout_s=0.2)
    try:
        with pytest.raises(ServerTimeoutError):
            remote.select_action(observation(delay_s=0.6))
        remote._client.timeouts = type(remote._client.timeouts)(infer_s=5.0)
        assert len(remote.select_action(observation())) == 4
    finally:
        remote.close()


def test_a_server_that_cannot_be_reached_makes_the_policy_unavailable_with_the_transport_error_as_cause():
    from positronic.offboard.client import ServerUnreachableError
    from positronic.policy.base import PolicyUnavailableError
    from tests.evaluation.test_retry import closed_port

    remote = RemotePolicy(host='127.0.0.1', port=closed_port(), connect_timeout_s=0.5)
    with pytest.raises(PolicyUnavailableError, match=r'cannot reach the inference server at 127\.0\.0\.1') as error:
        remote.reset()
    assert isinstance(error.value.__cause__, ServerUnreachableError)
    with pytest.raises(PolicyUnavailableError):
        _ = remote.meta


def test_a_session_the_server_closed_for_idling_is_replaced_without_an_error(source, settings):
    with ServerThread(source, settings=dataclasses.replace(settings, idle_timeout_s=0.3)) as server:
        remote = RemotePolicy(host='127.0.0.1', port=server.port, infer_timeout_s=5.0)
        try:
            assert len(remote.select_action(observation())) == 4
            time.sleep(0.8)  # the server closes the idle session
            assert len(remote.select_action(observation())) == 4
            assert server.manager.sessions_started == 2
        finally:
            remote.close()


def test_shrink_images_keeps_aspect_and_leaves_everything_else():
    tall = np.arange(1000 * 500 * 3, dtype=np.uint64).astype(np.uint8).reshape(1000, 500, 3)
    depth = np.zeros((1000, 1000), np.float32)
    obs = {'image.tall': tall, 'depth': depth, 'small': np.zeros((100, 200, 3), np.uint8), 'task': 't'}
    shrunk = shrink_images(obs, 640)
    assert shrunk['image.tall'].shape == (640, 320, 3) and shrunk['image.tall'].dtype == np.uint8
    assert shrunk['depth'] is depth and shrunk['small'] is obs['small'] and shrunk['task'] == 't'
    assert obs['image.tall'] is tall
    assert shrink_images(obs, None)['image.tall'] is tall


def test_flat_meta_joins_nested_keys_with_dots():
    assert flat_meta({'a': {'b': {'c': 1}, 'd': 2}, 'e': [3]}, 'server.') == {
        'server.a.b.c': 1,
        'server.a.d': 2,
        'server.e': [3],
    }
