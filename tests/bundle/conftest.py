"""Fixtures shared by the scoring tests: the small bundle loaded, its external cases, one case in memory."""

from __future__ import annotations

import pytest

from sonorad.bundle import load_bundle
from sonorad.imaging import load_roi


@pytest.fixture(scope="module")
def bundle(small_bundle):
    return load_bundle(small_bundle.path)


@pytest.fixture(scope="module")
def external(small_bundle):
    """The external cases as a new hospital would send them: no label column."""
    return small_bundle.table.loc[small_bundle.external_ids].drop(columns=["label"])


@pytest.fixture(scope="module")
def prediction(bundle, external, small_bundle):
    return bundle.predict(external, cache=small_bundle.cache)


@pytest.fixture(scope="module")
def one_case(small_bundle):
    """``one_case(case_id) -> (image, mask, values)``: a case of the small cohort read into memory."""
    def read(cid):
        row = small_bundle.table.loc[cid]
        image, mask = load_roi(row["image"], row["mask"], case_id=cid)
        values = {k: row[k] for k in small_bundle.variables}
        return image, mask, values

    return read
