"""Id membership: the Arrow path answers as pandas' isin does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.id_sets import isin


@pytest.mark.parametrize("dtype", ["str", object, "string[pyarrow]"])
def test_isin_answers_as_pandas_does(dtype: object) -> None:
    ids = pd.Series(["a", "b", None, "c", "a", "é"], dtype=dtype)
    for values in (pd.Series(["a", "é"], dtype=dtype), ["c", "zz"], np.array(["b"], object),
                   pd.Series([], dtype=dtype), pd.Series(["a", None], dtype=object)):
        got = isin(ids, values)
        expected = ids.isin(pd.Series(values, dtype=object).dropna()).to_numpy(bool) & \
            ids.notna().to_numpy()
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == bool
