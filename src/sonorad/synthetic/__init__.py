"""Deterministic synthetic multicenter ultrasound cohorts with a known signal strength.

A cohort is written as real files: 8-bit gray PNG images, binary PNG lesion masks (0/255) and a
``cases.csv`` that follows the cohort-table contract (``case_id, patient_id, center, image, mask,
label`` plus ``split`` and the scenario's clinical / ultrasound variables). A second file,
``truth.csv``, records the hidden generative quantities per case (latent risk scores and lesion
traits) for checks and benchmarks; it is not a cohort table and must never be used as features.

How the label enters
--------------------
Labels are assigned first (a fixed number of positives per center, shuffled). Each patient then
gets latent risk scores, one per modality::

    z_imaging  = signal * imaging_effect  * (label - 0.5) + N(0, 1)
    z_clinical = signal * clinical_effect * (label - 0.5) + N(0, 1)

Lesion traits (contour irregularity and spiculation, margin blur, echo level, heterogeneity,
posterior shadowing / enhancement, micro-calcifications, size, aspect) are noisy functions of
``z_imaging``; the clinical variables are noisy functions of ``z_clinical`` (and, for the radiologist's
image-based descriptors, of the lesion traits). With ``signal=0`` every center has the same
prevalence and nothing that is generated depends on the label.

Everything random is drawn from ``numpy.random.SeedSequence`` children of ``seed``, keyed by the
patient and image index, so the same seed gives byte-identical files.
"""

from sonorad.synthetic.bmode import SyntheticCase, render_case
from sonorad.synthetic.cohort import CohortTable, make_cohort, simulate_case, simulate_table
from sonorad.synthetic.lesions import LesionShape, LesionTraits, lesion_mask, lesion_traits
from sonorad.synthetic.scenarios import SCENARIOS, CenterProfile, Scenario

__all__ = [
    "CenterProfile",
    "CohortTable",
    "SCENARIOS",
    "Scenario",
    "LesionShape",
    "LesionTraits",
    "SyntheticCase",
    "lesion_mask",
    "lesion_traits",
    "make_cohort",
    "render_case",
    "simulate_case",
    "simulate_table",
]
