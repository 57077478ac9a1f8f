import numpy as np
import pytest

from positronic.sim.command_noise import CommandNoise

DT = 1 / 30


def test_no_noise_is_all_zeros():
    assert not CommandNoise().offsets(seed=0, ticks=300, dt_s=DT).any()


def test_offsets_start_at_zero_repeat_per_seed_and_differ_between_seeds():
    noise = CommandNoise(std_m=0.02)
    first = noise.offsets(seed=7, ticks=300, dt_s=DT)
    assert first.shape == (300, 3) and not first[0].any()
    assert np.array_equal(first, noise.offsets(seed=7, ticks=300, dt_s=DT))
    assert not np.allclose(first, noise.offsets(seed=8, ticks=300, dt_s=DT))


def test_offsets_wander_with_the_given_spread_and_forget_over_the_time_constant():
    noise = CommandNoise(std_m=0.02, time_constant_s=0.5)
    offsets = noise.offsets(seed=1, ticks=60_000, dt_s=DT)[300:]  # past the start-up from zero
    assert offsets.std(axis=0) == pytest.approx([0.02] * 3, rel=0.1)
    lag = round(0.5 / DT)  # one time constant: correlation about 1/e
    correlation = np.corrcoef(offsets[:-lag, 0], offsets[lag:, 0])[0, 1]
    assert correlation == pytest.approx(np.exp(-1), abs=0.05)


def test_offsets_fade_to_zero_at_the_quiet_times_and_stay_zero_after_the_last():
    noise = CommandNoise(std_m=0.02, fade_s=1.0)
    times = np.arange(300) * DT  # 10 s
    offsets = noise.offsets(seed=3, ticks=300, dt_s=DT, quiet_at_s=[3.0, 6.0])
    raw = noise.offsets(seed=3, ticks=300, dt_s=DT)
    norms = np.linalg.norm(offsets, axis=1)
    assert norms[np.isclose(times, 3.0)] == 0 and not offsets[times >= 6.0].any()
    half_way = np.isclose(times, 2.5)  # 0.5 s before a quiet time: half the raw offset
    assert np.allclose(offsets[half_way], 0.5 * raw[half_way])
    free = (times > 4.0) & (times < 5.0)  # more than fade_s away from both
    assert np.array_equal(offsets[free], raw[free]) and norms[free].max() > 0.002


def test_without_a_fade_the_offset_runs_up_to_the_last_quiet_time_and_is_zero_after():
    noise = CommandNoise(std_m=0.02, fade_s=0.0)
    times = np.arange(300) * DT
    offsets = noise.offsets(seed=3, ticks=300, dt_s=DT, quiet_at_s=[3.0, 6.0])
    raw = noise.offsets(seed=3, ticks=300, dt_s=DT)
    before = times < 6.0
    assert np.array_equal(offsets[before], raw[before]) and not offsets[~before].any()
    assert np.linalg.norm(offsets[np.isclose(times, 3.0)]) > 0  # not quiet at the grasp


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'std_m': -0.01}, 'std must be in [0, 0.05] m'),
        ({'std_m': 0.5}, 'std must be in [0, 0.05] m'),
        ({'std_m': float('nan')}, 'std must be in [0, 0.05] m'),
        ({'time_constant_s': 0.0}, 'time constant must be > 0 s'),
        ({'fade_s': -1.0}, 'fade must be >= 0 s'),
    ],
)
def test_out_of_range_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        CommandNoise(**kwargs)
