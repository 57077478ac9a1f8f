import numpy as np
import pytest

from positronic.sim import StackingExpert, World
from positronic.sim.expert import REOPEN_S, grasp_yaw, min_jerk, slerp
from positronic.sim.world import gripper_down_quat

FPS = 30
RED = np.array([0.45, -0.12, 0.31, 1.0, 0.0, 0.0, 0.0])
GREEN = np.array([0.58, 0.10, 0.31, np.cos(0.2), 0.0, 0.0, np.sin(0.2)])  # yawed by 0.4 rad
START = np.concatenate([[0.45, 0.0, 0.52], gripper_down_quat(0.0)])


def expert(seed: int = 0, blend: float = 0.0, grasp_dwell_s: float = 0.0) -> StackingExpert:
    return StackingExpert(RED, GREEN, START, np.random.default_rng(seed), blend=blend, grasp_dwell_s=grasp_dwell_s)


def trajectory(e: StackingExpert) -> tuple[np.ndarray, np.ndarray]:
    ts = np.arange(0.0, e.duration_s + 0.5, 1 / FPS)
    commands = [e.command(t) for t in ts]
    return np.array([p for p, _ in commands]), np.array([g for _, g in commands])


def test_min_jerk_starts_and_ends_at_rest():
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    eps = 1e-4
    assert (min_jerk(eps) - min_jerk(0.0)) / eps < 1e-6
    assert min_jerk(-1.0) == 0.0 and min_jerk(2.0) == 1.0


def test_slerp_interpolates_along_the_short_arc():
    a, b = gripper_down_quat(0.0), gripper_down_quat(0.6)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    mid = slerp(a, -b, 0.5)  # sign of b does not matter
    assert np.allclose(mid, gripper_down_quat(0.3))


@pytest.mark.parametrize(('cube_yaw', 'expected'), [(0.0, 0.0), (0.4, 0.4), (np.radians(80), np.radians(-10))])
def test_grasp_yaw_is_the_closest_face_pair_within_45_degrees(cube_yaw, expected):
    quat = np.array([np.cos(cube_yaw / 2), 0.0, 0.0, np.sin(cube_yaw / 2)])
    assert grasp_yaw(quat) == pytest.approx(expected)


def test_plan_starts_at_the_start_pose_and_holds_the_retreat_after_the_end():
    e = expert()
    pose, grip = e.command(0.0)
    assert np.allclose(pose, START) and grip == 0.0
    final, _ = e.command(e.duration_s)
    later, later_grip = e.command(e.duration_s + 10.0)
    assert np.array_equal(final, later) and later_grip == 0.0
    assert final[2] > RED[2] + 0.15  # retreated well above the stack


@pytest.mark.parametrize('blend', [0.0, 0.5])
def test_commands_are_smooth_and_keep_the_gripper_pointing_down(blend):
    poses, _ = trajectory(expert(blend=blend))
    assert np.max(np.linalg.norm(np.diff(poses[:, :3], axis=0), axis=1)) < 0.5 / FPS  # below 0.5 m/s
    assert np.max(np.abs(np.diff(poses[:, 3:], axis=0))) < 0.05  # continuous quaternions, no sign flips
    assert np.all(np.abs(poses[:, 3]) < 1e-9) and np.all(np.abs(poses[:, 6]) < 1e-9)  # pure yaw about down
    assert np.all(poses[:, 4] > 0)


@pytest.mark.parametrize('blend', [0.0, 0.5])
def test_gripper_closes_once_at_the_green_cube_and_opens_above_the_red_cube(blend):
    poses, grips = trajectory(expert(blend=blend))
    edges = np.flatnonzero(np.diff(grips))
    assert len(edges) == 2 and grips[edges[0] + 1] == 1.0 and grips[edges[1] + 1] == 0.0
    at_close, at_open = poses[edges[0] + 1], poses[edges[1] + 1]
    assert np.linalg.norm(at_close[:3] - GREEN[:3]) < 0.005
    assert np.allclose(at_close[3:], gripper_down_quat(0.4), atol=1e-6)  # fingers square to the cube faces
    assert np.linalg.norm(at_open[:2] - RED[:2]) < 1e-6
    assert 0.02 < at_open[2] - RED[2] < 0.03  # green released just above the red cube's top


def test_plan_is_reproducible_from_the_generator_and_varies_between_seeds():
    assert np.array_equal(trajectory(expert(3))[0], trajectory(expert(3))[0])
    assert expert(3).duration_s != expert(4).duration_s


def test_a_blending_expert_stops_only_where_the_gripper_closes_and_opens():
    stopping, blending = expert(seed=2), expert(seed=2, blend=0.5)
    assert blending.duration_s < stopping.duration_s - 1.0
    for e, expected_rests in ((stopping, 6), (blending, 3)):  # every waypoint, or the grasp, the release and the end
        poses, _ = trajectory(e)
        speed = np.linalg.norm(np.diff(poses[:, :3], axis=0), axis=1) * FPS
        moving = speed > 0.01
        rests = np.count_nonzero(moving[:-1] & ~moving[1:])
        assert rests == expected_rests
    close, release = blending.grip_changes_s
    for t in (close, release):  # at rest at the moment the gripper target changes
        before, after = blending.command(t - 0.05)[0], blending.command(t + 0.05)[0]
        assert np.linalg.norm(after[:3] - before[:3]) < 1e-3


def test_a_regrasping_expert_opens_where_it_is_then_goes_straight_to_the_grasp():
    closed_above = np.concatenate([GREEN[:3] + np.array([0.004, -0.003, 0.015]), gripper_down_quat(0.1)])
    e = StackingExpert(RED, GREEN, closed_above, np.random.default_rng(5), regrasp=True)
    normal = StackingExpert(RED, GREEN, closed_above, np.random.default_rng(5))
    first = e.segments[0]
    assert first.grip == 0.0 and first.duration_s == REOPEN_S and np.allclose(first.pose, closed_above)
    poses, grips = trajectory(e)
    before_close = poses[: np.argmax(grips > 0.5)]
    assert before_close[:, 2].max() <= closed_above[2] + 1e-9  # never rises to the approach point
    assert np.linalg.norm(before_close[-1, :3] - GREEN[:3]) < 0.005
    assert [s.grip for s in e.segments] == [s.grip for s in normal.segments]  # then as planned: lift, carry, place
    assert e.duration_s < normal.duration_s


def test_without_blend_the_moves_follow_one_another():
    e = expert(seed=1)
    ends = np.cumsum([seg.duration_s for seg in e.segments])
    assert e.duration_s == pytest.approx(ends[-1])
    for seg, end in zip(e.segments, ends, strict=True):
        assert np.allclose(e.command(end)[0], seg.pose)  # every waypoint reached


@pytest.mark.parametrize('blend', [-0.1, 0.6])
def test_a_blend_out_of_range_is_refused(blend):
    with pytest.raises(ValueError, match=r'blend must be between 0 and 0\.5'):
        expert(blend=blend)


def test_a_dwelling_expert_holds_still_at_the_grasp_pose_open_before_it_closes():
    plain, dwelling = expert(seed=3), expert(seed=3, grasp_dwell_s=0.4)
    dwell = dwelling.segments[2]
    assert dwell.grip == 0.0 and np.array_equal(dwell.pose, plain.segments[1].pose)  # open, at the grasp pose
    tempo = dwell.duration_s / 0.4
    assert 0.9 <= tempo <= 1.15  # the episode's tempo factor scales the wait like the others
    del dwelling.segments[2]
    assert all(  # the rest of the plan is the same to the bit: the dwell draws nothing from the generator
        np.array_equal(a.pose, b.pose) and a.duration_s == b.duration_s and a.grip == b.grip
        for a, b in zip(plain.segments, dwelling.segments, strict=True)
    )
    dwelling = expert(seed=3, grasp_dwell_s=0.4)
    arrive = plain.grip_changes_s[0]
    close, release = dwelling.grip_changes_s
    assert close == pytest.approx(arrive + dwell.duration_s)
    assert release == pytest.approx(plain.grip_changes_s[1] + dwell.duration_s)
    for t in np.linspace(arrive, close - 1e-6, 5):  # still and open, from the arrival to the close
        pose, grip = dwelling.command(t)
        assert grip == 0.0 and np.allclose(pose, dwell.pose)


def test_the_hand_must_be_on_its_pose_at_the_grip_changes_and_where_it_rests_before_the_grasp():
    plain, dwelling = expert(seed=3), expert(seed=3, grasp_dwell_s=0.4)
    assert plain.on_pose_s == plain.grip_changes_s  # without a rest: the grasp and the release
    arrival = dwelling.segments[2]
    assert dwelling.on_pose_s == [plain.grip_changes_s[0], *dwelling.grip_changes_s]  # the arrival, then as before
    assert dwelling.on_pose_s[1] - dwelling.on_pose_s[0] == pytest.approx(arrival.duration_s)


def test_a_blending_expert_still_rests_its_whole_dwell_on_the_grasp_pose():
    e = expert(seed=3, blend=0.5, grasp_dwell_s=0.4)
    rest = e.segments[2]
    arrival, close = e.on_pose_s[:2]
    assert close - arrival == pytest.approx(rest.duration_s)  # the rest is not folded into the descent
    for t in np.linspace(arrival, close - 1e-6, 5):
        assert np.allclose(e.command(t)[0], rest.pose)


@pytest.mark.parametrize('dwell', [-0.1, 2.5, True])
def test_a_grasp_dwell_out_of_range_is_refused(dwell):
    with pytest.raises(ValueError, match=r'grasp_dwell_s must be between 0 and 2\.0 s'):
        expert(grasp_dwell_s=dwell)


@pytest.mark.parametrize(
    ('seed', 'blend', 'dwell'),
    [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, 0.0, 0.0), (0, 0.5, 0.0), (1, 0.5, 0.0), (2, 0.0, 0.4)],
)
def test_expert_stacks_the_cubes_in_the_simulated_world(seed, blend, dwell):
    with World(seed=seed) as world:
        e = StackingExpert.for_world(world, np.random.default_rng(seed), blend=blend, grasp_dwell_s=dwell)
        t, scores = 0.0, []
        while t < e.duration_s + 0.5:
            world.command(*e.command(t))
            world.step(1 / FPS)
            t += 1 / FPS
            scores.append(world.stacking_success())
        assert world.grip() < 0.05  # released
        assert scores[-1] == 1.0
        assert min(scores[-10:]) == 1.0  # and it stays stacked


def test_grip_changes_are_the_times_the_gripper_target_closes_and_opens():
    e = expert(seed=4)
    close, release = e.grip_changes_s
    assert 0 < close < release < e.duration_s
    assert e.command(close - 1e-6)[1] == 0.0 and e.command(close + 1e-6)[1] == 1.0
    assert e.command(release - 1e-6)[1] == 1.0 and e.command(release + 1e-6)[1] == 0.0
