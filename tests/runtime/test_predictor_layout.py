import numpy as np
import pytest

from effnet.runtime.predictor import nchw_to_nhwc


@pytest.mark.parametrize("channels", [1, 3, 8])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_nchw_to_nhwc_is_a_contiguous_transpose(channels, dtype):
    array = (np.random.default_rng(0).random((2, channels, 5, 7)) * 200).astype(dtype)
    result = nchw_to_nhwc(array)
    np.testing.assert_array_equal(result, array.transpose(0, 2, 3, 1))
    assert result.flags.c_contiguous and result.dtype == dtype
