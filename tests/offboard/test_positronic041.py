import pytest

from tests.offboard.positronic041_run import run_positronic041_client
from tests.offboard.sources import expected_translations


@pytest.mark.positronic041
def test_positronic_041_inference_client_uses_our_server(positronic041_python, server):
    report = run_positronic041_client(positronic041_python, server.port)
    assert report['protocol_version'] in ('1', 'ProtocolVersion.V1')
    assert report['session_id'] is None
    assert report['meta']['model_id'] == '10000'
    assert report['chunk_sizes'] == [4, 4, 4]
    assert report['command_type'] == 'CartesianPosition'
    x, y, z = expected_translations(0.3, 1)[0]
    assert f't=[ {x} {y}  {z}]' in report['command_repr'] and 'q=[0. 1. 0. 0.]' in report['command_repr']
    assert report['target_grip'] == pytest.approx(0.2)
    assert "KeyError: 'robot_state.ee_pose'" in report['error']
    assert report['chunk_size_after_error'] == 4
