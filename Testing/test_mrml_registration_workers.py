"""The registration step of both views (guided.register_positions) registers the positions'
CBCTs side by side in worker processes, as ``tareplanner measure`` does, and gives the
transforms the one-after-the-other path gives.

Bugs these catch: the step registering one CBCT after the other in the views' process (the
web page runs in a plain Python that imports slicer-core, which an earlier check took for
the 3D Slicer application and kept serial: three positions took three registrations' time);
workers whose transforms differ from the serial ones (another seed, sampling, mask or thread
count in the worker); a transform node attached to the wrong position's CBCT when the
results come back out of order; the 3D Slicer application (whose executable cannot be
spawned) starting workers.
"""

import multiprocessing
import os
import threading
import types

import numpy as np
import pytest
import slicer

from tareplanner.imaging import registration
from tareplanner.mrml import guided
from tareplanner.mrml.segmentations import masks_from_segmentation
from tareplanner.mrml.volumes import image_from_volume_node
from tareplanner.mrml.workflow import registration_from_transform_node

pytestmark = pytest.mark.slow


def _matrices(p) -> dict[str, np.ndarray]:
    """Position name -> the 4 x 4 CT-to-CBCT matrix of its CBCT's transform node."""
    out = {}
    for position in p.positions:
        transform = registration_from_transform_node(position.cbct.GetParentTransformNode())
        matrix = np.eye(4)
        matrix[:3, :3] = np.reshape(transform.GetMatrix(), (3, 3))
        matrix[:3, 3] = transform.GetTranslation()
        out[position.name] = matrix
    return out


class _Children:
    """The process ids of this process's multiprocessing children, polled while a block
    runs (the workers of a ProcessPoolExecutor are multiprocessing children)."""

    def __init__(self):
        self.pids: set[int] = set()
        self._stop = threading.Event()

    def _poll(self):
        while not self._stop.is_set():
            self.pids |= {child.pid for child in multiprocessing.active_children()}
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_three_positions_register_in_workers_as_one_after_the_other(monkeypatch):
    scene = slicer.vtkMRMLScene()
    p = guided.Parameters()
    patient = guided.load_synthetic_patient(scene, p, positions=3)
    names = [q.name for q in p.positions]
    assert len(names) == 3

    # one after the other, in this process (the path of one CPU or the Slicer application)
    monkeypatch.setattr(registration, "REGISTRATION_PROCESSES", 1)
    with _Children() as serial_children:
        serial_text = guided.register_positions(scene, p)
    assert serial_children.pids == set()
    serial = _matrices(p)

    # side by side: three at a time, whatever the number of CPUs of the test machine
    monkeypatch.setattr(registration, "REGISTRATION_PROCESSES", 3)
    with _Children() as children:
        text = guided.register_positions(scene, p)
    workers = children.pids - {os.getpid()}
    assert len(workers) == 2, f"expected two worker processes, saw {children.pids}"
    parallel = _matrices(p)

    ct = image_from_volume_node(p.ctVolume)
    liver = masks_from_segmentation(scene, p.segmentation, p.ctVolume)["liver"]
    liver_points = np.array([ct.TransformIndexToPhysicalPoint(tuple(int(v) for v in index))
                             for index in np.argwhere(liver)[::400][:, ::-1]])
    for name in names:
        # the same registration wherever it ran: within 1e-6 of each matrix element
        # (each worker runs the registration on one thread with the same seed)
        np.testing.assert_allclose(parallel[name], serial[name], rtol=0, atol=1e-6,
                                   err_msg=name)
        # and the right one for its CBCT: within 2 mm of the phantom's true transform (its
        # truth, not the code under test) at every 400th liver voxel (docs/benchmarks.md:
        # largest errors 0.9 to 1.4 mm on the synthetic patients)
        estimated = registration_from_transform_node(
            p.positions[names.index(name)].cbct.GetParentTransformNode())
        truth = registration.euler_from_dict(patient.truth["cbct_transforms"][name])
        errors = registration.transform_error_mm(estimated, truth, liver_points)
        assert errors.max() < 2.0, (name, errors.max())
    assert text == serial_text          # the panel's text (rotations, shifts, MI) too
    # one transform node per CBCT, the earlier run's removed
    assert len({q.cbct.GetParentTransformNode().GetID() for q in p.positions}) == 3
    tagged = [n for n in (scene.GetNthNodeByClass(i, "vtkMRMLTransformNode")
                          for i in range(scene.GetNumberOfNodesByClass("vtkMRMLTransformNode")))
              if n.GetAttribute(guided.STEP_TAG) == "registration"]
    assert len(tagged) == 3


def test_the_slicer_application_registers_one_after_the_other(monkeypatch):
    """Inside the 3D Slicer application (``slicer.app`` exists) no worker is started:
    its executable is not a Python that 'spawn' can run."""
    monkeypatch.setitem(__import__("sys").modules, "slicer",
                        types.SimpleNamespace(app=object()))
    assert registration.embedded_interpreter()
    started = []
    monkeypatch.setattr(registration, "_worker_pool", lambda n: started.append(n))
    monkeypatch.setattr(registration, "_registration_job",
                        lambda fixed, moving, mask, **options: ("registered", moving))
    monkeypatch.setattr(registration, "register_rigid",
                        lambda fixed, moving, mask, **options: ("here", moving))
    out = registration.register_rigid_all("ct", ["a", "b", "c"], None, processes=3)
    assert out == [("here", "a"), ("here", "b"), ("here", "c")] and started == []


def test_slicer_core_in_a_plain_python_is_not_embedded(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "slicer", types.SimpleNamespace())
    assert not registration.embedded_interpreter()
