import msgpack
import numpy as np
import pytest

from positronic.offboard import wire

WHITELISTED = ['|b1', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '<f2', '<f4', '<f8', '>f4', '>i8']


def _envelope(data: bytes, dtype: str, shape: list) -> bytes:
    return msgpack.packb({b'__ndarray__': True, b'data': data, b'dtype': dtype, b'shape': shape}, use_bin_type=True)


@pytest.mark.parametrize('dtype', WHITELISTED)
def test_arrays_of_every_allowed_dtype_round_trip(dtype):
    array = (np.arange(24) % 2 if dtype == '|b1' else np.arange(24)).astype(dtype).reshape(2, 3, 4)
    decoded = wire.unpack(wire.pack({'x': array}))['x']
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, array)


def test_ndarray_envelope_has_bin_keys_dtype_str_and_c_order_bytes():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(wire.pack({'x': array}), raw=False)['x']
    assert raw == {b'__ndarray__': True, b'data': array.tobytes(), b'dtype': '<f4', b'shape': [2, 3]}


def test_non_contiguous_arrays_travel_in_c_order():
    fortran = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    strided = np.arange(20, dtype=np.uint8).reshape(4, 5)[:, ::2]
    decoded = wire.unpack(wire.pack([fortran, strided]))
    np.testing.assert_array_equal(decoded[0], fortran)
    np.testing.assert_array_equal(decoded[1], strided)


def test_decoded_arrays_are_read_only_views_without_extra_copies():
    decoded = wire.unpack(wire.pack({'image': np.ones((480, 480, 3), np.uint8)}))['image']
    assert not decoded.flags.writeable
    assert not decoded.flags.owndata
    with pytest.raises(ValueError):
        decoded[0, 0, 0] = 2


def test_numpy_scalars_use_the_npgeneric_envelope_but_float64_is_a_plain_float():
    packed = wire.pack({'f64': np.float64(1.5), 'f32': np.float32(2.5), 'i64': np.int64(-3), 'b': np.bool_(True)})
    raw = msgpack.unpackb(packed, raw=False)
    assert raw['f64'] == 1.5 and isinstance(raw['f64'], float)
    assert raw['f32'] == {b'__npgeneric__': True, b'data': 2.5, b'dtype': '<f4'}
    assert raw['i64'] == {b'__npgeneric__': True, b'data': -3, b'dtype': '<i8'}
    decoded = wire.unpack(packed)
    assert type(decoded['f32']) is np.float32 and decoded['f32'] == 2.5
    assert type(decoded['i64']) is np.int64 and decoded['i64'] == -3
    assert type(decoded['b']) is np.bool_ and decoded['b']


def test_zero_dimensional_and_empty_arrays_round_trip():
    decoded = wire.unpack(wire.pack({'scalar': np.array(7, np.int32), 'empty': np.zeros((0, 3), np.float32)}))
    assert decoded['scalar'].shape == () and decoded['scalar'] == 7
    assert decoded['empty'].shape == (0, 3)


def test_mappings_pack_as_maps_and_tuples_arrive_as_lists():
    from types import MappingProxyType

    decoded = wire.unpack(wire.pack({'m': MappingProxyType({'a': 1}), 't': (1, 'two')}))
    assert decoded == {'m': {'a': 1}, 't': [1, 'two']}


@pytest.mark.parametrize('dtype', ['|O', '|V8', '<c8', '<c16', '<U3', '|S3', '<M8[ns]', '<m8[s]', '<f16'])
def test_unpack_refuses_dtypes_outside_the_whitelist(dtype):
    with pytest.raises(wire.WireError, match=r'not allowed|unknown dtype'):
        wire.unpack(_envelope(b'\0' * 16, dtype, [1]))


def test_pickled_object_arrays_are_never_unpickled():
    import pickle

    payload = pickle.dumps([{'evil': True}])
    with pytest.raises(wire.WireError):
        wire.unpack(_envelope(payload, '|O', [1]))


@pytest.mark.parametrize(
    'dtype, shape',
    [(np.dtype(object), (2,)), (np.dtype(np.complex64), (2,)), (np.dtype('U4'), (2,))],
)
def test_pack_refuses_arrays_outside_the_whitelist(dtype, shape):
    with pytest.raises(wire.WireError, match='cannot send'):
        wire.pack({'x': np.zeros(shape, dtype=dtype)})


def test_pack_refuses_arbitrary_python_objects():
    with pytest.raises(wire.WireError, match='cannot send a value of type'):
        wire.pack({'x': object()})


@pytest.mark.parametrize(
    'data, shape, match',
    [
        (b'\0' * 10, [3], 'needs 12 bytes, got 10'),
        (b'\0' * 16, [2, 3], 'needs 24 bytes, got 16'),
        (b'\0' * 4, [-1], 'non-negative ints'),
        (b'\0' * 4, [1.0], 'non-negative ints'),
        (b'\0' * 4, 'x', 'non-negative ints'),
        (b'\0' * 4, [1] * 40, 'at most 32'),
        (b'', [2**32, 2**32], 'needs'),
    ],
)
def test_unpack_checks_shapes_against_the_buffer(data, shape, match):
    with pytest.raises(wire.WireError, match=match):
        wire.unpack(_envelope(data, '<f4', shape))


def test_unpack_refuses_envelopes_with_missing_or_extra_keys():
    with pytest.raises(wire.WireError, match='exactly the keys'):
        wire.unpack(msgpack.packb({b'__ndarray__': True, b'data': b'\0\0\0\0', b'dtype': '<f4'}))
    with pytest.raises(wire.WireError, match='exactly the keys'):
        wire.unpack(msgpack.packb({b'__npgeneric__': True, b'data': 1, b'dtype': '<i4', b'x': 0}))


def test_unpack_refuses_npgeneric_values_that_do_not_fit():
    with pytest.raises(wire.WireError, match='does not fit'):
        wire.unpack(msgpack.packb({b'__npgeneric__': True, b'data': 300, b'dtype': '|u1'}))
    with pytest.raises(wire.WireError, match='must be a number'):
        wire.unpack(msgpack.packb({b'__npgeneric__': True, b'data': 'x', b'dtype': '<i4'}))


@pytest.mark.parametrize('data', [b'', b'\xc1', b'\x92\x01', msgpack.packb([1]) + b'\x00', b'\x91' * 5000 + b'\xc0'])
def test_unpack_refuses_malformed_msgpack(data):
    with pytest.raises(wire.WireError, match='malformed msgpack'):
        wire.unpack(data)


def test_size_limits_are_enforced_on_both_sides():
    message = {'image': np.zeros((100, 100, 3), np.uint8)}
    packed = wire.pack(message)
    with pytest.raises(wire.MessageTooLargeError, match=f'{len(packed)} bytes exceeds the limit of 1000 bytes'):
        wire.pack(message, max_bytes=1000)
    with pytest.raises(wire.MessageTooLargeError):
        wire.unpack(packed, max_bytes=len(packed) - 1)
    assert wire.unpack(packed, max_bytes=len(packed))['image'].shape == (100, 100, 3)


def test_default_limit_fits_four_1080p_frames_and_state():
    frames = {f'image.{i}': np.zeros((1080, 1920, 3), np.uint8) for i in range(4)}
    frames['robot_state.q'] = np.zeros(7, np.float32)
    assert len(wire.pack(frames, max_bytes=wire.DEFAULT_MAX_MESSAGE_BYTES)) < wire.DEFAULT_MAX_MESSAGE_BYTES
