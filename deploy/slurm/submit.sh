#!/usr/bin/env bash
# Submit the sharded evaluation and its merge: N array tasks (default 4), then the merge once all of them succeeded.
#   SHARDS=8 RUN_DIR=runs/qwen3-8b MODEL=Qwen/Qwen3-8B BASE_URL=http://gpu-node:8000/v1 deploy/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SHARDS="${SHARDS:-4}"
export SHARDS
array=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" "$here/eval-array.sbatch")
array="${array%%;*}"
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" "$here/merge.sbatch")
echo "eval array job $array (shards 0-$((SHARDS - 1))), merge job $merge after it"
