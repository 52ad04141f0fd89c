"""Feature extraction: PyRadiomics 2D features, the per-case cache, the extraction engine and ICC.

- :mod:`sonorad.features.radiomics`: parameters and PyRadiomics extraction of one case.
- :mod:`sonorad.features.store`: content-addressed per-case cache (:class:`FeatureCache`).
- :mod:`sonorad.features.engine`: tasks, cache keys, parallel workers (local or Dask) and failures
  recorded per case; shared by cohort extraction, ICC and the model bundle.
- :mod:`sonorad.features.extract`: cohort-level extraction (cohort table -> cases, parquet output)
  behind ``sonorad extract``.
- :mod:`sonorad.features.icc`: ICC(3,1) per feature between two readers' or perturbed masks,
  behind ``sonorad icc``.

Deep (CNN) features of a cohort are :func:`sonorad.deep.extractor.extract_deep`.

Only light modules are imported here; PyRadiomics, pandas and torch load when first used.
"""

from sonorad.features.radiomics import extract_case, load_params, params_hash
from sonorad.features.store import FeatureCache

__all__ = ["FeatureCache", "extract_case", "load_params", "params_hash"]
