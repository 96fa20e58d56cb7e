"""LSF, TNR and volumes on the synthetic patient against its ground truth.

Truth: LSF 6 %, MAA TNRs T1 3.2, T2 2.4, T3 1.8 (tareplanner/imaging/anatomy.py). On a
noise-free, blur-free SPECT on the CT grid the measurement must be exact to 1 %. System blur
(14 mm FWHM) spills liver counts into the lung base and tumour counts into normal liver:
the blur-explained error is measured on the noise-free blurred SPECT, and the noisy SPECT must
agree with that to within its Poisson noise. These are the measured values, without the
partial-volume correction (its tests: test_partial_volume.py).
"""

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.imaging.measure import LabelInputs, PositionImages, measure
from tareplanner.imaging.phantom import make_phantom, spec_for_size
from tareplanner.imaging.phantom_files import label_images
from tareplanner.imaging.readers import LoadedImage
from tareplanner.imaging.segmentation import (exclude_lung_base, lung_mass_kg, lungs_from_ct,
                                              territory_from_uptake, tumours_from_threshold,
                                              volume_ml)


def _loaded(image, units, modality):
    return LoadedImage(image=image, modality=modality, units=units, source="memory", sha256="")


def _measure_with_truth_labels(phantom, spect=None, margin_mm=0.0):
    labels = label_images(phantom)
    names = {k + 1: t.name for k, t in enumerate(phantom.spec.anatomy.tumours)}
    territories = sitk.GetArrayFromImage(labels["territories"])
    positions = []
    for i, terr in enumerate(phantom.spec.anatomy.territories, start=1):
        mask = sitk.GetImageFromArray((territories == i).astype(np.uint8))
        mask.CopyInformation(phantom.ct)
        positions.append(PositionImages(name=terr.name, territory=mask))
    return measure(_loaded(phantom.ct, "HU", "CT"),
                   _loaded(spect or phantom.spect, "counts", "NM"),
                   LabelInputs(liver=labels["liver"], tumours=labels["tumours"],
                               tumour_names=names, lungs=labels["lungs"]),
                   positions, lung_base_margin_mm=margin_mm,
                   partial_volume_correction=False)  # the measured values (test_partial_volume)


def _tnrs(measurement):
    return {t["name"]: t["tnr"] for p in measurement["positions"] for t in p["tumours"]}


@pytest.fixture(scope="module")
def ideal():
    spec = spec_for_size("small", spect_noise=False, spect_fwhm_mm=0.0, supersample=1,
                         spect_spacing_mm=(2.0, 2.0, 3.0), pet=False)
    return make_phantom(spec)


@pytest.fixture(scope="module")
def blurred():
    return make_phantom(spec_for_size("small", spect_noise=False, pet=False))


def test_ideal_spect_gives_truth_within_1_percent(ideal):
    m = _measure_with_truth_labels(ideal)
    assert m["lung_shunt"]["lung_shunt_fraction"] == pytest.approx(0.06, rel=0.01)
    for name, tnr in _tnrs(m).items():
        assert tnr == pytest.approx(ideal.truth["tnr_maa"][name], rel=0.01), name


def test_blur_explains_the_bias_and_noise_the_rest(small_phantom, blurred):
    noisy = _measure_with_truth_labels(small_phantom)
    clean = _measure_with_truth_labels(blurred)
    lsf_noisy = noisy["lung_shunt"]["lung_shunt_fraction"]
    lsf_clean = clean["lung_shunt"]["lung_shunt_fraction"]
    # blur moves liver counts into the lung base: LSF over-estimated (~6.6 % for 6 %)
    assert 0.06 < lsf_clean < 0.07
    # 4e6 counts: Poisson error of the lung counts ~0.2 %, of LSF far below 0.001
    assert lsf_noisy == pytest.approx(lsf_clean, abs=0.001)
    truth = small_phantom.truth["tnr_maa"]
    for name, tnr_clean in _tnrs(clean).items():
        assert tnr_clean < truth[name]  # spill-out lowers every TNR
        assert _tnrs(noisy)[name] == pytest.approx(tnr_clean, rel=0.03), name


def test_lung_base_margin_reduces_lsf(small_phantom):
    whole = _measure_with_truth_labels(small_phantom)
    margin = _measure_with_truth_labels(small_phantom, margin_mm=20.0)
    lsf_whole = whole["lung_shunt"]["lung_shunt_fraction"]
    lsf_margin = margin["lung_shunt"]["lung_shunt_fraction"]
    assert margin["lung_shunt"]["method"] == "spect-lung-base-excluded"
    assert lsf_margin < lsf_whole
    assert lsf_margin == pytest.approx(0.06, abs=0.003)  # closer to truth than whole lung
    assert margin["lung_shunt_whole_lung"]["lung_shunt_fraction"] == pytest.approx(lsf_whole)


def test_lungs_from_ct_and_lung_mass(small_phantom):
    truth = small_phantom.truth
    lungs = lungs_from_ct(small_phantom.ct)
    assert volume_ml(lungs) == pytest.approx(truth["volumes_ml"]["lungs"], rel=0.03)
    # densitovolumetry on the noisy CT: (HU + 1000)/1000 g/mL, truth from noise-free HU
    assert lung_mass_kg(small_phantom.ct, lungs) == pytest.approx(truth["lung_mass_kg"], rel=0.03)


def test_tumours_from_threshold(small_phantom):
    labels = label_images(small_phantom)
    found = tumours_from_threshold(small_phantom.ct, labels["liver"])
    found_arr = sitk.GetArrayFromImage(found)
    truth_arr = sitk.GetArrayFromImage(labels["tumours"])
    voxel_ml = float(np.prod(small_phantom.ct.GetSpacing())) / 1000
    for k, tumour in enumerate(small_phantom.spec.anatomy.tumours, start=1):
        overlap = np.bincount(found_arr[truth_arr == k])
        overlap[0] = 0
        label = int(np.argmax(overlap))
        assert label > 0, tumour.name
        measured = np.count_nonzero(found_arr == label) * voxel_ml
        expected = small_phantom.truth["volumes_ml"]["tumours"][tumour.name]
        assert measured == pytest.approx(expected, rel=0.03 if expected > 10 else 0.1), tumour.name


def test_territory_from_uptake_covers_the_liver(small_phantom):
    labels = label_images(small_phantom)
    perfused = territory_from_uptake(small_phantom.spect, labels["liver"], threshold_fraction=0.2)
    # both territories are perfused in the MAA study: uptake covers (almost) the whole liver
    assert volume_ml(perfused) == pytest.approx(small_phantom.truth["volumes_ml"]["liver"],
                                                rel=0.06)


def test_exclude_lung_base_removes_only_near_liver(small_phantom):
    labels = label_images(small_phantom)
    reduced = exclude_lung_base(labels["lungs"], labels["liver"], 20.0)
    assert 0 < volume_ml(reduced) < volume_ml(labels["lungs"])
    assert volume_ml(exclude_lung_base(labels["lungs"], labels["liver"], 0)) == \
        volume_ml(labels["lungs"])


def test_lungs_outside_spect_fov_warns(small_phantom):
    spect = small_phantom.spect
    size = list(spect.GetSize())
    cropped = sitk.RegionOfInterest(spect, [size[0], size[1], size[2] - 12], [0, 0, 0])
    m = _measure_with_truth_labels(small_phantom, spect=cropped)
    assert "lungs-outside-spect-fov" in {w["code"] for w in m["warnings"]}
    assert m["lung_shunt"]["lungs_in_fov_fraction"] < 0.99
