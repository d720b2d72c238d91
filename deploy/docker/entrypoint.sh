#!/bin/sh
# Start an Enclave container: refuse to serve with a missing or altered model file, then
# hand the process over to the `enclave` command (exec, so signals reach it directly).
#
# `enclave models verify` hashes every file of the mounted model directory
# ($ENCLAVE_MODEL_DIR, read-only at /models) against its manifest and exits non-zero on a
# mismatch or a missing file. Other commands (models list, audit verify, --help) run as is.
set -eu

case "${1:-}" in
  serve | worker | run)
    if ! enclave models verify; then
      echo "entrypoint: model files in ${ENCLAVE_MODEL_DIR:-the model directory} failed verification; not starting" >&2
      exit 78 # EX_CONFIG: the container's configuration (its mounted models) is wrong
    fi
    ;;
esac

exec enclave "$@"
