"""Protocol v1 serialization: msgpack with the numpy envelope.

Every WebSocket message is one msgpack object. numpy arrays and scalars travel in envelopes whose keys
are msgpack **bin** (bytes), not str:

- ``np.ndarray`` -> ``{b'__ndarray__': True, b'data': <C-order bytes>, b'dtype': '<f4', b'shape': [H, W, 3]}``
- numpy scalar  -> ``{b'__npgeneric__': True, b'data': <Python number>, b'dtype': '<i8'}``

``np.float64`` is a subclass of ``float`` and is packed as a plain msgpack float; any other ``Mapping``
packs as a map and tuples arrive as lists. Decoding never unpickles: only the numeric dtypes in
``ALLOWED_DTYPES`` are accepted, every array's shape must match its buffer exactly, and a message larger
than ``max_bytes`` is refused before it is parsed. Decoded arrays are read-only views on the buffers
msgpack decoded, so no array data is copied after parsing.
"""

import threading
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

NDARRAY = b'__ndarray__'
NPGENERIC = b'__npgeneric__'
DATA = b'data'
DTYPE = b'dtype'
SHAPE = b'shape'

DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""32 MiB: four 1920x1080 RGB uint8 frames (24.9 MB) plus state, with room to spare."""

MAX_NDIM = 32
"""The most dimensions an array on the wire may have."""

_ALLOWED_KINDS_SIZES = {'b': (1,), 'i': (1, 2, 4, 8), 'u': (1, 2, 4, 8), 'f': (2, 4, 8)}
ALLOWED_DTYPES: frozenset[np.dtype] = frozenset(
    np.dtype(f'{order}{kind}{size}')
    for kind, sizes in _ALLOWED_KINDS_SIZES.items()
    for size in sizes
    for order in ('<', '>')
)
"""bool, int8..int64, uint8..uint64, float16/32/64, in either byte order. Nothing else (no object, void,
complex, string, datetime) is packed or unpacked."""


class WireError(ValueError):
    """A message that cannot be packed or unpacked under protocol v1."""


class MessageTooLargeError(WireError):
    """A message over the size limit."""


_DTYPE_BY_STR = {dtype.str: dtype for dtype in ALLOWED_DTYPES}
"""The allowed dtypes by their ``dtype.str`` (what senders put in envelopes): a dict lookup per array instead of
parsing the string and comparing it with every allowed dtype."""
_STR_BY_DTYPE = {dtype: dtype.str for dtype in ALLOWED_DTYPES}
"""The envelope string of each allowed dtype (and of every dtype equal to one, such as ``=f8``); a lookup here is
several times cheaper than ``dtype.str``."""


def _checked_dtype(dtype_str: Any) -> np.dtype:
    known = _DTYPE_BY_STR.get(dtype_str) if type(dtype_str) is str else None
    if known is not None:
        return known
    if not isinstance(dtype_str, str):
        raise WireError(f'numpy envelope dtype must be a str such as "<f4", got {dtype_str!r}')
    try:
        dtype = np.dtype(dtype_str)
    except TypeError as e:
        raise WireError(f'numpy envelope has an unknown dtype {dtype_str!r}') from e
    if dtype not in _STR_BY_DTYPE:
        raise WireError(
            f'numpy envelope dtype {dtype_str!r} is not allowed; expected bool, int8..int64, uint8..uint64 '
            'or float16/32/64'
        )
    return dtype


SMALL_ARRAY_BYTES = 4096
"""Arrays up to this size are packed from a copy of their bytes, larger ones from a view of their memory."""


def _encode(obj: Any) -> Any:
    """msgpack ``default`` hook: numpy arrays and scalars into their envelopes, mappings into dicts."""
    if isinstance(obj, np.ndarray):
        dtype_str = _STR_BY_DTYPE.get(obj.dtype)
        if dtype_str is None:
            raise WireError(f'cannot send an array of dtype {obj.dtype.str!r} (shape {obj.shape})')
        if obj.nbytes <= SMALL_ARRAY_BYTES:
            data = obj.tobytes()  # C order; cheaper than a view for a small array
        else:
            data = memoryview(np.ascontiguousarray(obj).reshape(-1).view(np.uint8))
        return {NDARRAY: True, DATA: data, DTYPE: dtype_str, SHAPE: list(obj.shape)}
    if isinstance(obj, np.generic):
        dtype_str = _STR_BY_DTYPE.get(obj.dtype)
        if dtype_str is None:
            raise WireError(f'cannot send a numpy scalar of dtype {obj.dtype.str!r}')
        return {NPGENERIC: True, DATA: obj.item(), DTYPE: dtype_str}
    if isinstance(obj, Mapping):
        return dict(obj)
    raise WireError(f'cannot send a value of type {type(obj).__name__}: {obj!r:.80}')


def _decode_ndarray(envelope: dict) -> np.ndarray:
    """The array in ``envelope``, a map holding the NDARRAY key."""
    if len(envelope) != 4 or DATA not in envelope or DTYPE not in envelope or SHAPE not in envelope:
        raise WireError(
            f'ndarray envelope must have exactly the keys {NDARRAY, DATA, DTYPE, SHAPE}, got {list(envelope)}'
        )
    data, dtype_str, shape = envelope[DATA], envelope[DTYPE], envelope[SHAPE]
    dtype = _checked_dtype(dtype_str)
    if type(data) is not bytes:
        raise WireError(f'ndarray envelope data must be bin, got {type(data).__name__}')
    if type(shape) is not list or len(shape) > MAX_NDIM:
        raise _bad_shape(shape)
    size = dtype.itemsize
    for n in shape:
        if type(n) is not int or n < 0:
            raise _bad_shape(shape)
        size *= n
    if size != len(data):
        raise WireError(f'ndarray of shape {tuple(shape)} and dtype {dtype.str!r} needs {size} bytes, got {len(data)}')
    return np.ndarray(shape, dtype, data)


def _bad_shape(shape: Any) -> WireError:
    return WireError(f'ndarray envelope shape must be a list of at most {MAX_NDIM} non-negative ints, got {shape!r}')


def _decode_npgeneric(envelope: dict) -> np.generic:
    if set(envelope) != {NPGENERIC, DATA, DTYPE}:
        raise WireError(f'npgeneric envelope must have exactly the keys {NPGENERIC, DATA, DTYPE}, got {list(envelope)}')
    dtype = _checked_dtype(envelope[DTYPE])
    value = envelope[DATA]
    if type(value) not in (bool, int, float):
        raise WireError(f'npgeneric envelope data must be a number, got {type(value).__name__}')
    try:
        return dtype.type(value)
    except (OverflowError, ValueError, TypeError) as e:
        raise WireError(f'npgeneric value {value!r} does not fit dtype {dtype.str!r}') from e


def _decode(obj: dict) -> Any:
    """msgpack ``object_hook``: envelopes back into numpy; other maps unchanged."""
    if NDARRAY in obj:
        return _decode_ndarray(obj)
    if NPGENERIC in obj:
        return _decode_npgeneric(obj)
    return obj


_local = threading.local()


def _thread_packer() -> msgpack.Packer:
    """This thread's Packer. A Packer keeps its buffer between messages, so packing a large message does
    not grow (and page-fault) a fresh buffer each time."""
    packer = getattr(_local, 'packer', None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(default=_encode, use_bin_type=True)
    return packer


def pack(obj: Any, max_bytes: int | None = None) -> bytes:
    """One protocol message: ``obj`` (dicts, lists, str, numbers, bool, None, bytes, numpy) as msgpack bytes.

    Raises WireError for values protocol v1 cannot carry and MessageTooLargeError when the result exceeds
    ``max_bytes`` (no limit when None).
    """
    packer = _thread_packer()
    try:
        packed = packer.pack(obj)
    except WireError:
        packer.reset()
        raise
    except (TypeError, ValueError, OverflowError) as e:
        packer.reset()
        raise WireError(f'cannot pack message: {e}') from e
    if max_bytes is not None and len(packed) > max_bytes:
        raise MessageTooLargeError(f'message of {len(packed)} bytes exceeds the limit of {max_bytes} bytes')
    return packed


def unpack(data: bytes, max_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES) -> Any:
    """The object in one protocol message; numpy envelopes become read-only arrays viewing the decoded bin data.

    Raises MessageTooLargeError when ``data`` exceeds ``max_bytes`` (checked before parsing; no limit when
    None) and WireError for anything that is not one well-formed msgpack object with valid envelopes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f'a message must be bytes, got {type(data).__name__}')
    if max_bytes is not None and len(data) > max_bytes:
        raise MessageTooLargeError(f'message of {len(data)} bytes exceeds the limit of {max_bytes} bytes')
    try:
        return msgpack.unpackb(data, object_hook=_decode, raw=False, use_list=True, strict_map_key=True)
    except WireError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as e:
        raise WireError(f'malformed msgpack message ({type(e).__name__}: {e})') from e
