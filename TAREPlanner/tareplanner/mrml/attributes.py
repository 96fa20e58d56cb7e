"""The MRML node attribute names this project reads and writes, defined once.

Names that other Slicer modules read are theirs: SlicerRT's dose volume identification
(``DicomRtImport.DoseVolume`` with the dose unit name and value, which SlicerRT's Dose Volume
Histogram and Isodose modules look for) and Slicer's DICOM module's instance UIDs of a loaded
series. The ``TAREPlanner.*`` names are this project's own.
"""

# SlicerRT (DicomRtImportExport): a volume holding dose
DOSE_VOLUME = "DicomRtImport.DoseVolume"
DOSE_UNIT_NAME = "DicomRtImport.DoseUnitName"
DOSE_UNIT_VALUE = "DicomRtImport.DoseUnitValue"
# Slicer's DICOM module: the SOP instance UIDs a volume was loaded from (space separated)
DICOM_INSTANCE_UIDS = "DICOM.instanceUIDs"

# this project
STEP = "TAREPlanner.Step"                       # the guided step that made the node
ROLE = "TAREPlanner.Role"                       # a segment's role (liver, tumour, ...)
RECORD = "TAREPlanner.Record"                   # schema of the record a text node holds
UNITS = "TAREPlanner.Units"                     # units of a volume's voxel values
RADIONUCLIDE = "TAREPlanner.Radionuclide"       # an emission volume's radionuclide (Tc-99m)
#: an emission volume's scan duration in seconds, for a volume with no DICOM header (the
#: synthetic patient's PET); a DICOM volume's is its header's ActualFrameDuration
SCAN_DURATION_S = "TAREPlanner.ScanDurationS"
ISODOSE_LEVEL_GY = "TAREPlanner.IsodoseLevelGy"  # the level of an isodose model
ISODOSE_DOSE_VOLUME = "TAREPlanner.DoseVolume"  # ID of the dose volume an isodose came from
LEVELS_GY = "TAREPlanner.LevelsGy"              # the levels of a dose colour table
CHART = "TAREPlanner.Chart"                      # what a plot chart shows (dose-response)
DICOM_HEADER = "TAREPlanner.DicomHeader"        # JSON: patient, study and series of a volume
DICOM_FILES = "TAREPlanner.DicomFiles"          # JSON list: the DICOM files it was read from
#: the instance UIDs (SHA-256) whose files the DICOM database could not give a header for:
#: not looked up again for the same UIDs
DICOM_HEADER_NOT_FOUND = "TAREPlanner.DicomHeaderNotFound"
STRUCTURES_SERIES = "TAREPlanner.StructuresSeriesUID"  # SEG/RTSTRUCT series it came from
