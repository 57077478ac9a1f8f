"""The success curve: training time per checkpoint from the step log, and its plot."""

import os

import pytest
from PIL import Image

from positronic.evaluation.curve import CurvePoint, training_time_s, write_success_curve_png


def test_training_time_is_the_sum_of_step_times_up_to_the_checkpoint():
    metrics = [{'step': s, 'step_s': 0.5} for s in range(1, 11)]
    assert training_time_s(metrics, 4) == pytest.approx(2.0)
    assert training_time_s(metrics, 10) == pytest.approx(5.0)
    assert training_time_s(metrics, 0) == 0.0


def test_a_point_reports_its_rate_and_wilson_interval():
    point = CurvePoint(step=2000, train_s=600.0, successes=8, total=10).to_json()
    assert point['success_rate'] == pytest.approx(0.8)
    low, high = point['success_rate_ci95']
    assert 0.44 < low < 0.8 < high < 0.97  # Wilson 95% for 8/10 is about 49%-94%


def test_the_curve_is_drawn_to_a_png_and_nothing_else_is_left(tmp_path):
    points = [CurvePoint(1000, 300.0, 0, 10), CurvePoint(3000, 900.0, 7, 10), CurvePoint(2000, 600.0, 3, 10)]
    path = tmp_path / 'success_curve.png'
    write_success_curve_png(points, path, title='test')
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 200
    assert [p.name for p in tmp_path.iterdir()] == ['success_curve.png']
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would create it, not mkstemp's 0600
