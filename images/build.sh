#!/usr/bin/env bash
# Build one or more images with the versions of images/versions.env.
#
#   images/build.sh [hub|singleuser|singleuser-gpu|dask-worker]...   (default: all)
#
# Run from anywhere; the build context is the repository root (the hub image
# installs wbspawner from source). Set DOCKER=podman to use podman, PUSH=1 to push.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
docker="${DOCKER:-docker}"
args=()
registry=""
version=""
while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    args+=(--build-arg "$key=$value")
    [[ "$key" == IMAGE_REGISTRY ]] && registry="$value"
    [[ "$key" == WBSPAWNER_VERSION ]] && version="$value"
done < "$here/versions.env"
# The notebook images install packages/wb-lab-notices, whose JupyterLab half is
# built from npm first (make venv has the JupyterLab that builds it).
make -C "$root" --no-print-directory lab-notices
images=("$@")
[[ ${#images[@]} -eq 0 ]] && images=(hub singleuser singleuser-gpu dask-worker)
for image in "${images[@]}"; do
    tag="$registry/$image:$version"
    "$docker" build "${args[@]}" -f "$here/$image/Dockerfile" -t "$tag" "$root"
    [[ "${PUSH:-0}" == 1 ]] && "$docker" push "$tag"
done
