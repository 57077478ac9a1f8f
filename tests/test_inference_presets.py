import configuronic as cfn

from positronic import inference_presets as policy_cfg
from positronic.policy.remote import RemotePolicy


@cfn.config(policy=policy_cfg.remote)
def _run(policy):
    return policy


def test_remote_resolves_relative_to_the_policy_presets_and_builds_without_connecting():
    built = _run.override(**{'policy': '.remote', 'policy.host': 'gpu-box', 'policy.model_id': 10000}).instantiate()
    assert isinstance(built, RemotePolicy)
    assert built._client.session_base == 'ws://gpu-box:8000/api/v1/session'
    assert built._model_id == '10000'


def test_remote_defaults_match_the_documented_command_line():
    built = policy_cfg.remote.instantiate()
    assert (built._client.host, built._client.port, built._model_id, built._resize) == ('localhost', 8000, None, 640)
