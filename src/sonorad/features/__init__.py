"""Feature extraction: PyRadiomics 2D features, deep features, the per-case cache and ICC.

- :mod:`sonorad.features.radiomics`: parameters and PyRadiomics extraction of one case.
- :mod:`sonorad.features.store`: content-addressed per-case cache (:class:`FeatureCache`).
- :mod:`sonorad.features.extract`: cohort-level extraction (cache, parallel workers, failures,
  parquet output) behind ``sonorad extract``.
- :mod:`sonorad.features.icc`: ICC(3,1) per feature between two readers' or perturbed masks,
  behind ``sonorad icc``.
- :mod:`sonorad.features.deep`: CNN embeddings.

Only light modules are imported here; PyRadiomics, pandas and torch load when first used.
"""

from sonorad.features.radiomics import extract_case, load_params, params_hash
from sonorad.features.store import FeatureCache, file_digest

__all__ = ["FeatureCache", "extract_case", "file_digest", "load_params", "params_hash"]
