"""TAREPlanner core: planning and verification of liver radioembolization (TARE/SIRT).

The core is free of I/O in its physics and free of MRML everywhere except
:mod:`tareplanner.mrml`. See ``docs/`` for the physics and the file formats.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
