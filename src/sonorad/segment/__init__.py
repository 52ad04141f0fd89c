"""Box-prompted lesion segmentation: a cohort's own masks train an assistant that proposes ROIs.

The modules read as the pipeline:

- boxes ``(x0, y0, x1, y1)`` are parsed, derived, jittered and checked by :mod:`sonorad.imaging.boxes`;
- :mod:`sonorad.segment.data`: the crop around a box, resized to the network's input, and back;
- :mod:`sonorad.segment.model`: the U-Net decoder on the EfficientNet-Lite0 encoder, :class:`Segmenter`;
- :mod:`sonorad.segment.train`: :func:`train_segmenter` (box jitter, patient-grouped validation);
- :mod:`sonorad.segment.predict`: :func:`propose_mask` (one image) and :func:`segment_cases` (a table);
- :mod:`sonorad.segment.baselines`: the box, the inscribed ellipse and GrabCut, for comparison;
- :mod:`sonorad.segment.metrics`: Dice and HD95 between masks;
- :mod:`sonorad.segment.io`: save as a state dict plus JSON; load without running any code.

See ``docs/segmentation.md``. Torch is imported only inside functions.
"""
