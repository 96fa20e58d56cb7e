"""The only part of TAREPlanner that touches MRML (3D Slicer's scene).

Everything here takes the scene (``vtkMRMLScene``) as an argument and works with the PyPI
package ``slicer-core`` as well as inside the Slicer application: volumes and segmentations to
and from SimpleITK/numpy with correct geometry (LPS <-> RAS), results back as a dose volume
(SlicerRT conventions), tables and DVH plots.
"""
