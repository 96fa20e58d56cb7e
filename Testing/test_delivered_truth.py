"""The truth the post-treatment dose tests are judged against (conftest.py
``delivered_truth_gy``): the partition model the synthetic patient was built with, by hand.

A test helper is code too: a wrong truth would pass a wrong correction. It is checked here by
hand on round numbers, and against the phantom's own blur-free PET deep inside each structure
(two independent routes to the same concentration).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import delivered_truth_gy


def _truth(residual=0.0, lsf=0.0):
    return {"positions": [{"name": "a", "tumours": ["T"]}, {"name": "b", "tumours": []}],
            "volumes_ml": {"tumours": {"T": 10.0},
                           "territories": {"a": {"normal": 980.0}, "b": {"normal": 500.0}}},
            "y90_pet": {"administered_activity_gbq": {"a": 2.0, "b": 1.0},
                        "residual_fraction": residual, "lung_shunt_fraction": lsf,
                        "tnr": {"T": 3.0}}}


def test_partition_truth_by_hand_on_round_numbers():
    """Bugs caught: the tumours left out of the territory's volume (normal liver too hot), the
    TNR applied to the volume instead of the concentration, the density in kg/mL, one
    territory's activity given to another. By hand: territory a, 2 GBq over 980 mL + 3 x
    10 mL = 1010 mL: 2 x 50 / (1.0e-3 x 1010) = 99.0099 Gy, T 3 times that; b: 1 GBq over
    500 mL: 100 Gy (E = 50 J/GBq, rho = 1.0 g/mL)."""
    got = delivered_truth_gy(_truth(), 50.0, 1.0)
    assert got["normal liver (a)"] == pytest.approx(100.0 / 1.010, rel=1e-12)
    assert got["T"] == pytest.approx(300.0 / 1.010, rel=1e-12)
    assert got["normal liver (b)"] == pytest.approx(100.0, rel=1e-12)
    assert set(got) == {"normal liver (a)", "T", "normal liver (b)"}


@pytest.mark.parametrize("residual, lsf, factor", [(0.03, 0.0, 0.97), (0.0, 0.05, 0.95),
                                                   (0.03, 0.05, 0.97 * 0.95)])
def test_partition_truth_takes_off_the_residual_and_the_lung_shunt(residual, lsf, factor):
    """Bugs caught: the residual or the lung shunt not taken off, or added instead of
    multiplied (the lung share is of the implanted activity, the implant of the
    administered)."""
    got = delivered_truth_gy(_truth(residual, lsf), 50.0, 1.0)
    assert got["normal liver (b)"] == pytest.approx(100.0 * factor, rel=1e-12)


def test_partition_truth_matches_the_phantoms_blur_free_pet_inside_each_structure(
        small_phantom):
    """Bug caught: a truth that is not the activity the phantom put in (another residual,
    lung shunt, share or volume). Independent route: the phantom's PET without blur and
    noise, read at the centre of each structure (eroded by 2 voxels, away from the edges that
    the 4 mm grid mixes), in Bq/mL at the scan, decayed back to the administration over the
    4 h delay (64.1 h half-life) and turned into dose by local deposition: D = C x A0/A(t) x
    E / rho, with E = 49.67 J/GBq and rho = 1.03 g/mL. Within 1 % (the label volumes on the
    CT grid against the phantom's sub-voxel counts)."""
    from tareplanner.imaging.phantom import make_phantom, spec_for_size
    spec = spec_for_size("small", pet_fwhm_mm=0.0, pet_noise=False)
    ideal = make_phantom(spec)
    truth = ideal.truth
    want = delivered_truth_gy(truth, 49.67, 1.03)
    from tareplanner.imaging import anatomy as anat
    pet = ideal.pet
    delay_h = (datetime.fromisoformat(truth["y90_pet"]["acquisition_start"])
               - datetime.fromisoformat(truth["y90_pet"]["administration_time"])
               ).total_seconds() / 3600.0
    back = 2.0 ** (delay_h / 64.1)

    def on_pet(image):
        return sitk.GetArrayFromImage(sitk.Resample(image, pet, sitk.Transform(),
                                                    sitk.sitkNearestNeighbor, 0))
    anatomy, territories = on_pet(ideal.labels), on_pet(ideal.territories)
    values = sitk.GetArrayFromImage(pet).astype(float)
    masks = {t.name: anatomy == anat.FIRST_TUMOUR + i
             for i, t in enumerate(ideal.spec.anatomy.tumours)}
    for label, position in enumerate(truth["positions"], start=1):
        masks[f"normal liver ({position['name']})"] = ((anatomy == anat.LIVER)
                                                       & (territories == label))
    for name, gy in want.items():
        core = ndimage.binary_erosion(masks[name], iterations=2)
        assert core.sum() >= 5, name
        bq_ml = float(np.median(values[core]))
        dose = bq_ml * back * 1e-9 * 49.67 / (1.03 / 1000.0)
        assert dose == pytest.approx(gy, rel=0.01), name
    assert math.isclose(delay_h, 4.0)
