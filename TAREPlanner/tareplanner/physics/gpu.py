"""Optional GPU convolution with CuPy (extra ``tareplanner[gpu]``), imported only when asked
for. The CPU path (:func:`tareplanner.physics.voxel_dose.convolve_fft`) stays the default;
this one computes the same zero-padded single-precision FFT convolution on the GPU."""

from __future__ import annotations

import importlib.util

import numpy as np


def cupy_available() -> bool:
    """True when CuPy is installed (a GPU may still be missing; see :func:`gpu_convolver`)."""
    return importlib.util.find_spec("cupy") is not None


def gpu_convolver():
    """A drop-in replacement of ``convolve_fft`` running on the GPU.

    Raises RuntimeError with an installation hint when CuPy or a CUDA device is missing.
    """
    if not cupy_available():
        raise RuntimeError("the GPU path needs CuPy: pip install 'tareplanner[gpu]' "
                           "(or the cupy-cudaXXx wheel that matches your CUDA)")
    import cupy as cp
    import cupyx.scipy.fft as cufft

    try:
        cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as exc:
        raise RuntimeError(f"CuPy found no CUDA device: {exc}") from None

    def convolve(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        v = cp.asarray(values, dtype=cp.float32)
        k = cp.asarray(kernel, dtype=cp.float32)
        shape = [n + m - 1 for n, m in zip(v.shape, k.shape)]
        fshape = [cufft.next_fast_len(s, real=True) for s in shape]
        spectrum = cufft.rfftn(v, fshape)
        spectrum *= cufft.rfftn(k, fshape)
        del v
        full = cufft.irfftn(spectrum, fshape)
        del spectrum
        start = [(m - 1) // 2 for m in k.shape]
        out = full[tuple(slice(b, b + n) for b, n in zip(start, values.shape))]
        return cp.asnumpy(cp.ascontiguousarray(out))

    return convolve
