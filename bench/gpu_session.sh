#!/bin/sh
# Every GPU figure of docs/performance.md in two device calls (each under the tool's 10 minutes).
# The device machine has Python 3.12, torch, transformers, h5py, numpy, scipy, sacrebleu,
# sentencepiece, pandas, PyYAML, tqdm and safetensors; the rest comes as wheels in the
# git-ignored .whl/, made here (no internet there) with:
#
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux_2_28_x86_64 --platform any -d .whl \
#       espeakng-loader==0.2.4 num2words==0.5.14 soundfile==0.14.0 \
#       pytest pluggy iniconfig packaging pygments cffi pycparser
#
# (num2words' docopt is for its command line only and has no wheel: --no-deps leaves it out.)
# Then, with the device tool, carrying .whl:
#
#   sh bench/gpu_session.sh tests-probe     # pytest -m gpu, probe overhead, sketch fidelity
#   sh bench/gpu_session.sh train           # training overhead, probe throughput, a job to BLEU
#
# Reports go to $OUT (or ./gpu-out), one file per figure.
set -u
part=${1:?"which part: tests-probe or train"}
out=${OUT:-gpu-out}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONPATH=. GRADLENS_CACHE=/tmp/gradlens-cache GRADLENS_RUNS=/tmp/gradlens-runs
python -m pip install -q --no-index --no-deps .whl/*.whl 2>&1 | tail -2
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import sys, torch, transformers, numpy; print('python', sys.version.split()[0], \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, \
'numpy', numpy.__version__)"; } > "$out/device.txt" 2>&1
cat "$out/device.txt"

timed() {  # timed NAME COMMAND...: its output into $out/NAME.txt, with its wall time
    name=$1; shift
    start=$(date +%s)
    "$@" > "$out/$name.txt" 2>&1
    rc=$?
    echo "# rc $rc, $(( $(date +%s) - start )) s: $*" >> "$out/$name.txt"
    tail -n 25 "$out/$name.txt"
}

case "$part" in
tests-probe)
    # only the files that hold GPU tests: the others import the app's stack (streamlit, ray,
    # playwright), which this machine does not have and the GPU tests do not need
    timed gpu_tests python -m pytest -m gpu -rs -v -p no:cacheprovider \
        $(grep -l "pytest.mark.gpu" tests/test_*.py)
    timed probe_overhead python bench/probe_overhead.py --model medium-random --k 4096 \
        --seconds 10 --batch 8 --reps 30
    timed sketch_fidelity python bench/sketch_fidelity.py --model medium-random --k 4096 --batch 8
    ;;
train)
    timed train_overhead python bench/train_overhead.py --model medium-random
    timed probe_throughput python -m gradlens probe --model medium-random \
        --languages spa deu fra rus --steps 6 --batch-size 8 --sketch-dim 4096 --device cuda \
        --out "$GRADLENS_RUNS/medium"
    timed plan python -m gradlens plan "$GRADLENS_RUNS/medium" --budget 0.1
    # six probe steps rarely show divergence beyond noise: the job's plan also splits the
    # module the paper made language-specific, so that the job routes on the GPU
    python -c "
from gradlens.plan import load_plan, save_plan
plan = load_plan('$GRADLENS_RUNS/medium/plan.json')
split = plan.with_split('speech_encoder.encoder.layers.11.ffn2', [['spa', 'fra'], ['deu', 'rus']],
                        edited=True)
save_plan(split, '$GRADLENS_RUNS/medium/plan-split.json')" > "$out/plan_split.txt" 2>&1
    timed train_job python -m gradlens train --plan "$GRADLENS_RUNS/medium/plan-split.json" \
        --device cuda --steps 40 --batch-size 8 --learning-rate 1e-4 --warmup-steps 4 \
        --eval-every 40 --eval-size 8 --checkpoint-every 40 --log-every 5
    ;;
*)
    echo "unknown part $part: tests-probe or train" >&2
    exit 2
    ;;
esac
