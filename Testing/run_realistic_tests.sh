#!/usr/bin/env bash
# The realistic imaging models' tests (docs/imaging.md: the realistic SPECT and Y-90 PET, their
# IEC phantom calibrations and the calibrate -> measure / dose chains): installs the extra
# 'realistic-spect' (PyTomography, PyTorch), checks that it imports, then runs every test that
# needs it. CI runs it after the default and the browser tests. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
# The models run on the CPU, so PyTorch's CPU build is enough: torch 2.13.0 (CPU) lies on the
# disk of the machines this project is tested on, where a plain `torch` would fetch a CUDA
# build of several GB. Elsewhere pip resolves the extra's own choice.
python -c "import torch" 2>/dev/null || pip install "torch==2.13.0" \
    || echo "torch 2.13.0 not available here: the extra brings its own torch"
pip install -e ".[realistic-spect,test]"
# the tests skip without the extra: here they must run
python -c "import pytomography, torch; print('realistic-spect extra: pytomography', \
pytomography.__version__, 'torch', torch.__version__)"
pytest -p no:cacheprovider Testing/test_realistic_spect.py Testing/test_realistic_pet.py \
    Testing/test_pet_scatter_model.py Testing/test_delivered_truth.py
