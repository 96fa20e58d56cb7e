"""DICOM in and out: image series (images.py), RT Dose (rtdose.py), Segmentation (seg.py,
written and read), RT Structure Set input (rtstruct.py); common.py holds the shared header,
UIDs, plane geometry and the planning CT's study and frame of reference."""
