#!/usr/bin/env bash
# The chaos suites again and again under CPU pressure, one line per run in $OUT (default
# /tmp/faas-chaos-repeat.txt); a failed run keeps its evidence (see README.md, "evidence").
#   bash tests/chaos/repeat.sh 21 22 23 ...      # the seeds
# Each run: two busy-looping processes beside `pytest tests/chaos -k "s3_sqs or local_queue"`
# (the S3/SQS chaos, the local chaos and the S3 soak), about 2-3 minutes on 2 cores.
set -u
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/faas-chaos-repeat.txt}
for seed in "$@"; do
    burners=()
    for _ in 1 2; do python -c "while True: pass" & burners+=($!); done
    start=$(date +%s)
    FAAS_CHAOS_SEED=$seed timeout 600 python -m pytest -q -p no:cacheprovider tests/chaos \
        -k "s3_sqs or local_queue" > "/tmp/faas-chaos-seed$seed.log" 2>&1
    rc=$?
    kill "${burners[@]}" 2>/dev/null
    echo "seed $seed rc $rc $(( $(date +%s) - start )) s: $(tail -1 /tmp/faas-chaos-seed$seed.log)" >> "$out"
done
