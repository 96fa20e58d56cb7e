"""Realistic SPECT model (imaging/spect_simulation.py, extra ``realistic-spect``).

The imaging tests need PyTomography and torch and are skipped without them; the expected
values are computed here by hand from physics (attenuation of a uniform cylinder, the
geometric resolution of a parallel-hole collimator), not by the code under test.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import integrate

from tareplanner.imaging.grid import Grid
from tareplanner.imaging.spect_simulation import (SpectProtocol, scatter_estimate,
                                                  scatter_window_counts, settings)

REASON = ("needs the optional extra 'realistic-spect' (PyTomography, torch): "
          "pip install -e '.[realistic-spect]'")


@pytest.fixture
def extra():
    pytest.importorskip("pytomography", reason=REASON)
    pytest.importorskip("torch", reason=REASON)
    from tareplanner.imaging import spect_simulation
    return spect_simulation


def _cylinder(spacing_mm, n_xy, n_z, semi_axes_mm, z_slices):
    """Uniform elliptic cylinder (axis along z, centred on the grid) on a small grid."""
    low = (-n_xy * spacing_mm / 2, -n_xy * spacing_mm / 2, 0.0)
    high = (n_xy * spacing_mm / 2, n_xy * spacing_mm / 2, n_z * spacing_mm)
    grid = Grid.covering(low, high, (spacing_mm,) * 3)
    z, y, x = grid.points_mm()
    a, b = semi_axes_mm
    inside_xy = (x / a) ** 2 + (y / b) ** 2 <= 1.0
    zi = np.arange(n_z)[:, None, None]
    inside = np.broadcast_to(inside_xy, grid.shape_zyx) & \
        np.broadcast_to((zi >= z_slices[0]) & (zi < z_slices[1]), grid.shape_zyx)
    return grid, inside


def _mean_disk_survival(radius_cm: float, mu_per_cm: float) -> float:
    """Mean over a uniform disk of exp(-mu s), s = path to its edge towards the detector:
    a chord at offset u has length L(u) = 2 sqrt(R^2 - u^2); integrating exp(-mu s) along it
    gives (1 - exp(-mu L)) / mu."""
    def chord(u):
        length = 2.0 * math.sqrt(max(radius_cm ** 2 - u ** 2, 0.0))
        return (1.0 - math.exp(-mu_per_cm * length)) / mu_per_cm
    value, _ = integrate.quad(chord, -radius_cm, radius_cm)
    return value / (math.pi * radius_cm ** 2)


def test_primary_counts_follow_activity_sensitivity_time_and_attenuation(extra):
    """Bugs caught: counts not scaled by activity x sensitivity x time per view x views, the
    attenuation map in 1/mm instead of 1/cm (or not applied, or applied twice), counts lost by
    the projector. Expected: hand calculation for a uniform water cylinder (radius from its
    voxel area), mean survival = (1/(pi R^2)) * integral of (1 - exp(-mu L(u)))/mu du."""
    spacing = 4.42
    grid, inside = _cylinder(spacing, 48, 10, (80.0, 80.0), (2, 8))
    total_mbq = 20.0
    activity = np.where(inside, total_mbq / inside.sum(), 0.0)
    p = settings()["nuclides"]["Tc-99m"]
    mu_water = p["hu_to_mu_per_cm"]["water"]          # 0.1538 /cm at 140 keV
    views, seconds = 24, 20.0
    protocol = SpectProtocol(nuclide="Tc-99m", projections=views, seconds_per_projection=seconds,
                             iterations=1, subsets=4, scatter=False, noise=False)
    expected_unattenuated = total_mbq * p["sensitivity_cps_per_mbq"] * seconds * views

    air = extra.simulate_spect(activity, np.zeros(grid.shape_zyx), grid, protocol)
    assert air.unattenuated_counts == pytest.approx(expected_unattenuated, rel=1e-9)
    assert air.primary_counts == pytest.approx(expected_unattenuated, rel=0.01)

    water = extra.simulate_spect(activity, np.where(inside, mu_water, 0.0), grid, protocol)
    area_cm2 = inside[4].sum() * (spacing / 10.0) ** 2
    survival = _mean_disk_survival(math.sqrt(area_cm2 / math.pi), mu_water)
    assert 0.35 < survival < 0.5                    # 16 cm diameter of water, 140 keV
    assert water.primary_counts == pytest.approx(expected_unattenuated * survival, rel=0.03)


def test_attenuation_correction_restores_a_uniform_elliptic_cylinder(extra):
    """Bugs caught: the attenuation map used in the reconstruction misaligned with the activity
    (x and y swapped: an elliptic cylinder makes that visible), attenuation correction missing
    (the centre of a 15 x 11 cm water cylinder would be depressed by tens of per cent), the
    reconstruction not scaled back to counts of the whole acquisition. Expected: a uniform
    cylinder (truth) and total counts = activity x sensitivity x time (hand calculation)."""
    spacing = 4.42
    grid, inside = _cylinder(spacing, 48, 10, (75.0, 55.0), (2, 8))
    total_mbq = 20.0
    activity = np.where(inside, total_mbq / inside.sum(), 0.0)
    p = settings()["nuclides"]["Tc-99m"]
    mu = np.where(inside, p["hu_to_mu_per_cm"]["water"], 0.0)
    views, seconds = 60, 20.0
    protocol = SpectProtocol(nuclide="Tc-99m", projections=views, seconds_per_projection=seconds,
                             iterations=6, subsets=6, scatter=False, noise=False)
    result = extra.simulate_spect(activity, mu, grid, protocol)
    img = sitk.GetArrayFromImage(result.image).astype(float)
    z, y, x = grid.points_mm()
    r = np.sqrt((x / 75.0) ** 2 + (y / 55.0) ** 2)      # elliptic radius, 1 at the edge
    mid = img[4:6]
    centre = mid[:, (r < 0.3)[0]].mean()
    ring = mid[:, ((r > 0.45) & (r < 0.7))[0]].mean()
    assert centre / ring == pytest.approx(1.0, abs=0.05)
    expected = total_mbq * p["sensitivity_cps_per_mbq"] * seconds * views
    assert img.sum() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("distance_mm", [100.0, 250.0])
def test_line_source_projection_width_is_the_lehr_geometric_resolution(extra, distance_mm):
    """Bugs caught: wrong collimator or photon energy passed to the projector, hole sizes in
    mm read as cm, intrinsic resolution missing, orbit radius not the detector distance.
    Expected (Cherry, Sorenson & Phelps, Physics in Nuclear Medicine, ch. 14): R_col = d (L_e +
    z) / L_e with SY-LEHR holes d = 1.11 mm, L = 24.05 mm, L_e = L - 2/mu_Pb, mu_Pb(140.5 keV)
    = 28.3 /cm (NIST), combined in quadrature with 3.8 mm intrinsic: 6.99 mm at 10 cm."""
    spacing = 1.0
    n = 61
    low = (-n / 2, -n / 2, 0.0)
    grid = Grid.covering(low, (n / 2, n / 2, 5.0), (spacing,) * 3)
    activity = np.zeros(grid.shape_zyx)
    activity[:, n // 2, n // 2] = 1.0                # line source along z through the axis
    # the orbit is the source voxel's corner (0.5 mm) plus the clearance
    clearance = distance_mm - 0.5 * spacing
    protocol = SpectProtocol(nuclide="Tc-99m", projections=4, iterations=1, subsets=1,
                             scatter=False, noise=False, orbit_clearance_mm=clearance)

    import torch
    p = protocol.resolved()
    radii = extra.contour_radii_mm(activity.sum(axis=0).T > 0, spacing, np.array([0.0]),
                                   clearance)
    assert radii[0] == pytest.approx(distance_mm)
    obj = np.transpose(activity, (2, 1, 0))
    h = extra._system_matrix(np.zeros_like(obj), spacing / 10.0, obj.shape, [0.0],
                             radii / 10.0, p, attenuation=False, psf=True)
    with torch.no_grad():
        proj = h.forward(extra._to_torch(obj)).cpu().numpy()[0]
    profile = proj[:, 2]
    u = (np.arange(n) - n // 2) * spacing
    sigma = math.sqrt((profile * u ** 2).sum() / profile.sum())
    l_eff = 24.05 - 2.0 / 2.83
    expected = math.hypot(1.11 * (l_eff + distance_mm) / l_eff, 3.8)
    assert 2.0 * math.sqrt(2.0 * math.log(2.0)) * sigma == pytest.approx(expected, rel=0.03)


def test_window_scatter_estimate_is_the_tew_formula():
    """Bugs caught: window widths or the triangle factor of the triple-energy-window method
    wrong, so that the scatter subtracted in the reconstruction is not the scatter simulated.
    Expected (Ogawa et al., IEEE Trans Med Imaging 1991;10:408): S = (C_lower / w_lower) x
    w_peak / 2 for Tc-99m (upper window empty); with a 28.1 keV photopeak and a 7.05 keV lower
    window, a photopeak scatter of 1000 counts puts 2 x 1000 x 7.05 / 28.1 = 501.8 counts in the
    lower window."""
    p = SpectProtocol(nuclide="Tc-99m").resolved()
    scatter = np.full((2, 8, 8), 1000.0)
    windows = scatter_window_counts(scatter, p)
    assert set(windows) == {"lower"}
    assert windows["lower"][0, 0, 0] == pytest.approx(2 * 1000 * 7.05 / 28.1, rel=1e-3)
    estimate = scatter_estimate(windows, p, (4.42, 4.42))
    np.testing.assert_allclose(estimate, scatter, rtol=1e-9)
    ho = SpectProtocol(nuclide="Ho-166").resolved()
    windows = scatter_window_counts(scatter, ho)
    assert set(windows) == {"upper"}
    np.testing.assert_allclose(scatter_estimate(windows, ho, (4.42, 4.42)), scatter, rtol=1e-9)


def test_importing_the_model_needs_neither_pytomography_nor_torch():
    """Bug caught: a top-level import of torch or PyTomography, which would make the default
    install (without the extra) fail on import of the package."""
    code = ("import sys, tareplanner.imaging.spect_simulation, tareplanner.imaging.phantom, "
            "tareplanner.cli.main; "
            "print(sorted(m for m in ('torch', 'pytomography') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_cli_names_the_missing_extra(tmp_path, monkeypatch, capsys):
    """Bug caught: ``--spect-model realistic`` without the extra crashing with an ImportError
    (or writing a Gaussian phantom silently) instead of a clear input error, exit status 2,
    naming the extra and writing nothing."""
    from tareplanner.cli.main import main
    from tareplanner.imaging import spect_simulation

    monkeypatch.setattr(spect_simulation, "extra_available", lambda: False)
    out = tmp_path / "patient"
    code = main(["phantom", str(out), "--size", "small", "--spect-model", "realistic"])
    assert code == 2
    err = capsys.readouterr().err
    assert "realistic-spect" in err and "--spect-model" in err
    assert not out.exists()
    assert main(["phantom", str(tmp_path / "p2"), "--spect-model", "monte-carlo"]) == 2


def test_phantom_hands_each_study_to_the_realistic_model(monkeypatch):
    """Bugs caught: ``spect_model="realistic"`` silently giving the Gaussian SPECT, the Ho-166
    scout imaged as Tc-99m (or with the MAA activity), the CT not passed for the attenuation
    correction, the default model changed. Expected: the spec's own values (150 MBq MAA,
    250 MBq scout) and the phantom's timing (administration 1 h before the work-up, SPECT 40
    and 50 min after it)."""
    from tareplanner.imaging import phantom as ph
    from tareplanner.imaging import spect_simulation

    calls = []

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    def fake(spec, grid, relative, **kwargs):
        calls.append(kwargs)
        return Result(grid)

    monkeypatch.setattr(spect_simulation, "phantom_spect", fake)
    assert ph.PhantomSpec().spect_model == "gaussian"
    spec = ph.spec_for_size("small", spect_model="realistic", pet=False, ho166_scout=True)
    phantom = ph.make_phantom(spec)
    assert [c["nuclide"] for c in calls] == ["Tc-99m", "Ho-166"]
    assert [c["administered_mbq"] for c in calls] == [150.0, 250.0]
    assert [c["delay_h"] for c in calls] == pytest.approx([100 / 60, 110 / 60])
    assert all(c["ct"] is phantom.ct for c in calls)
    assert phantom.truth["spect_model"] == "realistic"
    with pytest.raises(ValueError, match="spect_model"):
        ph.make_phantom(ph.spec_for_size("small", spect_model="monte-carlo", pet=False))


# ------------------------------------------------------------------ the IEC phantom

def test_iec_phantom_hands_its_activity_to_the_realistic_model(monkeypatch):
    """Bugs caught: ``phantom --iec --spect-model realistic`` imaging the wrong activity
    (kBq/mL taken as MBq per voxel, the lung insert filled, a sphere lost), the wrong
    nuclide, no CT for the attenuation correction, or a truth whose counts per MBq is not
    the realistic camera's. Expected by hand: the standard's volumes (D-shaped interior: a
    half disc of radius 147 mm and a 294 x 77 mm rectangle, 180 mm long, less the 50 mm lung
    insert; spheres of 10 ... 37 mm, pi d^3 / 6) times the concentrations; counts per MBq =
    12 cps/MBq x 20 s x 120 views for Ho-166 (data/spect_simulation.json's protocol, as
    docs/imaging.md tabulates it)."""
    from tareplanner.imaging import iec_phantom, spect_simulation
    from tareplanner.imaging.iec_phantom import IecSpec, make_iec_phantom

    calls = []

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    def fake(spec, grid, activity_mbq, ct, mu_true_per_cm):
        calls.append({"nuclide": spec.nuclide, "mbq": float(activity_mbq.sum()), "ct": ct,
                      "spacing": grid.spacing_mm, "mu": mu_true_per_cm})
        return Result(grid)

    monkeypatch.setattr(spect_simulation, "iec_spect", fake)
    made = make_iec_phantom(IecSpec(nuclide="Ho-166", model="realistic", sphere_kbq_ml=160.0,
                                    background_kbq_ml=20.0))
    spheres_ml = sum(math.pi * d ** 3 / 6 for d in (10, 13, 17, 22, 28, 37)) / 1000.0
    body_ml = (math.pi * 147.0 ** 2 / 2 + 294.0 * 77.0 - math.pi * 25.0 ** 2) * 180.0 / 1000.0
    expected_mbq = (160.0 * spheres_ml + 20.0 * (body_ml - spheres_ml)) / 1000.0
    (call,) = calls
    assert call["nuclide"] == "Ho-166" and call["ct"] is made["ct"]
    assert call["mbq"] == pytest.approx(expected_mbq, rel=0.01)
    assert call["spacing"] == pytest.approx((4.42, 4.42, 4.42))
    # the attenuating phantom: water (mu 0.1837 /cm at 80.6 keV, docs/imaging.md) inside,
    # air around it
    assert call["mu"].max() == pytest.approx(0.1837, rel=0.01) and call["mu"].min() < 0.01
    assert made["truth"]["calibration"]["counts_per_mbq"] == pytest.approx(12.0 * 20 * 120)
    assert made["truth"]["psf"]["model"] == "realistic"
    with pytest.raises(ValueError, match="Y-90 PET"):
        make_iec_phantom(IecSpec(modality="PET", nuclide="Ho-166", model="realistic"))
    assert iec_phantom.IecSpec().model == "gaussian"


@pytest.mark.parametrize("extra_args, message", [
    (["--modality", "PET", "--nuclide", "Ho-166"], "or a PET of Y-90 (got PET Ho-166)"),
    (["--fwhm-mm", "10"], "without --fwhm-mm"),
    (["--no-blur"], "without --fwhm-mm, --tail-fraction or --no-blur"),
])
def test_iec_realistic_refuses_what_it_cannot_image(tmp_path, capsys, extra_args, message):
    """Bug caught: a realistic IEC phantom asked for a PET of another nuclide than Y-90 or
    with a Gaussian's options
    silently written as the Gaussian model (a camera then calibrated on the wrong images):
    exit status 2, the option named, nothing written."""
    from tareplanner.cli.main import main
    out = tmp_path / "iec"
    assert main(["phantom", str(out), "--iec", "--spect-model", "realistic",
                 *extra_args]) == 2
    err = capsys.readouterr().err
    assert "--spect-model" in err and message in err
    assert not out.exists()


def test_iec_realistic_without_the_extra_names_it(tmp_path, monkeypatch, capsys):
    """Bug caught: ``phantom --iec --spect-model realistic`` without PyTomography crashing
    with an ImportError instead of naming the extra (exit 2, nothing written)."""
    from tareplanner.cli.main import main
    from tareplanner.imaging import spect_simulation
    monkeypatch.setattr(spect_simulation, "extra_available", lambda: False)
    out = tmp_path / "iec"
    assert main(["phantom", str(out), "--iec", "--spect-model", "realistic"]) == 2
    assert "realistic-spect" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_camera_calibrated_on_the_realistic_iec_phantom(extra, tmp_path):
    """Bug caught: the realistic IEC phantom imaged with another protocol than the patient's
    (its counts per MBq not the camera's), or a calibration that cannot read it (spheres not
    found in an OSEM image with its noise and edge overshoot). Truth: counts per MBq =
    89 cps/MBq x 20 s x 120 views (data/spect_simulation.json's protocol; attenuation and
    scatter corrected, so within 5 %); the 37 mm sphere's recovery measured and modelled
    agree (within 0.05); a resolution between the collimator's 7 mm at 10 cm and the
    Gaussian model's 14 mm (docs/imaging.md: the OSEM resolution is neither)."""
    import json

    from tareplanner.cli.main import main
    iec = tmp_path / "iec"
    assert main(["phantom", str(iec), "--iec", "--spect-model", "realistic",
                 "--sphere-kbq-ml", "160", "--background-kbq-ml", "20"]) == 0
    camera = tmp_path / "camera.json"
    assert main(["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                 str(iec / "image.nii.gz"), "--nuclide", "Tc-99m", "--sphere-kbq-ml", "160",
                 "--background-kbq-ml", "20", "-o", str(camera)]) == 0
    cam = json.loads(camera.read_text())
    assert cam["calibration"]["counts_per_mbq"] == pytest.approx(89.0 * 20 * 120, rel=0.05)
    largest = cam["spheres"][-1]
    assert largest["diameter_mm"] == 37
    assert largest["recovery_measured"] == pytest.approx(largest["recovery_model"], abs=0.05)
    assert 7.0 < cam["psf"]["fwhm_mm"] < 14.0


def _record_protocols(monkeypatch, parameter: str) -> list:
    """A stand-in for the realistic SPECT simulation that records (nuclide, the resolved
    protocol's ``parameter``) of every SPECT it is asked for and returns a uniform image."""
    from tareplanner.imaging import spect_simulation

    seen = []

    def fake(activity_mbq, mu_true, grid, protocol, **kwargs):
        p = protocol.resolved()
        seen.append((protocol.nuclide, p[parameter]))
        return spect_simulation.SpectSimulation(
            image=grid.image(np.ones(grid.shape_zyx, dtype=np.float32)), primary_counts=1.0,
            scatter_counts=0.0, photopeak_counts=1.0, unattenuated_counts=1.0,
            radii_mm=np.zeros(1), angles_deg=np.zeros(1), seconds={}, parameters=p)

    monkeypatch.setattr(spect_simulation, "simulate_spect", fake)
    return seen


def test_iterations_reach_the_spect_reconstruction(tmp_path, monkeypatch):
    """Bug caught: ``--iterations`` not reaching the OSEM of the IEC phantom's SPECT or of
    the patient's MAA and Ho-166 scout SPECTs (the convergence check of calibrate
    --more-iterations-image would then compare the protocol with itself). A stand-in for
    the simulation records the protocol it is given."""
    pytest.importorskip("pytomography", reason=REASON)
    import json

    from tareplanner.cli.main import main

    seen = _record_protocols(monkeypatch, "iterations")
    out = tmp_path / "iec"
    assert main(["phantom", str(out), "--iec", "--nuclide", "Ho-166", "--spect-model",
                 "realistic", "--iterations", "16"]) == 0
    assert json.loads((out / "truth.json").read_text())["iterations"] == 16
    assert seen == [("Ho-166", 16)]
    seen.clear()
    assert main(["phantom", str(tmp_path / "patient"), "--size", "small", "--spect-model",
                 "realistic", "--ho166-scout", "--no-pet", "--iterations", "12"]) == 0
    assert sorted(seen) == [("Ho-166", 12), ("Tc-99m", 12)]


def _measured_errors(patient, out, spect: str, camera) -> tuple[dict, dict]:
    """(relative errors of the LSF and every TNR against truth.json, measurement) of
    ``measure`` on the realistic patient's DICOM ``spect`` with ``camera``."""
    import json

    from conftest import small_patient_measure_args

    from tareplanner.cli.main import main
    out.mkdir()
    assert main([*small_patient_measure_args(patient, out, patient / "dicom" / spect,
                                             "m.json"), "--camera", str(camera)]) == 0
    truth = json.loads((patient / "truth.json").read_text())
    m = json.loads((out / "m.json").read_text())
    true_tnr = truth["tnr_maa"] if spect == "spect_maa" else truth["ho166_scout"]["tnr"]
    errors = {"LSF": m["lung_shunt"]["lung_shunt_fraction"] / truth["lung_shunt_fraction"] - 1}
    errors.update({t["name"]: t["tnr"] / true_tnr[t["name"]] - 1
                   for p in m["positions"] for t in p["tumours"]})
    return errors, m


def _calibrated(folder, nuclide: str, *extra_args, noise_image=None):
    """The realistic IEC phantom (spheres 160, background 20 kBq/mL: about 200 MBq, as the
    patient's studies) imaged into ``folder`` and its camera file (its noise law from
    ``noise_image`` when given)."""
    import json

    from tareplanner.cli.main import main
    assert main(["phantom", str(folder), "--iec", "--nuclide", nuclide, "--spect-model",
                 "realistic", "--sphere-kbq-ml", "160", "--background-kbq-ml", "20",
                 *extra_args]) == 0
    centres = ";".join(",".join(f"{c:.2f}" for c in s["centre_mm"]) for s in
                       json.loads((folder / "truth.json").read_text())["spheres"])
    camera = folder.parent / f"{folder.name}.json"
    # the centres as a site gives them where the hot spots do not show the spheres (the
    # noisy Ho-166 scout: docs/imaging.md)
    assert main(["calibrate", "--ct", str(folder / "ct.nii.gz"), "--image",
                 str(folder / "image.nii.gz"), "--nuclide", nuclide, "--sphere-kbq-ml", "160",
                 "--background-kbq-ml", "20", "--sphere-centres-mm", centres,
                 *(["--noise-image", str(noise_image)] if noise_image else []),
                 "-o", str(camera)]) == 0
    return camera


@pytest.mark.slow
def test_realistic_patient_measured_with_a_camera_from_the_iec_phantom(extra, tmp_path):
    """The issue's end-to-end check on the realistic SPECT model: calibrate on the IEC
    phantom imaged by the model, then measure the synthetic patient imaged by the same model.
    Truth: truth.json (the phantom's LSF and TNRs); the target: within 5 %.

    Bugs caught: a calibration or correction that does not carry to an OSEM image (the
    assumed 14 / 18 mm over-correct it by 10-41 %, docs/imaging.md); the scout's camera from
    an unconverged phantom (15.5 mm at 4 iterations over-corrects by up to 12 %); the noise
    law of the converged reconstruction instead of the patients' (--noise-image); a
    count-limited tumour of the protocol's scout not flagged, or a tumour flagged on a scout
    with the counts to read it.
    - Tc-99m MAA, with its noise (seed 20261122), camera from the protocol's phantom scan:
      measured LSF -1.5 %, TNRs +3.3 / +1.1 / +2.4 %; nothing count-limited.
    - Ho-166 scout scanned 160 min (80 s per view, 4 times the protocol's counts), with its
      noise; camera from the phantom scanned 160 min, its PSF from the reconstruction to
      convergence (16 iterations, 10.5 mm), its noise law from the patients' (4 iterations):
      measured LSF -2.1, T1 +2.1, T2 +1.5, T3 -0.3 %; nothing count-limited (T3's SD 5.1 %).
    - the protocol's scout (20 s per view), the same camera: its 7 mL tumour is read low by
      OSEM at its counts (no calibration undoes it; docs/imaging.md), so T3 must be flagged
      (SD 10.2 %, above 6 %), and T1 not (5.5 %)."""
    from tareplanner.cli.main import main

    scout, long_scout = tmp_path / "patient", tmp_path / "patient_160_min"
    assert main(["phantom", str(scout), "--size", "small", "--spect-model", "realistic",
                 "--ho166-scout", "--no-pet"]) == 0
    assert main(["phantom", str(long_scout), "--size", "small", "--spect-model", "realistic",
                 "--ho166-scout", "--no-pet", "--acquisition-minutes", "160"]) == 0

    errors, m = _measured_errors(scout, tmp_path / "maa", "spect_maa",
                                 _calibrated(tmp_path / "iec_tc", "Tc-99m"))
    assert set(errors) == {"LSF", "T1", "T2", "T3"}
    assert all(abs(e) <= 0.05 for e in errors.values()), errors
    assert not [w for w in m["warnings"] if w["code"] == "count-limited-tumour"]

    # the same 160 min phantom scan (same seed: same projections), reconstructed twice
    protocol = tmp_path / "iec_ho_4_iterations"
    assert main(["phantom", str(protocol), "--iec", "--nuclide", "Ho-166", "--spect-model",
                 "realistic", "--sphere-kbq-ml", "160", "--background-kbq-ml", "20",
                 "--acquisition-minutes", "160"]) == 0
    camera = _calibrated(tmp_path / "iec_ho_converged", "Ho-166", "--acquisition-minutes",
                         "160", "--iterations", "16",
                         noise_image=protocol / "image.nii.gz")
    errors, m = _measured_errors(long_scout, tmp_path / "scout_160_min", "spect_ho166", camera)
    assert set(errors) == {"LSF", "T1", "T2", "T3"}
    assert all(abs(e) <= 0.05 for e in errors.values()), errors
    assert m["partial_volume_correction"]["noise"]["count_limited"]["tumours"] == {}

    _, m = _measured_errors(scout, tmp_path / "scout", "spect_ho166", camera)
    flagged = m["partial_volume_correction"]["noise"]["count_limited"]["tumours"]
    assert "T3" in flagged and "T1" not in flagged
    assert any(w["code"] == "count-limited-tumour" and w["message"].startswith("T3: ")
               for w in m["warnings"])


def test_patient_acquisition_minutes_need_the_realistic_spect(tmp_path, capsys):
    """Bug caught: ``--acquisition-minutes`` silently ignored for a patient imaged by the
    Gaussian model (it stood for the IEC phantom's scan only): exit 2, the option named,
    nothing written."""
    from tareplanner.cli.main import main
    out = tmp_path / "out"
    assert main(["phantom", str(out), "--acquisition-minutes", "160"]) == 2
    err = capsys.readouterr().err
    assert "--acquisition-minutes" in err and "--spect-model realistic" in err
    assert not out.exists()


@pytest.mark.parametrize("minutes", ["0.999", "1440.001", "nan", "inf", "-40"])
def test_patient_acquisition_minutes_refused_outside_their_range(tmp_path, capsys, minutes):
    pytest.importorskip("pytomography", reason=REASON)
    from tareplanner.cli.main import main
    out = tmp_path / "out"
    assert main(["phantom", str(out), "--spect-model", "realistic",
                 "--acquisition-minutes", minutes]) == 2
    err = capsys.readouterr().err
    assert "--acquisition-minutes" in err and "1 to 1440 minutes" in err
    assert not out.exists()


@pytest.mark.parametrize("minutes, seconds", [(160.0, 80.0), (1.0, 0.5), (1440.0, 720.0)])
def test_patient_acquisition_minutes_reach_both_spects(tmp_path, monkeypatch, minutes,
                                                       seconds):
    """Bug caught: the patient's acquisition time not reaching its MAA and Ho-166 scout
    SPECTs, or not written into truth.json. By hand: 120 views (data/spect_simulation.json),
    so 160 min is 80 s per view; the edges 1 and 1440 min are allowed."""
    pytest.importorskip("pytomography", reason=REASON)
    import json

    from tareplanner.cli.main import main

    seen = _record_protocols(monkeypatch, "seconds_per_projection")
    out = tmp_path / "patient"
    assert main(["phantom", str(out), "--size", "small", "--spect-model", "realistic",
                 "--ho166-scout", "--no-pet", "--acquisition-minutes", f"{minutes:g}"]) == 0
    assert sorted(seen) == [("Ho-166", pytest.approx(seconds)),
                            ("Tc-99m", pytest.approx(seconds))]
    assert json.loads((out / "truth.json").read_text())["spect_acquisition_minutes"] == minutes
