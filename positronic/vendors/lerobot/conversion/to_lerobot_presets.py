"""Dataset presets for ``--dataset=...``: raw datasets on disk, and raw datasets seen through a codec.

``encoded`` is what ``positronic-to-lerobot`` reads::

    --dataset.dataset.path=~/datasets/my_task_raw
    --dataset.codec=@positronic.vendors.lerobot.codecs.eepose_absolute   # the default
    --dataset.codec.image_size=96                                         # after --dataset.codec, if both given
"""

from pathlib import Path

import configuronic as cfn

from positronic.dataset import LocalDataset
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.conversion.encoded_dataset import EncodedDataset


def open_local(path: str | Path) -> LocalDataset:
    """The finished episodes of the raw dataset at ``path`` (``~`` expanded); NotADatasetError if it is missing."""
    return LocalDataset(Path(str(path)).expanduser())


local = cfn.config()(open_local)
"""A raw dataset on the local disk: ``--dataset.path=~/datasets/my_task_raw``."""

encoded = cfn.config(dataset=local, codec=eepose_absolute)(EncodedDataset)
"""A raw dataset through a codec: ``--dataset.dataset.path=... [--dataset.codec=@module.codec]``."""
