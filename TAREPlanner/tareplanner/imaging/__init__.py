"""Imaging: readers, grids, registration, segmentation helpers, quantities, synthetic patient.

Conventions: images are SimpleITK images in LPS physical coordinates (mm); numpy arrays taken
from them are indexed [z, y, x] (``sitk.GetArrayFromImage``) while spacing, origin and sizes
are (x, y, z) as in SimpleITK.
"""
