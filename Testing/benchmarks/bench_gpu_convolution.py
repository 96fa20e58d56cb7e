"""GPU (CuPy) against CPU (scipy.fft) kernel dose: agreement and speed.

    PYTHONPATH=TAREPlanner python Testing/benchmarks/bench_gpu_convolution.py

Needs CuPy and a CUDA device; imports only numpy, scipy and the physics modules.
"""

import time

import numpy as np

from tareplanner.kernel_data import point_kernel
from tareplanner.physics.gpu import gpu_convolver
from tareplanner.physics.kernels import voxel_kernel
from tareplanner.physics.voxel_dose import convolve_fft, energy_fractions, kernel_dose_gy


def best(fn, repeat=3):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main():
    gpu = gpu_convolver()
    fractions = energy_fractions(voxel_kernel(point_kernel("Y-90"), (4.42,) * 3, 1.04))
    rng = np.random.default_rng(3)
    for shape in [(128, 128, 128), (256, 256, 256), (300, 512, 512)]:
        activity = (rng.random(shape, dtype=np.float32) * 1e-4).astype(np.float32)
        density = np.full(shape, 1.03, np.float32)
        cpu_dose = kernel_dose_gy(activity, 49.67, density, 0.0864, fractions)
        gpu_dose = kernel_dose_gy(activity, 49.67, density, 0.0864, fractions, convolve=gpu)
        rel = float(np.max(np.abs(gpu_dose - cpu_dose)) / np.max(np.abs(cpu_dose)))
        t_cpu = best(lambda: kernel_dose_gy(activity, 49.67, density, 0.0864, fractions,
                                            convolve=convolve_fft))
        t_gpu = best(lambda: kernel_dose_gy(activity, 49.67, density, 0.0864, fractions,
                                            convolve=gpu))
        print(f"{shape}: CPU {t_cpu:.3f} s, GPU {t_gpu:.3f} s (incl. transfers), "
              f"max relative difference {rel:.1e}", flush=True)


if __name__ == "__main__":
    main()
