#!/usr/bin/env bash
# Pin the Dockerfile's base image and docker-compose.yml's Redis image to the current digests of
# their tags (run where a registry is reachable, e.g. in a scheduled job that opens a pull request):
# docker buildx imagetools resolves each multi-platform index digest, and the lines are rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-debian:bookworm-slim}"
digest="$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')"
case "$digest" in sha256:*) ;; *) echo "could not resolve a digest for $tag" >&2; exit 1 ;; esac
sed -i -E "s#^FROM ${tag//./\\.}(@sha256:[0-9a-f]{64})? AS base#FROM ${tag}@${digest} AS base#" Dockerfile
grep -n "^FROM .* AS base" Dockerfile

# and the Redis image docker-compose.yml runs (both services use the same one)
redis_tag="redis:7-alpine"
redis_digest="$(docker buildx imagetools inspect "$redis_tag" --format '{{json .Manifest.Digest}}' | tr -d '"')"
case "$redis_digest" in sha256:*) ;; *) echo "could not resolve a digest for $redis_tag" >&2; exit 1 ;; esac
sed -i -E "s#image: ${redis_tag}(@sha256:[0-9a-f]{64})?\$#image: ${redis_tag}@${redis_digest}#" docker-compose.yml
grep -n "image: redis" docker-compose.yml
