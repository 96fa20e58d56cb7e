"""Voxel dosimetry of a case: predictive (from the MAA/scout SPECT and the plan's activities)
and post-treatment (from Y-90 PET in Bq/mL, or from SPECT counts scaled to the administered
activity), dose maps, DVHs and indices per structure, BED, and delivered-versus-planned.

Grids: the dose is computed on the emission image's grid (SPECT/PET); structures are CT-grid
label maps. Structure occupancy on the dose grid (for distributing activity) is computed by
supersampling (k³ points per dose voxel, nearest CT voxel); DVHs are computed at CT
resolution, the dose being linearly interpolated onto the CT grid (every CT voxel counted with
its volume), which handles partial dose voxels at structure edges.

Modules: :mod:`.structures` (structure masks, occupancy of dose voxels), :mod:`.activity`
(activity maps, post-treatment activity check), :mod:`.dose` (dose maps, structure reports,
BED, delivered against planned), :mod:`.partition` (voxel means against the partition
model), :mod:`.voxel_plan` (activities planned on voxel doses), :mod:`.files` (dose folder
files: maps and CSV tables). The dose record itself is :mod:`tareplanner.records.dose_record`.
"""
