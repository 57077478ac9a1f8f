import pytest

from positronic.command import UsageError
from positronic.evaluation.settings import LoopSettings


def test_loop_settings_take_ints_for_float_fields_and_record_the_fields_that_shape_an_episode():
    settings = LoopSettings(policy_fps=15, success_hold_s=2)
    assert settings.policy_fps == 15.0 and isinstance(settings.policy_fps, float)
    assert settings.recorded_statics() == {
        'inference.policy_fps': 15.0,
        'inference.simulate_latency': False,
        'inference.realtime': False,
        'inference.actions_per_chunk': None,
        'inference.temporal_ensemble_coeff': None,
        'inference.success_threshold': 1.0,
        'inference.success_hold_s': 2.0,
    }


@pytest.mark.parametrize(
    ('fields', 'message'),
    [
        ({'policy_fps': 0}, '--policy_fps=0.0: expected a positive number'),
        ({'actions_per_chunk': 0}, '--actions_per_chunk=0: expected an integer of at least 1'),
        ({'actions_per_chunk': 2.5}, '--actions_per_chunk=2.5: expected an integer of at least 1'),
        ({'temporal_ensemble_coeff': float('nan')}, '--temporal_ensemble_coeff=nan: expected a finite number'),
        ({'temporal_ensemble_coeff': 'x'}, "--temporal_ensemble_coeff='x': expected a finite number"),
        (
            {'temporal_ensemble_coeff': 0.01, 'actions_per_chunk': 2},
            '--temporal_ensemble_coeff=0.01 queries every tick: leave --actions_per_chunk=2 unset',
        ),
        ({'realtime': 'yes'}, "--realtime='yes': expected True or False"),
        ({'connect_attempts': None}, '--connect_attempts=None: expected an integer'),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_the_flag(fields, message):
    with pytest.raises(UsageError, match=message):
        LoopSettings(**fields)


def test_actions_per_chunk_may_not_ask_for_more_than_a_query_answers():
    LoopSettings(actions_per_chunk=4).check_actions_per_chunk(4, 'chunk_size')
    LoopSettings().check_actions_per_chunk(4, 'chunk_size')  # None: every action answered
    LoopSettings(actions_per_chunk=40).check_actions_per_chunk(None, 'unknown')  # the policy does not say
    with pytest.raises(UsageError, match=r'--actions_per_chunk=5: expected 1\.\.chunk_size \(4\)'):
        LoopSettings(actions_per_chunk=5).check_actions_per_chunk(4, 'chunk_size')
