"""A segmental treatment with five injection positions, end to end on the command line:
``tareplanner phantom --positions 5`` -> measure (five CBCT registrations and territories)
-> plan (five goals) -> directive -> administer (five sites) -> dose -> report.

Expected values come from the synthetic patient's truth.json (volumes, TNRs, LSF, CBCT offsets,
the Y-90 activities of its PET), from the limits of the TheraSphere package insert and EANM
2022 written out here, and from hand calculations (partition model, decay); the tolerances are
those of the two-position tests (Testing/test_imaging_measure.py).

The chain runs once per module (about half a minute on two cores): its tests are marked ``slow``
(``pytest -m "not slow"`` leaves them out); the checks of the option and of the anatomy are
fast.
"""

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
import SimpleITK as sitk

from tareplanner.cli.main import main
from tareplanner.imaging.registration import euler_from_dict, transform_error_mm

N = 5
NAMES = [f"segment {k}" for k in range(2, 2 + N)]
TREATMENT = "2026-12-01T10:00:00+01:00"
#: Y-90: energy per activity (J/GBq; 0.9337 MeV mean beta energy x 1e9 / ln 2 x 64.1 h) and
#: half-life (h), as published (e.g. EANM 2022, MIRD pamphlet 29)
Y90_J_PER_GBQ = 49.67
Y90_HALF_LIFE_H = 64.1
#: TheraSphere limits: normal liver 120 Gy (package insert, lobar), lung 30 Gy single
#: (package insert, EANM 2022), whole normal liver 75 Gy (EANM 2022 Table 2, glass)
NORMAL_LIVER_LIMIT_GY, LUNG_LIMIT_GY, WHOLE_NORMAL_LIVER_LIMIT_GY = 120.0, 30.0, 75.0
#: goals per position, one of each kind, given on the command line
GOALS = {"segment 2": ("tumour_dose_gy", 150.0), "segment 3": ("normal_dose_gy", 60.0),
         "segment 4": ("perfused_dose_gy", 70.0), "segment 5": ("activity_gbq", 0.5),
         "segment 6": ("tumour_dose_gy", 180.0)}

slow = pytest.mark.slow



@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Every step's record, each written by the command line."""
    out = tmp_path_factory.mktemp("five")
    d = out / "patient"
    assert main(["phantom", str(d), "--size", "small", "--positions", str(N)]) == 0
    truth = json.loads((d / "truth.json").read_text())
    assert [p["name"] for p in truth["positions"]] == NAMES
    tumour_names = ",".join(truth["tumour_labels"])
    positions = sum((["--position", f"{name}={d / 'dicom' / ('cbct_' + name.replace(' ', '_'))}"]
                     for name in NAMES), [])
    goals = sum((["--goal", f"{name}:{kind}={value:g}"] for name, (kind, value) in GOALS.items()),
                [])
    assert main(["measure", "--ct", str(d / "dicom" / "ct"),
                 "--spect", str(d / "dicom" / "spect_maa"),
                 "--liver", str(d / "labels" / "liver.nii.gz"),
                 "--tumours", str(d / "labels" / "tumours.nii.gz"),
                 "--tumour-names", tumour_names, *positions, *goals,
                 "--product", "therasphere", "--treatment-time", TREATMENT, "--quiet",
                 "-o", str(out / "case.json"),
                 "--measurement-output", str(out / "measurement.json")]) == 0
    assert main(["plan", str(out / "case.json"), "-o", str(out / "plan.json")]) == 0
    assert main(["directive", str(out / "plan.json"), "-o", str(out / "directive.json")]) == 0
    directive = json.loads((out / "directive.json").read_text())
    # readings: each vial read 90 min before its administration (15 min apart), holding 3 %
    # more than prescribed then; the residual, 3 % of the prescription, 10 min after
    admin0 = datetime.fromisoformat(TREATMENT)
    readings, args = {}, []
    for k, site in enumerate(directive["positions"]):
        name, prescribed = site["treatment_site"], site["prescribed_activity_gbq"]
        at = admin0 + timedelta(minutes=15 * k)
        vial_time, residual_time = at - timedelta(minutes=90), at + timedelta(minutes=10)
        vial = round(1.03 * prescribed * 2 ** (1.5 / Y90_HALF_LIFE_H), 4)
        residual = round(0.03 * prescribed, 4)
        readings[name] = (at, vial, vial_time, residual, residual_time)
        args += ["--vial", f"{name}={vial}@{vial_time.isoformat()}",
                 "--residual", f"{name}={residual}@{residual_time.isoformat()}",
                 "--administered-at", f"{name}={at.isoformat()}"]
    assert main(["administer", str(out / "directive.json"), *args, "--site-tolerance", "0.10",
                 "-o", str(out / "administration.json")]) == 0
    assert main(["dose", "--measurement", str(out / "measurement.json"),
                 "--plan", str(out / "plan.json"), "--pet", str(d / "dicom" / "pet_y90"),
                 "--administration", str(out / "administration.json"),
                 "--out", str(out / "dose"), "--quiet"]) == 0
    assert main(["report", str(out / "plan.json"), "--dose", str(out / "dose"),
                 "--directive", str(out / "directive.json"),
                 "--administration", str(out / "administration.json"),
                 "-o", str(out / "report.pdf")]) == 0
    records = {name: json.loads((out / f"{name}.json").read_text())
               for name in ("case", "measurement", "plan", "directive", "administration")}
    records["dose"] = json.loads((out / "dose" / "dose.json").read_text())
    return out, truth, records, readings


@slow
def test_five_cbcts_registered_within_2_mm(chain):
    out, truth, records, _ = chain
    measurement = records["measurement"]
    assert [p["name"] for p in measurement["positions"]] == NAMES
    liver_img = sitk.ReadImage(str(out / "patient" / "labels" / "liver.nii.gz"))
    index = np.argwhere(sitk.GetArrayFromImage(liver_img) > 0)[::400][:, ::-1]
    points = np.array([liver_img.TransformIndexToPhysicalPoint(tuple(int(v) for v in i))
                       for i in index])
    for position in measurement["positions"]:
        assert position["territory_source"] == "CBCT enhancement"
        expected = euler_from_dict(truth["cbct_transforms"][position["name"]])
        assert transform_error_mm(sitk.Euler3DTransform(), expected, points).mean() > 10
        error = transform_error_mm(euler_from_dict(position["registration"]), expected, points)
        assert error.max() < 2.0, position["name"]


@slow
def test_five_territories_volumes_and_tnr_match_the_truth(chain):
    _, truth, records, _ = chain
    measurement, case = records["measurement"], records["case"]
    for position in measurement["positions"]:
        expected = truth["volumes_ml"]["territories"][position["name"]]
        assert position["perfused_volume_ml"] == pytest.approx(expected["perfused"], rel=0.03)
        assert position["normal_volume_ml"] == pytest.approx(expected["normal"], rel=0.03)
    assert measurement["tumour_territory"] == {
        t: p["name"] for p in truth["positions"] for t in p["tumours"]}
    assert case["lung_shunt_fraction"] == pytest.approx(truth["lung_shunt_fraction"], rel=0.05)
    assert [p["name"] for p in case["positions"]] == NAMES
    for position in case["positions"]:
        truth_position = next(p for p in truth["positions"] if p["name"] == position["name"])
        assert [t["name"] for t in position["tumours"]] == truth_position["tumours"]
        for tumour in position["tumours"]:
            assert tumour["tnr"] == pytest.approx(truth["tnr_maa"][tumour["name"]], rel=0.05)
            assert tumour["volume_ml"] == pytest.approx(
                truth["volumes_ml"]["tumours"][tumour["name"]], rel=0.03)


@slow
def test_plan_has_five_positions_within_the_limits(chain):
    _, _, records, _ = chain
    plan = records["plan"]
    assert [p["name"] for p in plan["positions"]] == NAMES
    assert {p["name"]: p["goal"] for p in plan["positions"]} == {
        name: {kind: value} for name, (kind, value) in GOALS.items()}
    lsf, cf = plan["lung_shunt_fraction"], Y90_J_PER_GBQ * (1.0 - plan["residual_fraction"])
    density = plan["tissue_density_g_per_ml"]
    total = 0.0
    for p in plan["positions"]:
        a = p["activity_gbq"]
        assert a > 0
        total += a
        # partition model by hand: the liver share of the energy over the normal liver's mass
        # plus each tumour's mass weighted by its TNR
        weighted_ml = p["normal_volume_ml"] + sum(t["tnr"] * t["volume_ml"] for t in p["tumours"])
        normal_gy = a * cf * (1.0 - lsf) / (weighted_ml * density / 1000.0)
        assert p["normal_dose_gy"] == pytest.approx(normal_gy, rel=1e-3)
        assert p["normal_dose_gy"] <= NORMAL_LIVER_LIMIT_GY + 1e-6
        for t in p["tumours"]:
            assert t["dose_gy"] == pytest.approx(t["tnr"] * normal_gy, rel=1e-3)
        kind, value = GOALS[p["name"]]
        reached = {"tumour_dose_gy": lambda: max(t["dose_gy"] for t in p["tumours"]),
                   "normal_dose_gy": lambda: p["normal_dose_gy"],
                   "perfused_dose_gy": lambda: p["perfused_dose_gy"],
                   "activity_gbq": lambda: a}[kind]()
        if p["limited_by"] == "goal":
            assert reached == pytest.approx(value, rel=1e-3), p["name"]
        else:  # a limit scaled it down: below its goal, never above
            assert reached < value, p["name"]
    assert plan["total_activity_gbq"] == pytest.approx(total, rel=1e-9)
    lung_gy = total * cf * lsf / plan["lung_mass_kg"]
    assert plan["lung_dose_gy"] == pytest.approx(lung_gy, rel=1e-3)
    assert plan["lung_dose_gy"] <= LUNG_LIMIT_GY
    assert plan["whole_liver"]["whole_normal_liver_dose_gy"] <= WHOLE_NORMAL_LIVER_LIMIT_GY + 1e-6
    assert not plan["violations"]


@slow
def test_directive_and_administration_have_five_sites(chain):
    _, _, records, readings = chain
    plan, directive, administration = (records["plan"], records["directive"],
                                       records["administration"])
    planned = {p["name"]: p["activity_gbq"] for p in plan["positions"]}
    assert [s["treatment_site"] for s in directive["positions"]] == NAMES
    for site in directive["positions"]:
        assert site["prescribed_activity_gbq"] == pytest.approx(planned[site["treatment_site"]])
    assert [s["treatment_site"] for s in administration["sites"]] == NAMES
    for site in administration["sites"]:
        at, vial, vial_time, residual, residual_time = readings[site["treatment_site"]]
        # decay by hand to the administration time: the vial 90 min earlier, the residual 10 min
        # later
        vial_at = vial * 2 ** (-(at - vial_time).total_seconds() / 3600 / Y90_HALF_LIFE_H)
        residual_at = residual * 2 ** ((residual_time - at).total_seconds() / 3600
                                       / Y90_HALF_LIFE_H)
        assert site["delivered_activity_gbq"] == pytest.approx(vial_at - residual_at, rel=1e-4)
        deviation = (vial_at - residual_at) / planned[site["treatment_site"]] - 1.0
        assert abs(deviation) < 0.01 and site["medical_event"] is False
    assert administration["medical_event"] is False


@slow
def test_dose_has_five_territories_and_the_pet_holds_the_truths_activity(chain):
    _, truth, records, _ = chain
    dose = records["dose"]
    planned = dose["predictive"]["structures"]
    for name in NAMES:
        assert f"normal liver ({name})" in planned
    for tumour in truth["tnr_maa"]:
        assert tumour in planned
    pet = truth["y90_pet"]
    implanted = sum(pet["administered_activity_gbq"].values()) * (1 - pet["residual_fraction"])
    post = dose["post_treatment"]
    assert post["activity_in_image_at_administration_gbq"] == pytest.approx(implanted, rel=0.01)
    delivered = sum(s["delivered_activity_gbq"] for s in records["administration"]["sites"])
    assert post["activity_check"]["expected_in_patient_gbq"] == pytest.approx(delivered)


@slow
def test_report_names_the_five_positions_with_their_activities(chain):
    pypdf = pytest.importorskip("pypdf")
    out, _, records, _ = chain
    reader = pypdf.PdfReader(str(out / "report.pdf"))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    positions_page = next(p for p in pages if "Injection positions" in p)
    for p in records["plan"]["positions"]:
        row = next((line for line in positions_page.splitlines()
                    if line.startswith(p["name"] + " ")), "")
        assert f"{p['activity_gbq']:.3f}" in row, (p["name"], row)
    directive_page = next(p for p in pages if "Prescription per treatment site" in p)
    administration_page = next(p for p in pages if "Delivered against prescribed" in p)
    for site in records["administration"]["sites"]:
        name = site["treatment_site"]
        assert f"{site['prescribed_activity_gbq']:.3f}" in directive_page
        assert name in administration_page
        assert f"{site['delivered_activity_gbq']:.3f}" in administration_page
    for name in NAMES:
        assert f"normal liver ({name})" in text


def test_phantom_positions_option_refuses_other_counts(tmp_path, capsys):
    for value in ("0", "9", "-1", "five", "2.5"):
        target = tmp_path / f"p{value}"
        assert main(["phantom", str(target), "--size", "small", "--positions", value]) == 2
        err = capsys.readouterr().err
        assert f"--positions: got '{value}'" in err and "1 to 8" in err
        assert "Traceback" not in err
        assert not target.exists()


def test_segmental_anatomy_in_memory():
    """The Python API the Slicer module and the web page use; territories partition the
    liver, each tumour lies inside its own territory, the names make file names."""
    from tareplanner.imaging.anatomy import default_anatomy
    from tareplanner.imaging.phantom import spec_for_size

    assert spec_for_size("small") == spec_for_size("small", positions=2)
    assert spec_for_size("small").anatomy == default_anatomy()
    for count in range(1, 9):
        spec = spec_for_size("small", positions=count)
        a = spec.anatomy
        names = [t.name for t in a.territories]
        assert len(names) == len(set(names)) == count
        assert all(n.replace(" ", "").isalnum() for n in names)
        for field in ("maa_fractions", "cbct_angles_deg", "cbct_translations_mm",
                      "pet_activities_gbq"):
            assert len(getattr(spec, field)) == count
        assert sum(spec.maa_fractions) == pytest.approx(1.0, abs=1e-6)
        # each tumour entirely in the liver and in one territory (points of its sphere)
        for k, tumour in enumerate(a.tumours):
            (cx, cy, cz), r = tumour.centre_mm, tumour.radius_mm
            g = np.linspace(-r, r, 9)
            dz, dy, dx = np.meshgrid(g, g, g, indexing="ij")
            ball = dx ** 2 + dy ** 2 + dz ** 2 <= (0.99 * r) ** 2  # surface points: rounding
            z, y, x = cz + dz[ball], cy + dy[ball], cx + dx[ball]
            labels = a.labels(z, y, x)
            assert np.all(labels == 8 + k), (count, tumour.name)
            territory = a.territory(labels, z, y, x)
            assert np.all(territory == a.tumour_territory(k)), (count, tumour.name)
        if count >= 3:
            assert len(a.tumours) == count
            assert sorted(a.tumour_territory(k) for k in range(count)) == list(range(1, count + 1))
    with pytest.raises(ValueError, match="positions: got 9"):
        spec_for_size("small", positions=9)


def test_territories_agree_where_they_overlap():
    """A point in two territories belongs to the first, in the map and for a tumour alike."""
    from dataclasses import replace

    from tareplanner.imaging.anatomy import Sector, default_anatomy

    base = default_anatomy()
    whole = Sector("whole", (0.0, 0.0), 0.0, 360.0)
    a = replace(base, territories=(whole, *base.territories))
    z, y, x = np.array([-5.0, 0.0]), np.array([-8.0, -22.0]), np.array([-78.0, 20.0])
    labels = a.labels(z, y, x)
    assert list(a.territory(labels, z, y, x)) == [1, 1]
    assert a.tumour_territory(0) == a.tumour_territory(1) == 1


@slow
def test_one_position_is_the_whole_liver(tmp_path, capsys):
    """``--positions 1``: one territory, the whole liver, measured from the territory map."""
    d = tmp_path / "patient"
    assert main(["phantom", str(d), "--size", "small", "--positions", "1", "--no-pet"]) == 0
    assert "--territories" in capsys.readouterr().out
    truth = json.loads((d / "truth.json").read_text())
    assert [p["name"] for p in truth["positions"]] == ["proper hepatic"]
    assert truth["positions"][0]["tumours"] == ["T1", "T2", "T3"]
    whole = truth["volumes_ml"]["territories"]["proper hepatic"]
    assert whole["perfused"] == pytest.approx(truth["volumes_ml"]["liver"])
    assert (d / "dicom" / "cbct_proper_hepatic").is_dir()
    assert main(["measure", "--ct", str(d / "nifti" / "ct.nii.gz"),
                 "--spect", str(d / "nifti" / "spect_maa.nii.gz"),
                 "--liver", str(d / "labels" / "liver.nii.gz"),
                 "--tumours", str(d / "labels" / "tumours.nii.gz"),
                 "--tumour-names", "T1,T2,T3",
                 "--territories", str(d / "labels" / "territories.nii.gz"),
                 "--territory-names", "proper hepatic", "--goal", "tumour_dose_gy=200",
                 "--product", "therasphere", "-o", str(tmp_path / "case.json")]) == 0
    case = json.loads((tmp_path / "case.json").read_text())
    (position,) = case["positions"]
    assert position["normal_volume_ml"] == pytest.approx(whole["normal"], rel=0.03)
    for tumour in position["tumours"]:
        assert tumour["tnr"] == pytest.approx(truth["tnr_maa"][tumour["name"]], rel=0.05)
