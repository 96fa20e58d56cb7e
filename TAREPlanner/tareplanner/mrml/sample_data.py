"""The synthetic patient as MRML nodes: what the module's Sample Data entry loads.

Built in memory from the core phantom (no download): planning CT, MAA SPECT (counts), one
contrast CBCT per injection position, the post-treatment Y-90 PET (Bq/mL at acquisition start)
and a segmentation node with the liver and the tumours (roles set); lungs and territories are
left for the workflow's helpers, as with a real patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import SimpleITK as sitk

from ..imaging.phantom import make_phantom, pet_scan_duration_s, spec_for_size
from ..imaging.phantom_files import label_images
from . import attributes
from .segmentations import segmentation_from_labels
from .volumes import volume_node_from_image

SAMPLE_NAME = "TAREPlanner synthetic patient"


@dataclass
class SamplePatient:
    ct: object
    spect: object
    segmentation: object
    cbcts: dict = field(default_factory=dict)         # position name -> CBCT volume node
    pet: object | None = None
    administration_time: str | None = None
    pet_acquisition_time: str | None = None
    truth: dict = field(default_factory=dict)


def load_synthetic_patient(scene, size: str = "small", *, seed: int | None = None,
                           positions: int = 2) -> SamplePatient:
    """Add the synthetic patient's volumes and its liver/tumour segmentation to ``scene``:
    ``positions`` 2 is the right and left hepatic patient, 1 to 8 the segmental one with that
    many injection positions (one CBCT each)."""
    from .workflow import add_mask_segment, set_role

    overrides = {} if seed is None else {"seed": int(seed)}
    phantom = make_phantom(spec_for_size(size, positions, **overrides))
    ct = volume_node_from_image(scene, phantom.ct, "TAREPlanner CT")
    spect = volume_node_from_image(scene, phantom.spect, "TAREPlanner SPECT Tc-99m MAA")
    spect.SetAttribute(attributes.UNITS, "counts")
    spect.SetAttribute(attributes.RADIONUCLIDE, "Tc-99m")
    labels = label_images(phantom)
    names = list(phantom.truth["volumes_ml"]["tumours"])
    segmentation = segmentation_from_labels(
        scene, labels["tumours"], {k: n for k, n in enumerate(names, start=1)}, ct,
        "TAREPlanner structures")
    for name in names:
        set_role(segmentation, name, "tumour")
    add_mask_segment(segmentation, ct, "liver",
                     sitk.GetArrayFromImage(labels["liver"]).astype(bool), "liver")
    cbcts = {name: volume_node_from_image(scene, image, f"TAREPlanner CBCT {name}")
             for name, image in phantom.cbcts.items()}
    patient = SamplePatient(ct=ct, spect=spect, segmentation=segmentation, cbcts=cbcts,
                            truth=phantom.truth)
    if phantom.pet is not None:
        patient.pet = volume_node_from_image(scene, phantom.pet, "TAREPlanner PET Y-90")
        patient.pet.SetAttribute(attributes.UNITS, "Bq/mL")
        patient.pet.SetAttribute(attributes.RADIONUCLIDE, "Y-90")
        patient.pet.SetAttribute(attributes.SCAN_DURATION_S,
                                 repr(pet_scan_duration_s(phantom.spec)))
        patient.administration_time = phantom.truth["y90_pet"]["administration_time"]
        patient.pet_acquisition_time = phantom.truth["y90_pet"]["acquisition_start"]
    return patient
