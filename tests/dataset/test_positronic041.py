"""Compatibility with Positronic's own reader and writer (PyPI ``positronic==0.4.1``, in a side environment).

Skipped unless POSITRONIC041_PYTHON names an interpreter with positronic 0.4.1. Its dataset modules need
only part of its dependency tree; an environment that is enough:

    python -m venv /tmp/venv-positronic041
    /tmp/venv-positronic041/bin/pip install --no-deps positronic==0.4.1 positronic-eval-vocabulary==0.6.0 \
        positronic-wire==0.12.0 positronic-model-server==0.3.1 pos3 pyyaml coloredlogs humanfriendly \
        opentelemetry-api boto3 botocore s3transfer jmespath python-dateutil six urllib3 typing_extensions \
        msgpack websockets tqdm
    /tmp/venv-positronic041/bin/pip install numpy pyarrow av
"""

import os
import pickle
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from positronic.dataset import LocalDataset, LocalDatasetWriter

from .conftest import assert_frame, frame_image

pytestmark = pytest.mark.positronic041

FRAMES = 40


def run_side(python: Path, script: str, cwd: Path) -> None:
    """Run ``script`` in the side interpreter, away from this checkout so its own ``positronic`` is imported."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    done = subprocess.run(
        [str(python), '-c', textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_positronic_041_reads_our_dataset(positronic041_python, tmp_path):
    root = tmp_path / 'ours'
    writer = LocalDatasetWriter(root)
    for e in range(2):
        with writer.new_episode() as ep:
            for i in range(FRAMES):
                ep.append('robot_state.q', np.arange(7, dtype=np.float32) * 0.1 + i + e, 1_000_000 + 2_000 * i)
                ep.append('robot_commands.pose', np.linspace(0, 1, 7) + i, 1_000_500 + 4_000 * i)
                ep.append('grip', i / FRAMES, 1_000_700 + 2_000 * i)
                ep.append('step', i, 1_000_000 + 2_000 * i)
                ep.append('phase', f'phase {i % 3}', 1_000_000 + 2_000 * i)
                ep.append('image.wrist', frame_image(i + e), 1_000_000 + 3_000 * i)
            ep.set_static('task', f'stack {e}')
            ep.set_static('cfg', {'fps': 15, 'gains': [1.5, 2.0], 'sim': True})

    dump = tmp_path / 'dump.pkl'
    run_side(
        positronic041_python,
        f"""
        import pickle
        from pathlib import Path
        import numpy as np
        from pimm.time import Time
        from positronic.dataset.local_dataset import LocalDataset

        out = []
        for ep in LocalDataset(Path({str(root)!r})):
            signals = {{}}
            for name, sig in ep.signals.items():
                values = sig.values()
                signals[name] = {{
                    'timestamps': np.asarray(sig.timestamps('recorded')),
                    'values': [np.array(v) for v in values],
                }}
            q_at, q_ts = ep.signals['robot_state.q'].time[Time(recorded=1_005_000)]
            out.append({{'static': dict(ep.static), 'signals': signals, 'q_at': (np.array(q_at), q_ts['recorded'])}})
        pickle.dump(out, open({str(dump)!r}, 'wb'))
        """,
        tmp_path,
    )
    theirs = pickle.loads(dump.read_bytes())
    ours = LocalDataset(root)
    assert len(theirs) == len(ours) == 2
    for e, (episode, seen) in enumerate(zip(ours, theirs, strict=True)):
        assert seen['static'] == {'task': f'stack {e}', 'cfg': {'fps': 15, 'gains': [1.5, 2.0], 'sim': True}}
        assert sorted(seen['signals']) == sorted(episode.signals)
        for name, signal in episode.signals.items():
            np.testing.assert_array_equal(seen['signals'][name]['timestamps'], signal.timestamps)
            values = seen['signals'][name]['values']
            assert len(values) == FRAMES
            if name == 'image.wrist':
                for i, frame in enumerate(values):
                    assert_frame(frame, i + e, FRAMES + 1)
                    assert np.abs(frame.astype(int) - signal[i][0]).max() <= 2
            else:
                for i, value in enumerate(values):
                    assert value.tolist() == np.asarray(signal[i][0]).tolist()
                    assert value.dtype == np.asarray(signal[i][0]).dtype or name == 'phase'
        q_at, q_ts = seen['q_at']
        assert q_ts == 1_004_000
        np.testing.assert_array_equal(q_at, episode['robot_state.q'].time[1_005_000][0])


def test_we_read_a_dataset_written_by_positronic_041(positronic041_python, tmp_path):
    root = tmp_path / 'theirs'
    run_side(
        positronic041_python,
        f"""
        from pathlib import Path
        import numpy as np
        from pimm.time import Time
        from positronic.dataset.local_dataset import LocalDatasetWriter

        def frame_image(index, height=48, width=64):
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[..., 0] = (index % 32) * 8 + 4
            image[..., 1] = (index // 32) * 24 % 240 + 8
            image[..., 2] = 255 - (index % 32) * 8
            return image

        with LocalDatasetWriter(Path({str(root)!r})).new_episode() as ep:
            for i in range({FRAMES}):
                t = Time(**{{'harness.world': 2_000 + 100 * i, 'emitted.wall': 9_000_000 + 5 * i}})
                ep.append('robot_state.ee_pose', np.arange(7.0) + i, t)
                ep.append('grip', i / 10, t)
                if i % 2 == 0:
                    ep.append('image.exterior', frame_image(i // 2), t)
            ep.set_static('task', 'stack the cubes')
        """,
        tmp_path,
    )
    episode = LocalDataset(root)[0]
    assert episode['task'] == 'stack the cubes'
    assert sorted(episode.signals) == ['grip', 'image.exterior', 'robot_state.ee_pose']
    pose = episode['robot_state.ee_pose']
    np.testing.assert_array_equal(pose.timestamps, 2_000 + 100 * np.arange(FRAMES))
    np.testing.assert_array_equal(pose.values, np.arange(7.0) + np.arange(FRAMES)[:, None])
    assert episode['grip'].time[2_250] == (pytest.approx(0.2), 2_200)
    camera = episode['image.exterior']
    np.testing.assert_array_equal(camera.timestamps, 2_000 + 200 * np.arange(FRAMES // 2))
    for i, (frame, _) in enumerate(camera):
        assert_frame(frame, i, FRAMES // 2)
    assert episode.start_ts == 2_000 and episode.last_ts == 2_000 + 100 * (FRAMES - 1)
