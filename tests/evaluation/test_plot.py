import numpy as np
from PIL import Image

from positronic.evaluation.plot import write_summary_png
from positronic.evaluation.results import IterationResult, RunSummary


def test_summary_png_is_a_real_image_written_atomically(tmp_path):
    times = list(np.arange(0, 5, 1 / 15))
    results = [
        IterationResult(
            0, 10, True, 1.0, 3.0, 75, scores=list(np.clip(np.array(times) / 3, 0, 1)), score_times_s=times
        ),
        IterationResult(1, 11, False, 0.2, None, 75, scores=[0.2] * len(times), score_times_s=times),
    ]
    path = tmp_path / 'summary.png'
    write_summary_png(RunSummary(results), path, threshold=1.0)
    with Image.open(path) as image:
        assert image.format == 'PNG' and image.size == (900, 700)
        pixels = np.asarray(image.convert('RGB'))
    assert (np.abs(pixels.astype(int) - [0x2A, 0x9D, 0x3F]).sum(axis=2) < 10).any()
    assert (np.abs(pixels.astype(int) - [0xD1, 0x49, 0x5B]).sum(axis=2) < 10).any()
    assert [p.name for p in tmp_path.iterdir()] == ['summary.png']
