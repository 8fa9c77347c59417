#!/usr/bin/env bash
# One prepared GPU call: on a fresh GPU machine, in 9 minutes, everything rlrep measures on a GPU.
#
#   bash experiments/gpu_benchmarks.sh OUT [--dry-run]
#
# 1. setup: the wheels ../shared/gpu/make-wheels.sh put into .whl/ (gymnasium, SB3, kornia,
#    dm_control, mujoco) and rlrep itself, installed without the network;
# 2. the CUDA tests (device-resident replay and augmentation, the agents' device path);
# 3. throughput: random crop (bench_crop.py), aux-loss overhead (bench_aux_update.py), the CURL-SAC
#    update (bench_curl_sac.py), pretraining images/s (bench_pretrain.py), end-to-end frames/s of
#    `rlrep train` (bench_end_to_end.py: CURL-SAC and DrQ-v2, in-process env and --overlap);
# 4. DMC runs until the deadline, side by side on the machine's cores and its GPU: CURL-SAC on
#    cartpole-swingup (3 seeds) and DrQ-v2 (1 seed), 100k frames, --overlap; a run cut by the
#    deadline still gives its frames/s and the minutes a 100k-frame run takes at that rate.
# Everything goes to OUT: summary.md, dmc_runs.csv, dmc.png, end_to_end.csv, and all.tar.gz with
# every log, CSV and run folder (the device tool returns at most 8 files).
#
# --dry-run: the same sequence on the CPU with tiny budgets (CI runs it), so the GPU call is
# never the first run of this script.
set -uo pipefail
out=$(realpath -m "${1:?usage: gpu_benchmarks.sh OUT [--dry-run]}")
dry=0
[ "${2:-}" = "--dry-run" ] && dry=1
cd "$(dirname "$0")/.."
mkdir -p "$out/logs" "$out/runs"
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
start=$(date +%s)
budget=${RLREP_GPU_BUDGET_S:-540}  # 9 minutes, setup included
left() { echo $((budget - ($(date +%s) - start))); }
step() {  # step NAME SECONDS COMMAND...: a logged command with a time cap; its failure is noted
    local name=$1 cap=$2
    shift 2
    [ $dry -eq 1 ] && cap=$((cap * 4))  # the caps are the GPU's budget; CI's CPU may be busy
    local t0
    t0=$(date +%s)
    timeout "$cap" "$@" >"$out/logs/$name.txt" 2>&1
    local rc=$?
    echo "| $name | $rc | $(($(date +%s) - t0)) s |" >>"$out/steps.md"
    [ $rc -eq 0 ] || {
        failed=1
        echo "$name: exit $rc (log: logs/$name.txt)"
        tail -5 "$out/logs/$name.txt"
    }
}
failed=0  # a step that fails is reported and the rest still run (on a GPU, minutes are scarce)
echo "| step | exit | seconds |" >"$out/steps.md"
echo "| --- | --- | --- |" >>"$out/steps.md"

if [ $dry -eq 1 ]; then
    device=cpu
    python=python
else
    device=cuda
    python=python3
    if [ -d .whl ]; then  # the wheels make-wheels.sh prepared (the machine has no network)
        $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site
    fi
    $python -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
    nvidia-smi >"$out/logs/nvidia-smi.txt" 2>&1
fi
$python - >"$out/logs/versions.txt" 2>&1 <<'PY'
import platform, torch, rlrep
print(platform.platform(), "python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
git rev-parse HEAD >"$out/logs/commit.txt" 2>/dev/null

# 2. CUDA tests (the dry run: the agents' device path on the CPU; the suite runs the others).
tests=(tests/test_device_paths.py)
[ $dry -eq 0 ] && tests+=(tests/test_buffer.py tests/test_augment.py)
step tests 120 $python -m pytest -q -rs -p no:cacheprovider "${tests[@]}"

# 3. Throughput.
if [ $dry -eq 1 ]; then
    step bench_crop 60 $python experiments/bench_crop.py --repeats 2 --csv "$out/bench_crop.csv"
    step bench_aux_update 60 $python experiments/bench_aux_update.py --device cpu --batch-size 8 \
        --gradient-steps 1 --rounds 1
    step bench_curl_sac 60 $python experiments/bench_curl_sac.py --device cpu --batch-size 8 \
        --gradient-steps 1 --rounds 1
    step end_to_end 120 $python experiments/bench_end_to_end.py --rounds 1 --window 4 \
        --initial-steps 10 --batch-size 8 --eval-episodes 1 --device cpu \
        --runs "curl-sac/rlrep --overlap" --out "$out"
else
    step bench_crop 40 $python experiments/bench_crop.py --repeats 20 --csv "$out/bench_crop.csv"
    step bench_aux_update 40 $python experiments/bench_aux_update.py --device cuda \
        --batch-size 512 --rounds 5
    step bench_curl_sac 40 $python experiments/bench_curl_sac.py --device cuda --batch-size 512
    step bench_pretrain 60 $python experiments/bench_pretrain.py --device cuda --epochs 2 \
        --data-dir "$out/data"
    step end_to_end 150 $python experiments/bench_end_to_end.py --rounds 1 --window 500 \
        --eval-episodes 2 --device cuda --out "$out" \
        --runs curl-sac/rlrep "curl-sac/rlrep --overlap" drqv2/rlrep "drqv2/rlrep --overlap"
fi

# 4. DMC runs until the deadline (what is left of it, less a minute for the report).
if [ $dry -eq 1 ]; then
    runs=("curl-sac 1" "drqv2 1")
    # action repeat 8 for both: a 125-step evaluation episode (DrQ-v2's 2 would make it 500)
    extra=(--steps 160 --eval-every 160 --eval-episodes 1
        --set initial_steps=10 batch_size=8 action_repeat=8)
    cap=150
else
    runs=("curl-sac 1" "curl-sac 2" "curl-sac 3" "drqv2 1")
    extra=(--steps 100k --eval-every 10k --eval-episodes 5)  # the presets: the papers' batches
    cap=$(($(left) - 60))
fi
threads=$([ $dry -eq 1 ] && echo 1 || echo 2)  # the learners' threads: 16 cores, 4 runs + workers
pids=()
for r in "${runs[@]}"; do
    set -- $r
    agent=$1 seed=$2
    timeout -s INT "$cap" $python -m rlrep.cli train --env cartpole-swingup --agent "$agent" \
        --seed "$seed" --device "$device" --overlap --threads "$threads" --no-progress \
        --out "$out/runs/$agent-s$seed" "${extra[@]}" >"$out/logs/dmc-$agent-s$seed.txt" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do  # on the GPU, the deadline's interrupt is the expected end
    wait "$pid" || { [ $dry -eq 1 ] && failed=1; }
done

# Report: the runs' table and plot, the summary, one archive of everything.
$python experiments/gpu_report.py "$out" --device "$device" >"$out/logs/report.txt" 2>&1 \
    || tail -20 "$out/logs/report.txt"
tar -czf "$out/all.tar.gz" -C "$out" logs runs steps.md $(cd "$out" && ls *.csv 2>/dev/null)
cat "$out/summary.md" 2>/dev/null
echo "gpu_benchmarks: $(($(date +%s) - start)) s; results in $out"
exit $failed
