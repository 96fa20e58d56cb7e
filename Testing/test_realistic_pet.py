"""Realistic Y-90 PET model (imaging/pet_simulation.py, extra ``realistic-spect``).

The imaging tests need PyTomography and torch and are skipped without them. The expected
values are typed from the cited sources (the positron yield, the scanner's NEMA figures) or
computed here by hand from physics (511 keV attenuation along a chord of a water cylinder,
a uniform source's concentration), never by the code under test.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.imaging.grid import Grid

REASON = ("needs the optional extra 'realistic-spect' (PyTomography, torch): "
          "pip install -e '.[realistic-spect]'")


@pytest.fixture
def extra():
    pytest.importorskip("pytomography", reason=REASON)
    pytest.importorskip("torch", reason=REASON)
    from tareplanner.imaging import pet_simulation
    return pet_simulation


def _cylinder(spacing_mm, n_xy, n_z, radius_mm):
    low = (-n_xy * spacing_mm / 2, -n_xy * spacing_mm / 2, 0.0)
    high = (n_xy * spacing_mm / 2, n_xy * spacing_mm / 2, n_z * spacing_mm)
    grid = Grid.covering(low, high, (spacing_mm,) * 3)
    z, y, x = grid.points_mm()
    inside = np.broadcast_to(x ** 2 + y ** 2 <= radius_mm ** 2, grid.shape_zyx)
    return grid, inside, (z, y, x)


def test_trues_per_bq_is_the_published_yield_sensitivity_and_time():
    """Bugs caught: the positron yield off by a factor (32 per million, not 32 per
    thousand), the NEMA sensitivity taken per positron instead of per F-18 decay, the
    line-source length or field of view swapped, minutes used as seconds. Expected: typed
    from the sources: (31.86e-6, Selwyn et al. 2007) x 9.7 cps/kBq (Biograph mCT, Jakoby et
    al. 2011) / 0.9673 (F-18 positrons per decay, ICRP-107) x 700 mm / 218 mm x 30 min (one
    bed, Lhommel et al. 2009; Carlier et al. 2015)."""
    from tareplanner.imaging import pet_simulation as ps
    expected = 31.86e-6 * (9.7e-3 / 0.9673) * (700.0 / 218.0) * 30 * 60
    assert ps.trues_per_bq() == pytest.approx(expected, rel=1e-9)
    assert ps.settings()["nuclide"]["half_life_h"] == 64.1      # nuclides.json, ICRP-107


# ------------------------------------------------------------------ time of flight

def test_time_of_flight_constants_are_the_cited_ones():
    """Bugs caught: the timing resolution taken as the kernel's FWHM in mm, c x dt instead
    of c x dt / 2 (a kernel twice as wide), the bin width of another scanner. Expected:
    typed from the sources: 555 ps FWHM, 13 bins over 4.056 ns (312 ps each; the Biograph
    mCT, Rausch et al. 2015 as in STIR's scanner table) and c = 299 792 458 m/s exactly
    (SI): 0.299792458 mm/ps x 555 / 2 = 83.19 mm and x 312 / 2 = 46.77 mm."""
    from tareplanner.imaging import pet_simulation as ps
    scanner = ps.settings()["scanner"]
    assert scanner["time_of_flight"] is True
    assert (scanner["tof_timing_resolution_ps"], scanner["tof_bins"],
            scanner["tof_bin_width_ps"]) == (555.0, 13, 312.0)
    assert scanner["speed_of_light_mm_per_ps"] == 0.299792458
    resolved = ps.PetProtocol().resolved()
    assert resolved["tof_bin_width_mm"] == pytest.approx(46.7676, abs=1e-4)
    assert resolved["tof_fwhm_mm"] == pytest.approx(83.1924, abs=1e-4)
    assert ps.PetProtocol(time_of_flight=False).resolved()["time_of_flight"] is False


def test_tof_weights_are_the_gaussian_integrated_over_each_bin():
    """Bugs caught: the kernel evaluated at the bin centre instead of integrated over the
    bin, sigma taken as the FWHM, bins off by half a bin, positions not centred on the
    line's midpoint. Expected from scipy.stats.norm: the probability that N(t, sigma) with
    sigma = FWHM / (2 sqrt(2 ln 2)) falls in [edge_k, edge_k+1]."""
    from scipy.stats import norm

    from tareplanner.imaging.pet_simulation import tof_weights
    fwhm, width, spacing = 83.19, 46.77, 4.0
    w = tof_weights(101, spacing, fwhm, 13, width)
    assert w.shape == (13, 101)
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    t = (np.arange(101) - 50) * spacing
    edges = (np.arange(14) - 6.5) * width
    expected = norm.cdf(edges[1:, None], t, sigma) - norm.cdf(edges[:-1, None], t, sigma)
    np.testing.assert_allclose(w, expected, atol=1e-12)
    # the midpoint (sample 50) lies in the middle of bin 6, symmetric about it
    assert w[:, 50].argmax() == 6
    np.testing.assert_allclose(w[:, 50], w[::-1, 50], atol=1e-12)
    # a sample inside the window: every bin's share sums to 1 (to 1e-6: 3.4 sigma in)
    assert w[:, 50].sum() == pytest.approx(1.0, abs=1e-12)
    # beyond the window (13 x 46.77 / 2 = 304 mm from the midpoint) nothing is recorded
    far = tof_weights(1, 1.0, fwhm, 13, width)
    assert far[:, 0].sum() == pytest.approx(1.0, abs=1e-9)
    edge = tof_weights(2, 2 * 6.5 * width, fwhm, 13, width)    # samples at -/+ 304 mm
    assert edge[:, 0].sum() == pytest.approx(0.5, abs=1e-9)     # half the kernel inside


def test_tof_weights_at_a_bin_edge_split_evenly():
    """Bug caught: a position on a bin edge assigned wholly to one bin (an off-by-one of the
    edges). A sample exactly on the edge between bins 6 and 7 (half a bin from the
    midpoint) puts equal shares in both."""
    from tareplanner.imaging.pet_simulation import tof_weights
    width = 46.77
    w = tof_weights(2, width, 83.19, 13, width)      # samples at -/+ width / 2
    assert w[6, 1] == pytest.approx(w[7, 1], rel=1e-12)
    assert w[5, 0] == pytest.approx(w[6, 0], rel=1e-12)


@pytest.mark.parametrize("field, value", [("n_positions", 0), ("spacing_mm", 0.0),
                                          ("fwhm_mm", -1.0), ("fwhm_mm", float("inf")),
                                          ("bins", 0), ("bin_width_mm", float("nan"))])
def test_tof_weights_refuse_what_is_not_positive(field, value):
    """Bug caught: a zero or NaN width dividing by zero into NaN weights silently, an
    infinite kernel spreading every event evenly (all weights 0)."""
    from tareplanner.imaging.pet_simulation import tof_weights
    args = {"n_positions": 10, "spacing_mm": 4.0, "fwhm_mm": 83.0, "bins": 13,
            "bin_width_mm": 46.8, field: value}
    with pytest.raises(ValueError, match="allowed: finite numbers > 0"):
        tof_weights(**args)


def test_tof_projector_is_the_adjoint_and_keeps_every_true(extra):
    """Bugs caught: a back-projection that is not the forward projection's transpose (OSEM
    would then not converge to the maximum likelihood), time bins that lose or double
    coincidences, a subset taking the wrong views. Expected: <Hf, g> = <f, H^T g> to the
    rotate-and-sum projector's own adjoint mismatch (PyTomography's rotation, 2.5e-4 without
    time of flight); the bins of every line sum to the line without time of flight (the
    object lies well inside the 608 mm window); a back-projection of data equal in every bin
    is the back-projection without time of flight."""
    import torch
    rng = np.random.default_rng(3)
    shape, views = (40, 40, 4), 24
    acf = rng.uniform(0.3, 1.0, (views, 40, 4))
    tof = {"fwhm_mm": 83.19, "bins": 13, "bin_width_mm": 46.77}
    h = extra._system_matrix(shape, 0.4, views, acf, 4.4, tof)
    h0 = extra._system_matrix(shape, 0.4, views, acf, 4.4, None)
    f = extra._to_torch(rng.uniform(0.0, 1.0, shape))
    g = h.forward(f)
    assert tuple(g.shape) == (13, views, 40, 4)
    y = extra._to_torch(rng.uniform(0.0, 1.0, tuple(g.shape)))
    lhs, rhs = float((g * y).sum()), float((f * h.backward(y)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-3)
    g0 = h0.forward(f)
    np.testing.assert_allclose(g.sum(0).numpy(), g0.numpy(), rtol=1e-4, atol=1e-6)
    y0 = extra._to_torch(rng.uniform(0.0, 1.0, tuple(g0.shape)))
    np.testing.assert_allclose(h.backward(y0[None].expand(13, *y0.shape)).numpy(),
                               h0.backward(y0).numpy(), rtol=1e-4, atol=1e-4)
    h.set_n_subsets(4)
    assert torch.allclose(h.forward(f, 1), g[:, h.subset_indices_array[1]], rtol=1e-5)


def test_tof_profile_of_a_point_source_is_centred_on_its_position(extra):
    """Bugs caught: time bins not tied to the position along the line (every view's
    profile centred on the midpoint), a kernel of the wrong width. A point 82 mm from the
    centre of the 64-voxel grid (voxel 52; the centre lies between voxels 31 and 32, 20.5
    voxels of 4 mm away): for the view whose lines run through it lengthwise its time
    profile (summed over the lines) is the Gaussian of 83.19 mm centred 82 mm from the
    midpoint (mean 82 mm either way, SD sqrt(sigma^2 + bin width^2 / 12) by hand, the bins'
    rounding); for the perpendicular view it is centred 2 mm from the midpoint (voxel 32 in
    y: half a voxel off the centre)."""
    spacing, n = 4.0, 64
    obj = np.zeros((n, n, 2))                             # 2 slices: the rotation needs them
    obj[n // 2 + 20, n // 2, :] = 1.0                     # 20.5 voxels = 82 mm along x
    tof = {"fwhm_mm": 83.19, "bins": 13, "bin_width_mm": 46.77}
    h = extra._system_matrix(obj.shape, spacing / 10.0, 2, None, 0.0, tof)
    profiles = h.forward(extra._to_torch(obj)).sum(dim=(2, 3)).numpy()    # (bins, views)
    centres = (np.arange(13) - 6) * 46.77
    means = (profiles * centres[:, None]).sum(0) / profiles.sum(0)
    along = int(np.argmax(np.abs(means)))
    assert abs(means[along]) == pytest.approx(82.0, abs=0.5)
    assert abs(means[1 - along]) == pytest.approx(2.0, abs=0.5)
    sigma = 83.19 / (2 * math.sqrt(2 * math.log(2)))
    p = profiles[:, along] / profiles[:, along].sum()
    sd = math.sqrt((p * (centres - means[along]) ** 2).sum())
    assert sd == pytest.approx(math.sqrt(sigma ** 2 + 46.77 ** 2 / 12), rel=0.03)


def test_importing_the_pet_model_needs_neither_pytomography_nor_torch():
    """Bug caught: a top-level import of torch or PyTomography in the PET model, which would
    make the default install fail on import of the phantom."""
    code = ("import sys, tareplanner.imaging.pet_simulation, tareplanner.imaging.phantom; "
            "print(sorted(m for m in ('torch', 'pytomography') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_trues_of_a_central_line_source_are_attenuated_by_the_whole_diameter(extra):
    """Bugs caught: the 511 keV attenuation applied only up to the source (the SPECT rule)
    instead of along the whole line of response, mu in 1/mm, the factor applied twice, trues
    lost by the projector. Expected by hand: every line through the axis of a water cylinder
    of radius R crosses 2R of water, so trues = unattenuated x exp(-0.096 /cm x 2R)
    (mu(water, 511 keV) from NIST XCOM); a 10 mm source rod shortens the chords by < 0.3 %."""
    spacing, radius = 4.0, 100.0
    grid, inside, (z, y, x) = _cylinder(spacing, 64, 4, radius)
    rod = np.broadcast_to(np.hypot(x, y) <= 10.0, grid.shape_zyx)
    activity = np.where(rod, 4.0e6 / rod.sum(), 0.0)     # a rod source on the axis
    protocol = extra.PetProtocol(iterations=1, subsets=1, noise=False,
                                 scatter_and_randoms=False, overrides={"system_fwhm_mm": 0.0,
                                                                       "views": 24})
    air = extra.simulate_pet(activity, np.zeros(grid.shape_zyx), grid, protocol)
    assert air.unattenuated_trues == pytest.approx(4.0e6 * extra.trues_per_bq(), rel=1e-9)
    assert air.trues == pytest.approx(air.unattenuated_trues, rel=0.01)
    water = extra.simulate_pet(activity, np.where(inside, 0.096, 0.0), grid, protocol)
    # the voxelised disk's radius: from its area
    radius_cm = math.sqrt(inside[0].sum() * (spacing / 10.0) ** 2 / math.pi)
    assert water.trues == pytest.approx(air.trues * math.exp(-0.096 * 2 * radius_cm),
                                        rel=0.03)


def test_scatter_and_random_fractions_are_the_stated_ones(extra):
    """Bugs caught: the scatter fraction taken as scatter/trues (0.49 instead of 0.33 of
    trues plus scatter), randoms as a fraction of the trues alone. Expected: the cited values,
    33 % scatter (NEMA, Jakoby et al. 2011) and 80 % randoms of the prompts (QUEST, Willowson
    et al. 2015: 'in the order of 80 %')."""
    grid, inside, _ = _cylinder(4.0, 40, 4, 60.0)
    activity = np.where(inside, 1.0e5, 0.0)
    protocol = extra.PetProtocol(iterations=1, subsets=1, noise=False,
                                 overrides={"views": 24})
    result = extra.simulate_pet(activity, np.where(inside, 0.096, 0.0), grid, protocol)
    assert result.scatter / (result.trues + result.scatter) == pytest.approx(0.33, rel=1e-6)
    prompts = result.trues + result.scatter + result.randoms
    assert result.randoms / prompts == pytest.approx(0.8, rel=1e-6)
    assert result.prompts == pytest.approx(prompts, rel=1e-9)     # no noise


def test_uniform_cylinder_reconstructs_to_its_concentration_in_bq_per_ml(extra):
    """Bugs caught: the image in MBq or per voxel instead of Bq/mL, the reconstruction not
    scaled back by the views, attenuation correction missing (the centre of a 20 cm water
    cylinder would read far too low), scatter and randoms not subtracted (too high).
    Expected: the concentration put in, 1.5 MBq/mL, within 3 % in the interior, and a flat
    profile (centre / ring within 5 %). With randoms 80 % of the prompts OSEM converges
    slowly (3 iterations x 7 subsets read 15 % low here): 63 subset updates, as the default
    protocol makes (3 x 21), let it converge."""
    spacing = 4.0
    grid, inside, (z, y, x) = _cylinder(spacing, 60, 12, 100.0)
    concentration = 1.5e6                               # Bq/mL
    activity = np.where(inside, concentration * grid.voxel_volume_ml, 0.0)
    protocol = extra.PetProtocol(noise=False, overrides={"views": 42, "subsets": 7,
                                                         "iterations": 9})
    result = extra.simulate_pet(activity, np.where(inside, 0.096, 0.0), grid, protocol)
    img = sitk.GetArrayFromImage(result.image).astype(float)[4:8]
    r = np.hypot(x, y)[0]
    assert img[:, r < 70].mean() == pytest.approx(concentration, rel=0.03)
    assert img[:, r < 25].mean() / img[:, (r > 45) & (r < 70)].mean() == pytest.approx(
        1.0, abs=0.05)


# ------------------------------------------------------------------ the command line

def test_iec_phantom_hands_its_activity_to_the_realistic_pet(monkeypatch):
    """Bugs caught: ``phantom --iec`` PET realistic imaging the wrong activity (kBq/mL taken
    as MBq per voxel, a sphere lost), attenuation at a SPECT energy instead of 511 keV, no CT
    for the attenuation correction, or a truth not in Bq/mL. Expected by hand: the standard's
    volumes (D-shaped interior: a half disc of radius 147 mm and a 294 x 77 mm rectangle, 180
    mm long, less the 50 mm lung insert; spheres pi d^3 / 6) times the concentrations;
    mu(water, 511 keV) = 0.096 /cm (NIST XCOM)."""
    from tareplanner.imaging import pet_simulation
    from tareplanner.imaging.iec_phantom import IecSpec, make_iec_phantom

    calls = []

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    def fake(spec, grid, activity_mbq, ct, mu_true_per_cm):
        calls.append({"mbq": float(activity_mbq.sum()), "ct": ct, "mu": mu_true_per_cm,
                      "spacing": grid.spacing_mm})
        return Result(grid)

    monkeypatch.setattr(pet_simulation, "iec_pet", fake)
    made = make_iec_phantom(IecSpec(modality="PET", nuclide="Y-90", model="realistic",
                                    sphere_kbq_ml=2400.0, background_kbq_ml=300.0,
                                    spacing_mm=(4.0, 4.0, 4.0)))
    spheres_ml = sum(math.pi * d ** 3 / 6 for d in (10, 13, 17, 22, 28, 37)) / 1000.0
    body_ml = (math.pi * 147.0 ** 2 / 2 + 294.0 * 77.0 - math.pi * 25.0 ** 2) * 180.0 / 1000.0
    expected_mbq = (2400.0 * spheres_ml + 300.0 * (body_ml - spheres_ml)) / 1000.0
    (call,) = calls
    assert call["ct"] is made["ct"]
    # the D-shaped body sampled on 4 mm voxels at 1.33 mm sub-voxels: 1.5 %
    assert call["mbq"] == pytest.approx(expected_mbq, rel=0.015)
    assert call["mu"].max() == pytest.approx(0.096, rel=0.01) and call["mu"].min() < 0.005
    assert made["truth"]["units"] == "Bq/mL" and made["truth"]["calibration"] == {"scale": 1.0}
    assert made["truth"]["psf"]["model"] == "realistic"
    assert "pet_simulation" in made["truth"]["psf"]["note"]
    with pytest.raises(ValueError, match="Y-90 PET"):
        make_iec_phantom(IecSpec(modality="PET", nuclide="Tc-99m", model="realistic"))


def test_phantom_hands_the_implanted_activity_to_the_realistic_pet(monkeypatch):
    """Bugs caught: ``pet_model="realistic"`` silently giving the Gaussian PET, the activity
    not the implanted one decayed to the PET (administered, or in MBq), the CT not passed for
    the attenuation correction. Expected by hand: (2.2 + 0.8) GBq x (1 - 0.03 residual) x
    2^(-4 h / 64.1 h) in Bq."""
    from tareplanner.imaging import pet_simulation
    from tareplanner.imaging import phantom as ph

    calls = []

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    def fake(spec, grid, activity_bq, ct, stream):
        calls.append({"bq": float(activity_bq.sum()), "ct": ct})
        return Result(grid)

    monkeypatch.setattr(pet_simulation, "phantom_pet", fake)
    assert ph.PhantomSpec().pet_model == "gaussian"
    phantom = ph.make_phantom(ph.spec_for_size("small", pet_model="realistic"))
    (call,) = calls
    assert call["bq"] == pytest.approx(3.0e9 * 0.97 * 2 ** (-4 / 64.1), rel=1e-6)
    assert call["ct"] is phantom.ct
    assert phantom.truth["pet_model"] == "realistic"


@pytest.mark.parametrize("args, option, message", [
    (["--iec", "--modality", "PET", "--nuclide", "Tc-99m", "--pet-model", "realistic"],
     "--pet-model", "PET of Y-90"),
    (["--iec", "--nuclide", "Tc-99m", "--pet-model", "realistic"], "--pet-model",
     "a SPECT takes --spect-model"),
    (["--iec", "--nuclide", "Y-90", "--pet-model", "realistic", "--fwhm-mm", "10"],
     "--pet-model", "without --fwhm-mm"),
    (["--iec", "--nuclide", "Y-90", "--pet-model", "monte-carlo"], "--pet-model",
     "gaussian or realistic"),
    (["--size", "small", "--pet-model", "realistic", "--pet-fwhm-mm", "9"], "--pet-model",
     "without --no-pet, --no-blur or --pet-fwhm-mm"),
    (["--size", "small", "--pet-model", "realistic", "--no-pet"], "--pet-model",
     "without --no-pet"),
    (["--size", "small", "--pet-model", "gauss"], "--pet-model", "gaussian or realistic"),
])
def test_realistic_pet_refuses_what_it_cannot_image(tmp_path, capsys, args, option, message):
    """Bug caught: a realistic PET asked for another nuclide, a SPECT, or with a Gaussian's
    options silently written as the Gaussian model: exit status 2, the option named, nothing
    written."""
    from tareplanner.cli.main import main
    out = tmp_path / "out"
    assert main(["phantom", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert option in err and message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args", [["--iec", "--nuclide", "Y-90", "--pet-model", "realistic"],
                                  ["--size", "small", "--pet-model", "realistic"]])
def test_realistic_pet_without_the_extra_names_it(tmp_path, monkeypatch, capsys, args):
    """Bug caught: ``--pet-model realistic`` without PyTomography crashing with an
    ImportError instead of naming the extra (exit 2, nothing written)."""
    from tareplanner.cli.main import main
    from tareplanner.imaging import spect_simulation
    monkeypatch.setattr(spect_simulation, "extra_available", lambda: False)
    out = tmp_path / "out"
    assert main(["phantom", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert "realistic-spect" in err and "--pet-model" in err
    assert not out.exists()


def test_longer_acquisition_records_proportionally_more_trues(extra):
    """Bug caught: ``minutes_per_bed`` (``phantom --iec --acquisition-minutes``) not reaching
    the count, or read as seconds. Expected by hand: 60 min records twice the trues of the
    30 min protocol: 31.86e-6 x 9.7e-3 / 0.9673 x 700 / 218 x 3600 s per Bq."""
    grid, inside, _ = _cylinder(4.0, 24, 2, 30.0)
    activity = np.where(inside, 1.0e5, 0.0)
    protocol = extra.PetProtocol(iterations=1, subsets=1, noise=False, minutes_per_bed=60.0,
                                 overrides={"views": 12})
    result = extra.simulate_pet(activity, np.zeros(grid.shape_zyx), grid, protocol)
    per_bq = 31.86e-6 * (9.7e-3 / 0.9673) * (700.0 / 218.0) * 3600.0
    assert result.unattenuated_trues == pytest.approx(activity.sum() * per_bq, rel=1e-9)


def test_iec_acquisition_minutes_reach_the_spect_counts_per_mbq(monkeypatch):
    """Bug caught: a longer phantom acquisition imaged with the patient's seconds per view, so
    that the camera file's counts per MBq (and the noise) are the patient protocol's.
    Expected by hand: 12 cps/MBq (Ho-166, per head) x 160 min x 60 s."""
    from tareplanner.imaging import spect_simulation
    from tareplanner.imaging.iec_phantom import IecSpec, make_iec_phantom

    seen = []

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    def fake(spec, grid, activity_mbq, ct, mu_true_per_cm):
        seen.append(spec.acquisition_minutes)
        return Result(grid)

    monkeypatch.setattr(spect_simulation, "iec_spect", fake)
    made = make_iec_phantom(IecSpec(nuclide="Ho-166", model="realistic",
                                    acquisition_minutes=160.0))
    assert seen == [160.0]
    assert made["truth"]["calibration"]["counts_per_mbq"] == pytest.approx(12.0 * 160 * 60)
    assert made["truth"]["acquisition_minutes"] == 160.0
    assert spect_simulation.seconds_per_view(160.0) == pytest.approx(80.0)   # 120 views


@pytest.mark.parametrize("args, message", [
    (["--iec", "--nuclide", "Y-90", "--acquisition-minutes", "60"], "only with the realistic"),
    (["--iec", "--nuclide", "Y-90", "--pet-model", "realistic", "--acquisition-minutes",
      "0.5"], "1 to 1440 minutes"),
    (["--iec", "--nuclide", "Y-90", "--pet-model", "realistic", "--acquisition-minutes",
      "1441"], "1 to 1440 minutes"),
    (["--iec", "--nuclide", "Y-90", "--pet-model", "realistic", "--acquisition-minutes",
      "nan"], "1 to 1440 minutes"),
])
def test_acquisition_minutes_refused_outside_its_range(tmp_path, capsys, args, message):
    """Bug caught: an acquisition time given to the Gaussian model silently ignored, or a
    zero, NaN or absurd time reaching the model: exit 2, the option named, nothing written.
    Edges: 1 and 1440 minutes (one day) are allowed, 0.5 and 1441 not."""
    pytest.importorskip("pytomography", reason=REASON)
    from tareplanner.cli.main import main
    out = tmp_path / "out"
    assert main(["phantom", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert "--acquisition-minutes" in err and message in err
    assert not out.exists()


@pytest.mark.parametrize("minutes", ["1", "1440"])
def test_acquisition_minutes_edges_are_allowed(tmp_path, monkeypatch, minutes):
    """The edges of ``--acquisition-minutes`` (1 and 1440) reach the model (a stand-in here,
    so that no reconstruction runs): exit 0 and the time in truth.json."""
    pytest.importorskip("pytomography", reason=REASON)
    import json

    from tareplanner.cli.main import main
    from tareplanner.imaging import pet_simulation

    class Result:
        def __init__(self, grid):
            self.image = grid.image(np.zeros(grid.shape_zyx, dtype=np.float32))

    monkeypatch.setattr(pet_simulation, "iec_pet", lambda spec, grid, *a: Result(grid))
    out = tmp_path / "out"
    assert main(["phantom", str(out), "--iec", "--nuclide", "Y-90", "--pet-model", "realistic",
                 "--acquisition-minutes", minutes]) == 0
    assert json.loads((out / "truth.json").read_text())["acquisition_minutes"] == float(minutes)


@pytest.mark.slow
def test_delivered_doses_of_the_realistic_pet_calibrated_on_the_iec_phantom(extra, tmp_path):
    """Bugs caught: a camera calibrated on the realistic IEC PET that does not describe the
    patient's realistic PET (another protocol, the wrong modality, a reconstruction not
    converged in the phantom's warm background), post-treatment means left low by the
    reconstruction's resolution or over-corrected, a noise statement that does not cover the
    error it should.
    Truth: the partition model the patient was built with, by hand (conftest's
    delivered_truth_gy). The phantom is scanned 120 min (4 times the patient's 30 min bed),
    as docs/imaging.md describes; spheres 2400 kBq/mL, background 300 kBq/mL; its
    reconstruction with twice the iterations checks convergence (with time of flight the
    protocol's 3 iterations converge in the phantom: 7.07 -> 6.49 mm). Two patient PETs:
    - without noise, to see the bias of calibration and correction alone: every structure
      within 5 % (measured: at most +2.3 %; the issue's targets are 10 % for tumours, 5 % for
      the normal liver);
    - with noise (seed 20261122): T1, T2 (noise SD 1-3 % over six realisations) within 10 %,
      the normal liver within 5 %, and the 7 mL T3 (SD 11 %; -16.7 % in this realisation)
      within twice the noise SD the dose record states for it."""
    import json

    from conftest import delivered_truth_gy, measure_small_patient
    from tareplanner.cli.main import main
    iec, more = tmp_path / "iec", tmp_path / "iec6"
    for folder, iterations in ((iec, "3"), (more, "6")):
        assert main(["phantom", str(folder), "--iec", "--nuclide", "Y-90", "--pet-model",
                     "realistic", "--sphere-kbq-ml", "2400", "--background-kbq-ml", "300",
                     "--acquisition-minutes", "120", "--iterations", iterations]) == 0
    camera = tmp_path / "pet.json"
    assert main(["calibrate", "--ct", str(iec / "ct.nii.gz"), "--image",
                 str(iec / "image.nii.gz"), "--more-iterations-image",
                 str(more / "image.nii.gz"), "--nuclide", "Y-90", "--sphere-kbq-ml", "2400",
                 "--background-kbq-ml", "300", "--acquisition-minutes", "120",
                 "-o", str(camera)]) == 0
    cam = json.loads(camera.read_text())
    assert cam["modality"] == "PET" and cam["nuclide"] == "Y-90"
    assert cam["convergence"]["converged"] is True
    assert "camera-not-converged" not in [w["code"] for w in cam.get("warnings", [])]

    def delivered(name, *options):
        patient, out = tmp_path / name, tmp_path / f"m_{name}"
        assert main(["phantom", str(patient), "--size", "small", "--pet-model", "realistic",
                     *options]) == 0
        assert measure_small_patient(patient, out) == 0
        assert main(["plan", str(out / "case.json"), "-o", str(out / "plan.json")]) == 0
        assert main(["dose", "--measurement", str(out / "measurement.json"), "--plan",
                     str(out / "plan.json"), "--method", "ldm", "--quiet", "--pet",
                     str(patient / "dicom" / "pet_y90"), "--out", str(out / "d"),
                     "--camera", str(camera)]) == 0
        record = json.loads((out / "d" / "dose.json").read_text())
        truth = delivered_truth_gy(json.loads((patient / "truth.json").read_text()),
                                   record["dose"]["energy_per_activity_j_per_gbq"],
                                   record["dose"]["soft_tissue_density_g_per_ml"])
        means = record["post_treatment"]["partial_volume_correction"]["mean_dose_gy"]
        return {n: means[n]["corrected_gy"] / truth[n] - 1 for n in truth}, means

    normals = ("normal liver (right hepatic)", "normal liver (left hepatic)")
    bias, _ = delivered("noise_free", "--no-noise")
    for name, error in bias.items():
        assert abs(error) <= 0.05, (name, error)
    errors, means = delivered("noisy")
    for name in normals:
        assert abs(errors[name]) <= 0.05, (name, errors[name])
    for name in ("T1", "T2"):
        assert abs(errors[name]) <= 0.10, (name, errors[name])
    assert abs(errors["T3"]) <= 2 * means["T3"]["noise_relative_sd"], errors["T3"]


@pytest.mark.parametrize("hu, carney", [
    (-1000.0, 0.0),                              # air
    (-500.0, 9.6e-5 * 500),                      # lung: 9.6e-5 (HU + 1000)
    (0.0, 0.096),                                # water
    (46.0, 9.6e-5 * 1046),                       # just below the break
    (47.0, 9.6e-5 * 1047),                       # at the break (both lines meet)
    (48.0, 5.1e-5 * 1048 + 0.0471),              # just above: the bone line
    (1000.0, 5.1e-5 * 2000 + 0.0471),            # cortical bone
])
def test_511_kev_attenuation_is_carneys_bilinear_at_120_kvp(hu, carney):
    """Bugs caught: the break of the bilinear HU -> mu(511 keV) taken at 0 HU (1-2 % low for
    soft tissue and bone), the bone slope applied below the break, a jump at the break.
    Expected: Carney et al., Med Phys 2006;33:976, 120 kVp, typed here:
    mu = 9.6e-5 (HU + 1000) /cm up to 47 HU, 5.10e-5 (HU + 1000) + 0.0471 /cm above (the
    printed intercept is rounded to 1e-4, hence the 2e-5 /cm tolerance)."""
    from tareplanner.imaging.pet_simulation import mu_511
    assert float(mu_511(np.array([hu]))[0]) == pytest.approx(carney, abs=2e-5)


@pytest.mark.parametrize("iterations", ["0", "101", "-3"])
def test_iterations_refused_outside_their_range(tmp_path, capsys, iterations):
    """Bug caught: no OSEM iteration, or an absurd number, handed to the reconstruction:
    exit 2, the option named, nothing written. Edges: 1 and 100 are allowed (below)."""
    pytest.importorskip("pytomography", reason=REASON)
    from tareplanner.cli.main import main
    out = tmp_path / "out"
    assert main(["phantom", str(out), "--iec", "--nuclide", "Y-90", "--pet-model",
                 "realistic", "--iterations", iterations]) == 2
    err = capsys.readouterr().err
    assert "--iterations" in err and "1 to 100" in err
    assert not out.exists()


@pytest.mark.parametrize("iterations", [1, 100])
def test_iterations_reach_the_pet_reconstruction(tmp_path, monkeypatch, iterations):
    """Bug caught: ``--iterations`` (the same scan reconstructed again for calibrate
    --more-iterations-image) not reaching the OSEM of the IEC phantom's or the patient's
    PET, so that both reconstructions are the protocol's. A stand-in for the simulation
    records the protocol it is given; the edges 1 and 100."""
    pytest.importorskip("pytomography", reason=REASON)
    import json

    from tareplanner.cli.main import main
    from tareplanner.imaging import pet_simulation

    seen = []

    def fake(activity_bq, mu_true, grid, protocol, **kwargs):
        seen.append(protocol.resolved()["iterations"])
        return pet_simulation.PetSimulation(
            image=grid.image(np.zeros(grid.shape_zyx, dtype=np.float32)), trues=0.0,
            scatter=0.0, randoms=0.0, prompts=0.0, unattenuated_trues=0.0, seconds={},
            parameters=protocol.resolved())

    monkeypatch.setattr(pet_simulation, "simulate_pet", fake)
    out = tmp_path / "iec"
    assert main(["phantom", str(out), "--iec", "--nuclide", "Y-90", "--pet-model", "realistic",
                 "--iterations", str(iterations)]) == 0
    assert json.loads((out / "truth.json").read_text())["iterations"] == iterations
    assert main(["phantom", str(tmp_path / "patient"), "--size", "small", "--pet-model",
                 "realistic", "--iterations", str(iterations)]) == 0
    truth = json.loads((tmp_path / "patient" / "truth.json").read_text())
    assert truth["reconstruction_iterations"] == iterations
    assert seen == [iterations, iterations]
    seen.clear()
    assert main(["phantom", str(tmp_path / "default"), "--iec", "--nuclide", "Y-90",
                 "--pet-model", "realistic"]) == 0
    shipped = json.loads((Path(pet_simulation.__file__).parent.parent / "data" /
                          "pet_simulation.json").read_text())
    assert seen == [shipped["reconstruction"]["iterations"]["value"]]
