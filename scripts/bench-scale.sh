#!/usr/bin/env bash
# Measures the product at scale against the emulator, through aws-front (which counts
# every AWS call by operation): N small layers x arches x R regions, phase by phase.
#   scripts/bench-scale.sh [--layers N] [--regions R] [--arches 1|2] [--repeat K] [--out FILE] [--no-check] [--aws-pages]
# --no-check publishes without the import checks (`check`'s cost, not publishing's).
# --aws-pages makes the front answer lists in AWS's pages (Lambda's lists 50 items, S3's
# 1,000 keys, or fewer when asked), where moto answers each list whole in one page.
# Phases: build (`cargo xtask layer --all`), bootstrap (the buckets), first publish
# (`publish-all --yes`), no-op publish (the same again), status. Each phase's wall time,
# CPU time of the tool's processes (not the emulator's), AWS calls (the front's counts,
# reset before it) and peak memory (the largest process of the phase, GNU time's %M) are
# printed as one Markdown table, then the calls by operation;
# --out also writes them as JSON. --repeat K runs the whole sequence K times, each in a new
# repo copy with a new emulator and front, and reports every run.
# Needs what scripts/test-env.sh sets up (the build image, moto's virtualenv), no network:
# each layer installs a tiny pure-Python wheel made here, with `builder = "pip"`.
# The binaries are the debug build `cargo xtask` uses, compiled before the first phase.
set -euo pipefail

LAYERS=50 REGIONS=2 ARCHES=1 REPEAT=1 OUT="" NO_CHECK=0 AWS_PAGES=0
while (($#)); do
  case $1 in
    --layers) LAYERS=$2; shift 2 ;;
    --regions) REGIONS=$2; shift 2 ;;
    --arches) ARCHES=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-check) NO_CHECK=1; shift ;;
    --aws-pages) AWS_PAGES=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench-scale: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $LAYERS =~ ^[1-9][0-9]*$ && $REGIONS =~ ^([1-9]|1[0-7])$ && $ARCHES =~ ^[12]$ && $REPEAT =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench-scale: --layers N>=1, --regions 1..17, --arches 1|2, --repeat K>=1" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${LAYER_REPO_CACHE:-/var/cache/layer-repo-test}
IMAGE=${XTASK_TEST_IMAGE:-layer-repo-test/build-python3.13:trixie}
MOTO=$CACHE/moto-venv/bin/moto_server
log() { echo "bench-scale: $*" >&2; }

[[ -x $MOTO ]] || { log "no moto_server at $MOTO: run scripts/test-env.sh first"; exit 1; }
if [[ ! -x /usr/bin/time ]]; then
  log "installing GNU time (apt) for peak memory"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
command -v curl >/dev/null || { log "curl is needed (scripts/test-env.sh installs it)"; exit 1; }

log "building the binaries (debug, as cargo xtask runs them)"
# One package a build: built together, cargo would unify hyper's features. xtask-aws is
# compiled by the product's own hand-off (a warm-up command below, not measured): built
# here, cargo would build it with other settings than the `cargo run` xtask starts.
for pkg in xtask aws-front; do (cd "$ROOT" && cargo build --quiet -p "$pkg"); done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-scale.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $WORK (BENCH_KEEP=1)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for WHAT SECONDS COMMAND...: runs COMMAND until it succeeds, for at most SECONDS.
wait_for() {
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "$what did not come up within ${secs} s"; return 1
}

# make_repo DIR ENDPOINT: a copy of the repo template with LAYERS layers, each one wheel.
make_repo() {
  local dir=$1 endpoint=$2 regions="" arches='"x86_64"' i name
  (cd "$ROOT" && git archive HEAD layers.toml published) | tar -x -C "$dir"
  for i in $(seq 1 "$REGIONS"); do regions+="${regions:+, }\"$(sed -n "${i}p" <<<$'us-east-1\neu-west-1\nus-west-2\neu-central-1\nap-south-1\nus-east-2\neu-north-1\nap-northeast-1\nca-central-1\nus-west-1\neu-west-2\neu-west-3\nap-southeast-1\nap-southeast-2\nap-northeast-2\nsa-east-1\nap-northeast-3')\""; done
  [[ $ARCHES == 2 ]] && arches='"x86_64", "arm64"'
  # The template's [defaults] and profiles, made local: the test image, one profile on the front.
  python3 - "$dir/layers.toml" "$IMAGE" "$endpoint" "$regions" "$arches" "bench$$-$RANDOM" <<'PY'
import re, sys
path, image, endpoint, regions, arches, bucket = sys.argv[1:]
text = open(path).read()
text = re.sub(r'(?m)^image = .*$', f'image = "{image}"', text, count=1)
text = re.sub(r'(?m)^check_image = .*$', f'check_image = "{image}"', text, count=1)
text = re.sub(r'(?m)^architectures = .*$', f'architectures = [{arches}]', text, count=1)
text = re.sub(r'(?m)^builder = .*$', 'builder = "pip"', text, count=1)
text = re.sub(r'(?m)^license = .*$', 'license = "MIT"', text, count=1)
text = text[: text.index("\n[profiles.")] if "\n[profiles." in text else text
text += f'\n[profiles.staging]\nregions = [{regions}]\nbucket = "{bucket}-{{region}}"\nendpoint_url = "{endpoint}"\n'
open(path, "w").write(text)
PY
  for i in $(seq -w 1 "$LAYERS"); do
    name=bench$i
    mkdir -p "$dir/layers/$name"
    python3 - "$dir/layers/$name" "$name" <<'PY'
import sys, zipfile
d, name = sys.argv[1:]
di = f"{name}-1.0.dist-info"
files = {f"{name}/__init__.py": f"NAME = {name!r}\n", f"{di}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
         f"{di}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
files[f"{di}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{di}/RECORD,,\n"
with zipfile.ZipFile(f"{d}/{name}-1.0-py3-none-any.whl", "w") as z:
    for f, t in files.items():
        z.writestr(zipfile.ZipInfo(f, (1980, 1, 1, 0, 0, 0)), t)
PY
    echo "./$name-1.0-py3-none-any.whl" >"$dir/layers/$name/requirements.txt"
  done
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
TARGETS=$((LAYERS * ARCHES * REGIONS))
for run in $(seq 1 "$REPEAT"); do
  MOTO_PORT=$(free_port)
  "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
  PIDS+=($!)
  wait_for "moto_server on port $MOTO_PORT" 30 curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/"
  "$ROOT/target/debug/aws-front" --upstream "http://127.0.0.1:$MOTO_PORT" >"$WORK/front.out" 2>"$WORK/front.err" &
  PIDS+=($!)
  wait_for "aws-front's first line" 10 grep -q "listening on" "$WORK/front.out"
  FRONT=$(sed -n 's/^aws-front listening on //p' "$WORK/front.out" | head -1)
  REPO=$WORK/repo$run
  mkdir -p "$REPO"
  make_repo "$REPO" "$FRONT"
  if [[ $run == 1 ]]; then
    log "warm-up: cargo xtask status compiles the AWS half if needed (not measured)"
    (cd "$ROOT" && cargo xtask --repo "$REPO" status --color never >/dev/null 2>&1) || true
  fi
  extra=()
  [[ $ARCHES == 2 ]] && extra=(--allow-unverified) # arm64 imports cannot be checked without emulation
  [[ $NO_CHECK == 1 ]] && extra=(--no-check) # publishing alone: the import checks are `check`'s cost
  phases=("build|layer --all" "bootstrap|bootstrap" "first publish|publish-all --yes ${extra[*]}"
          "no-op publish|publish-all --yes ${extra[*]}" "status|status")
  for p in "${phases[@]}"; do
    phase=${p%%|*} args=${p#*|}
    curl -sf -X POST "$FRONT/__front/reset" >/dev/null
    # page_size 1000 = each list's own AWS page (the front takes the smaller of it and
    # the list's default or asked page size).
    [[ $AWS_PAGES == 1 ]] && curl -sf -X POST -d '{"page_size":1000}' "$FRONT/__front/faults" >/dev/null
    log "run $run: $phase (cargo xtask $args)"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # args are words
    if ! (cd "$ROOT" && /usr/bin/time -f "%M %U %S" -o "$WORK/mem" cargo xtask --repo "$REPO" $args --color never \
          >"$WORK/phase.out" 2>"$WORK/phase.err"); then
      log "$phase failed:"; tail -20 "$WORK/phase.err" >&2; exit 1
    fi
    end=$(date +%s.%N)
    curl -sf "$FRONT/__front/counts" >"$WORK/counts.json"
    python3 - "$phase" "$start" "$end" "$(tail -1 "$WORK/mem")" "$TARGETS" "$run" "$WORK/counts.json" >>"$RESULTS" <<'PY'
import json, sys
phase, start, end, mem, targets, run, counts = sys.argv[1:]
kib, user, sys_s = mem.split()
c = json.load(open(counts))
print(json.dumps({"run": int(run), "phase": phase, "targets": int(targets), "wall_s": round(float(end) - float(start), 2),
                  "cpu_s": round(float(user) + float(sys_s), 2),
                  "calls": c["total"], "peak_mib": round(int(kib) / 1024, 1), "operations": c["operations"],
                  "faults": c["faults"], "max_in_flight": c["max_in_flight"]}))
PY
  done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
done

python3 - "$RESULTS" "$OUT" "$LAYERS" "$ARCHES" "$REGIONS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, layers, arches, regions = sys.argv[2:]
print(f"{layers} layers x {arches} arch(es) x {regions} region(s) = {rows[0]['targets']} targets\n")
print("| run | phase | targets | wall s | cpu s | calls | calls/target | peak MiB | max in flight |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    inflight = ", ".join(f"{k} {v}" for k, v in sorted(r["max_in_flight"].items())) or "-"
    print(f"| {r['run']} | {r['phase']} | {r['targets']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['calls']} | "
          f"{r['calls'] / r['targets']:.2f} | {r['peak_mib']:.1f} | {inflight} |")
print()
for r in rows:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(r["operations"].items(), key=lambda kv: (-kv[1], kv[0]))) or "none"
    print(f"- run {r['run']} {r['phase']}: {ops}")
if out:
    json.dump({"layers": int(layers), "arches": int(arches), "regions": int(regions), "phases": rows}, open(out, "w"), indent=2)
PY
