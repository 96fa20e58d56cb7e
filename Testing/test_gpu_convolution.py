"""The GPU convolution's arithmetic (physics/gpu.py), run on the CPU through a stand-in for
CuPy built from NumPy and scipy.fft (the same function names and arguments CuPy offers), and
compared with scipy.signal.fftconvolve(mode="same"), the independent reference. A real GPU's
agreement is measured by Testing/benchmarks/bench_gpu_convolution.py."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import numpy as np
import pytest
import scipy.fft
from scipy import signal

from tareplanner.physics import gpu


class _CudaRuntimeError(RuntimeError):
    pass


def _stand_in(device_count=None, seen=None):
    """Modules ``cupy``, ``cupyx`` and ``cupyx.scipy.fft`` backed by NumPy and scipy.fft;
    ``device_count`` None: one device, else raise CUDARuntimeError. ``seen`` collects the
    dtypes handed to ``asarray``."""
    cp = types.ModuleType("cupy")
    cp.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    cp.float32 = np.float32

    def asarray(x, dtype=None):
        if seen is not None:
            seen.append(dtype)
        return np.asarray(x, dtype=dtype)

    def get_device_count():
        if device_count is not None:
            raise _CudaRuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return 1

    cp.asarray = asarray
    cp.asnumpy = np.asarray
    cp.ascontiguousarray = np.ascontiguousarray
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count,
                                    CUDARuntimeError=_CudaRuntimeError)
    cp.cuda = types.SimpleNamespace(runtime=runtime)
    cupyx = types.ModuleType("cupyx")
    cupyx_scipy = types.ModuleType("cupyx.scipy")
    fft = types.ModuleType("cupyx.scipy.fft")
    fft.next_fast_len = scipy.fft.next_fast_len
    fft.rfftn = lambda x, s: scipy.fft.rfftn(x, s)
    fft.irfftn = lambda x, s: scipy.fft.irfftn(x, s)
    cupyx.scipy = cupyx_scipy
    cupyx_scipy.fft = fft
    return {"cupy": cp, "cupyx": cupyx, "cupyx.scipy": cupyx_scipy, "cupyx.scipy.fft": fft}


@pytest.mark.parametrize("shape, kernel_shape", [((9, 12, 7), (5, 3, 7)),
                                                  ((10, 8, 6), (4, 6, 3)),
                                                  ((15, 4, 4), (2, 1, 1))])
def test_gpu_convolution_equals_scipy_same_mode(monkeypatch, shape, kernel_shape):
    """Bug caught: the padded size not the full linear convolution (n + m - 1: wrap-around
    of the far edge into the near one), the "same" window started anywhere but at
    (m - 1) // 2 (a shift of the dose by a voxel), the axes' sizes mixed up (uneven shapes
    and kernels of odd and even sizes show it), double instead of single precision handed
    to the GPU. Reference: scipy.signal.fftconvolve(values, kernel, mode="same"). With 15
    values and a kernel of 2 along z the full length is 16 and one less, 15, is itself a
    fast FFT length: a padding one short wraps the last value onto the first."""
    seen: list = []
    for name, module in _stand_in(seen=seen).items():
        monkeypatch.setitem(sys.modules, name, module)
    rng = np.random.default_rng(3)
    values = rng.random(shape)
    kernel = rng.random(kernel_shape)
    assert gpu.cupy_available()
    out = gpu.gpu_convolver()(values, kernel)
    expected = signal.fftconvolve(values, kernel, mode="same")
    assert out.shape == values.shape and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert seen == [np.float32, np.float32]


def test_gpu_path_without_a_device_says_so(monkeypatch):
    """Bug caught: CuPy installed on a machine without a CUDA device ending in CuPy's own
    traceback instead of a RuntimeError that names the missing device and CuPy's reason."""
    for name, module in _stand_in(device_count=0).items():
        monkeypatch.setitem(sys.modules, name, module)
    with pytest.raises(RuntimeError) as info:
        gpu.gpu_convolver()
    assert str(info.value) == ("CuPy found no CUDA device: cudaErrorNoDevice: no CUDA-capable "
                               "device is detected")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_gpu_path_without_cupy_names_the_install(monkeypatch):
    """Bug caught: the missing-CuPy message without the extra to install (or the wheel
    that matches the CUDA version)."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(gpu, "cupy_available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        gpu.gpu_convolver()
    assert str(info.value) == ("the GPU path needs CuPy: pip install 'tareplanner[gpu]' "
                               "(or the cupy-cudaXXx wheel that matches your CUDA)")
