#!/usr/bin/env bash
# Every CUDA measurement of issue 15 in one go, for a GPU lent for a few minutes:
#
#     bash benchmarks/cuda_session.sh DATA_ROOT OUTPUT_DIR [SECONDS] [SECONDS_PER_NOTEBOOK]
#
# DATA_ROOT holds MNIST in torchvision's layout (MNIST/raw/*.gz). In order, each under its own
# time limit so that a slow step cannot take the later ones' results with it:
#   0. the tests that need a GPU (tests/test_training.py's CUDA graph tests), if pytest imports;
#   1. `benchmarks/bench.py --device cuda` (what `make bench BENCH_ARGS="--device cuda"` runs):
#      ResidualCNN to 99.0% against the lesson plan's recipe (with and without CUDA graphs),
#      ResNet-18 to 99.5% (4 and 5 epochs), the matmul peak;
#   2. every notebook on its default budget (full, with CUDA), timed per part, executed copies
#      and figures packed into notebooks.tgz; a notebook still running after SECONDS_PER_NOTEBOOK
#      stops at its next cell and is recorded as not finished, with the parts it ran.
# Everything lands in OUTPUT_DIR as at most 8 files, so that a remote runner can bring it back.
#
# Needs torch, matplotlib, tqdm, nbformat, nbclient, ipykernel and pytest importable (PYTHONPATH
# may add them), and mlxtend in the Python installation itself: the graded cells' sandbox starts
# that Python with a clean environment, so a package found only through PYTHONPATH is missing there
# (on 4 December 2026 the first call's two graded notebooks failed on exactly that).
set -u
DATA_ROOT=$(cd "${1:?DATA_ROOT}" && pwd)  # absolute: the notebooks run in notebooks/
OUTPUT=${2:?OUTPUT_DIR}
SECONDS_LEFT=${3:-520}
SECONDS_PER_NOTEBOOK=${4:-120}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
mkdir -p "$OUTPUT"
# No MPLBACKEND: the kernels must keep their inline backend, or no figure reaches the notebooks.
export PYTHONUNBUFFERED=1 DEEPNETS_DATA_ROOT=$DATA_ROOT
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
PYTHON=${PYTHON:-python3}
START=$(date +%s)
left() { echo $(( SECONDS_LEFT - ($(date +%s) - START) )); }

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PYTHON -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

  echo "== 0. the GPU tests ($(left) s left)"
  # --noconftest: tests/conftest.py orders the whole suite and imports the course tools (jupytext).
  timeout 90 $PYTHON -m pytest -q --noconftest -p no:cacheprovider tests/test_training.py -k "cuda or recorded" -rs

  echo "== 1. bench --device cuda ($(left) s left)"
  timeout 240 $PYTHON benchmarks/bench.py --device cuda --resnet18-epochs 4 5 \
    --data-root "$DATA_ROOT" --output-dir "$OUTPUT"

  echo "== 2. notebooks, default budget ($(left) s left)"
  rm -rf /tmp/cuda-notebooks
  # Shortest first, so that a lease running out takes the longest.
  timeout $(( $(left) - 15 )) $PYTHON tools/run_notebooks.py --output /tmp/cuda-notebooks \
    --stop-after "$SECONDS_PER_NOTEBOOK" --record "$OUTPUT/demo_timings_cuda.json" \
    notebooks/{session07_overview,day13_overview,residual_cnn,vgg,session07_vanishing_gradients,resnet}.ipynb
  tar czf "$OUTPUT/notebooks.tgz" -C /tmp cuda-notebooks

  echo "== done ($(left) s left)"
} 2>&1 | tee "$OUTPUT/log.txt"
