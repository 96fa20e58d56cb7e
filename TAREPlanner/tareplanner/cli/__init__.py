"""The ``tareplanner`` command line (never imports slicer)."""
