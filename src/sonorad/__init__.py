"""sonorad: ultrasound deep-learning radiomics, from images and masks to validated models.

Heavy dependencies (torch, PyRadiomics, SHAP) are imported where they are used, so importing
``sonorad`` and running ``sonorad --help`` stay fast.
"""

__version__ = "0.1.0"
