#!/usr/bin/env bash
# bench/run.sh — start-up, API requests and scale of our scripts, side by side with kubectl, against
# the simulated cluster on 127.0.0.1 (bench/BenchServer.java). One command regenerates
# bench/RESULTS.md; raw data (hyperfine CSV, logs, caches) goes to bench/out/.
#
#   bench/run.sh                       # RUNS=6 timed runs per command after WARMUP=2 warm-ups
#   RUNS=5 BENCH_NOTE="..." bench/run.sh
#
# Environment: RUNS, WARMUP, SCALE_NODES (100), SCALE_DEVICES (50), KUBECTL (/usr/bin/kubectl),
# BENCH_BASELINE (commit whose scripts are the "before" of the start-up tuning), BENCH_NOTE (a
# line printed at the top of RESULTS.md, e.g. why the figures are provisional),
# ATTACH_VMI_PHASE_DELAY_MS / ATTACH_CONTROLLER_DELAY_MS (simulator latencies for attach, default 0).
# Never contacts anything but 127.0.0.1: scripts run by path, not by alias (an alias lookup ends in
# JBang's built-in jbanghub catalog: a DNS query for raw.githubusercontent.com even with
# --offline), and every ./jbang call is --offline (no downloads: the Maven repository must be
# warm, e.g. after ./jbang test).
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
root=$PWD
out=$root/bench/out
results=$root/bench/RESULTS.md
RUNS=${RUNS:-6}
WARMUP=${WARMUP:-2}
SCALE_NODES=${SCALE_NODES:-100}
SCALE_DEVICES=${SCALE_DEVICES:-50}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BENCH_BASELINE=${BENCH_BASELINE:-2d806a4}
export JBANG_NO_VERSION_CHECK=true

rm -rf "$out"
mkdir -p "$out"
log() { printf '[bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Tools: hyperfine (Debian package) if we may install it, else loops of /usr/bin/time.
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
install_if_missing() { # package command
  command -v "$2" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    log "installing $1 (apt-get)"
    apt-get install -y "$1" >"$out/apt-$1.log" 2>&1 || log "could not install $1, see $out/apt-$1.log"
  fi
  command -v "$2" >/dev/null 2>&1
}
install_if_missing time /usr/bin/time || { echo "bench: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
if install_if_missing hyperfine hyperfine; then timer=hyperfine; else timer=time-loop; fi
command -v jq >/dev/null || { echo "bench: jq is needed (apt-get install jq)" >&2; exit 1; }
[ -x "$KUBECTL" ] || { echo "bench: kubectl not found at $KUBECTL (set KUBECTL)" >&2; exit 1; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Simulated clusters: one BenchServer per scenario, each stopped when this script exits (its stdin
# is a FIFO we hold open; closing it ends the server; the trap also kills it by pid).
server_pids=()
cleanup() {
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME [BenchServer args] — sets $state (dir with kubeconfig, control, env)
start_server() {
  local name=$1; shift
  state=$out/server-$name
  mkdir -p "$state"
  mkfifo "$state/stdin"
  ./jbang --offline bench/BenchServer.java "$state" "$@" <"$state/stdin" >"$state/server.log" 2>&1 &
  server_pids+=($!)
  exec {hold}>"$state/stdin"
  local i
  for i in $(seq 600); do
    [ -s "$state/ready" ] && break
    kill -0 "${server_pids[-1]}" 2>/dev/null || { cat "$state/server.log" >&2; echo "bench: server $name died" >&2; exit 1; }
    sleep 0.5
  done
  [ -s "$state/ready" ] || { echo "bench: server $name not up after 300 s" >&2; exit 1; }
  log "server $name: $(cat "$state/ready") ($(grep DEVICES "$state/env"))"
}
requests_reset() { curl -sf "$(cat "$1/control")/reset" >/dev/null; }
requests_count() { curl -sf "$(cat "$1/control")/requests" | grep -c . || true; }

# ---------------------------------------------------------------------------------------------
# measure NAME RUNS COMMAND — wall time of COMMAND (a shell line) after WARMUP warm-ups.
# Sets $median (s), $cpu (user+sys s, mean). Raw data in $out/NAME.csv.
measure() {
  local name=$1 runs=$2 cmd=$3
  if [ "$timer" = hyperfine ]; then
    hyperfine --style basic --warmup "$WARMUP" --runs "$runs" --output=null \
      --export-csv "$out/$name.csv" "$cmd" >"$out/$name.log" 2>&1 \
      || { cat "$out/$name.log" >&2; echo "bench: '$cmd' failed" >&2; exit 1; }
    median=$(awk -F, 'NR==2 {printf "%.3f", $4}' "$out/$name.csv")
    cpu=$(awk -F, 'NR==2 {printf "%.3f", $5 + $6}' "$out/$name.csv")
  else
    local i
    for i in $(seq "$WARMUP"); do bash -c "$cmd" >/dev/null 2>&1; done
    : >"$out/$name.csv"
    for i in $(seq "$runs"); do
      /usr/bin/time -f '%e %U %S' -o "$out/$name.time" bash -c "$cmd" >/dev/null 2>"$out/$name.log" \
        || { cat "$out/$name.log" >&2; echo "bench: '$cmd' failed" >&2; exit 1; }
      tail -1 "$out/$name.time" >>"$out/$name.csv"
    done
    median=$(sort -n "$out/$name.csv" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}')
    cpu=$(awk '{s+=$2+$3} END {printf "%.3f", s/NR}' "$out/$name.csv")
  fi
}
# once NAME COMMAND — one run (at most 300 s): sets $wall (s), $rss (peak RSS, MiB, largest
# process of the run) and $rc; stdout and stderr in $out/NAME.out and .err.
once() {
  local name=$1 cmd=$2
  rc=0
  /usr/bin/time -v -o "$out/$name.timev" timeout 300 bash -c "$cmd" >"$out/$name.out" 2>"$out/$name.err" || rc=$?
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; printf "%.3f", s}' "$out/$name.timev")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$out/$name.timev")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a/b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "**not met**"}'; }

jb="./jbang --offline"
kc() { echo "$KUBECTL --kubeconfig $1/kubeconfig --cache-dir $out/kube-cache get pcidevices.devices.harvesterhci.io -o wide"; }
kc_short() { echo "$KUBECTL --kubeconfig $1/kubeconfig --cache-dir $out/kube-cache get pcidevices -o wide"; }
inv() { echo "JBANG_CACHE_DIR=$out/cache/inventory $jb scripts/inventory.java --kubeconfig $1/kubeconfig $2"; }

# ---------------------------------------------------------------------------------------------
# 1. First (cold) run of each script: a fresh JBANG_CACHE_DIR (build, and the //CDS dump where the
#    script has it), warm Maven repository and launcher. inventory runs for real (-o json, checked
#    to parse: the CDS dump run must not pollute stdout); the others run --help.
start_server base
base=$state
cold_rows=()
for script in scripts/*.java; do
  name=$(basename "$script" .java)
  # Only inventory runs for real; --help exits at once even for sandbox and demo, which otherwise
  # serve until stopped.
  if [ "$name" = inventory ]; then args="-o json --kubeconfig $base/kubeconfig"; else args="--help"; fi
  log "cold: $name $args"
  once "cold-$name" "JBANG_CACHE_DIR=$out/cache/$name $jb $script $args"
  check=$([ "$rc" = 0 ] || echo "**failed: exit $rc**, see bench/out/cold-$name.err")
  if [ "$name" = inventory ]; then
    if jq -e '.devices | length > 0' "$out/cold-$name.out" >/dev/null 2>&1; then check="stdout is valid JSON $check"; else check="**stdout is NOT valid JSON** $check"; fi
  fi
  cds=$(find "$out/cache/$name/jars" -name '*.jsa' 2>/dev/null | grep -q . && echo yes || echo no)
  cold_rows+=("| \`$name $args\` | $wall | $rss | $cds | $check |")
done
once cold-kubectl "$KUBECTL --kubeconfig $base/kubeconfig --cache-dir $out/kube-cache-cold get pcidevices.devices.harvesterhci.io -o wide"
cold_rows+=("| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` (empty discovery cache) | $wall | $rss | | |")

# ---------------------------------------------------------------------------------------------
# 2. Warm: ./jbang inventory -o wide vs kubectl get pcidevices -o wide, same API server.
log "warm: kubectl vs inventory ($RUNS runs each)"
measure warm-kubectl "$RUNS" "$(kc "$base")"
kubectl_median=$median kubectl_cpu=$cpu
measure warm-kubectl-short "$RUNS" "$(kc_short "$base")"
kubectl_short_median=$median kubectl_short_cpu=$cpu
measure warm-inventory "$RUNS" "$(inv "$base" "-o wide")"
inventory_median=$median inventory_cpu=$cpu
warm_ratio=$(ratio "$inventory_median" "$kubectl_median")

# Start-up tuning, before/after (fewer runs): the scripts as of $BENCH_BASELINE (no //CDS, no
# script JVM options), and today's without the launcher's AppCDS archive.
variant_rows=()
if git cat-file -e "$BENCH_BASELINE^{commit}" 2>/dev/null; then
  mkdir -p "$out/baseline"
  git archive "$BENCH_BASELINE" scripts templates patches | tar -x -C "$out/baseline"
  log "warm: inventory as of $BENCH_BASELINE"
  measure warm-inventory-baseline "$(( (RUNS + 1) / 2 ))" \
    "JBANG_CACHE_DIR=$out/cache/baseline $jb $out/baseline/scripts/inventory.java --kubeconfig $base/kubeconfig -o wide"
  variant_rows+=("| scripts as of $BENCH_BASELINE (script JVM: default JIT and GC, no CDS) | $median | $cpu |")
fi
measure warm-inventory-no-launcher-cds "$(( (RUNS + 1) / 2 ))" "JBANG_WRAPPER_CDS=0 $(inv "$base" "-o wide")"
variant_rows+=("| today's scripts, launcher without AppCDS (JBANG_WRAPPER_CDS=0) | $median | $cpu |")
variant_rows+=("| today's scripts and launcher (the warm figure above) | $inventory_median | $inventory_cpu |")

# ---------------------------------------------------------------------------------------------
# 3. API requests per command (counted at the server; warm caches).
count() { # state command -> $n
  requests_reset "$1"
  bash -c "$2" >/dev/null 2>&1 || { echo "bench: '$2' failed" >&2; exit 1; }
  n=$(requests_count "$1")
}
count "$base" "$(kc "$base")"; req_kubectl=$n
count "$base" "$(kc_short "$base")"; req_kubectl_short=$n
count "$base" "$(inv "$base" "-o wide")"; req_inventory=$n
count "$base" "$(inv "$base" "-o json")"; req_inventory_json=$n
requests_reset "$base"
bash -c "$KUBECTL --kubeconfig $base/kubeconfig --cache-dir $out/kube-cache-fresh get pcidevices.devices.harvesterhci.io -o wide" >/dev/null 2>&1
req_kubectl_cold=$(requests_count "$base")
base_devices=$(sed -n 's/^DEVICES=//p' "$base/env")

# ---------------------------------------------------------------------------------------------
# 4. Scale: SCALE_NODES x SCALE_DEVICES more PCIDevices.
log "scale: starting a server with $SCALE_NODES x $SCALE_DEVICES more devices"
start_server scale --nodes "$SCALE_NODES" --devices "$SCALE_DEVICES"
scale=$state
scale_devices=$(sed -n 's/^DEVICES=//p' "$scale/env")
scale_runs=$(( (RUNS + 1) / 2 ))
measure scale-inventory "$scale_runs" "$(inv "$scale" "-o wide")"
scale_median=$median scale_cpu=$cpu
measure scale-kubectl "$scale_runs" "$(kc "$scale")"
scale_kubectl_median=$median
once scale-inventory-rss "$(inv "$scale" "-o wide")"
[ "$rc" = 0 ] || { cat "$out/scale-inventory-rss.err" >&2; echo "bench: inventory on $scale_devices devices failed" >&2; exit 1; }
scale_rss=$rss
scale_lines=$(grep -c . "$out/scale-inventory-rss.out")
once scale-inventory-json-rss "$(inv "$scale" "-o json")"
scale_json_rss=$rss
count "$scale" "$(inv "$scale" "-o wide")"; req_scale_inventory=$n
count "$scale" "$(kc "$scale")"; req_scale_kubectl=$n

# ---------------------------------------------------------------------------------------------
# 5. attach: end-to-end wall time minus the simulator's configured latencies (a restart passes
#    the new VMI through Scheduling and Scheduled, each vmiPhaseDelay), on a cluster seeded with
#    the device claimed, on vfio-pci, permitted and allocatable.
attach_row="| \`attach docker-host --device altra-000c01000\` | not measured (attach not present) | | | |"
attach_verdict="not measured (attach not present)"
if [ -f scripts/attach.java ]; then
  log "attach: on a cluster seeded ready"
  start_server ready --ready --controller-delay-ms "${ATTACH_CONTROLLER_DELAY_MS:-0}" --vmi-phase-delay-ms "${ATTACH_VMI_PHASE_DELAY_MS:-0}"
  ready=$state
  # The cold section built attach and dumped its CDS archive (if any); one more --help is a warm-up.
  JBANG_CACHE_DIR=$out/cache/attach $jb scripts/attach.java --help >/dev/null 2>&1 || true
  requests_reset "$ready"
  once attach "JBANG_CACHE_DIR=$out/cache/attach $jb scripts/attach.java docker-host --device altra-000c01000 --kubeconfig $ready/kubeconfig"
  req_attach=$(requests_count "$ready")
  [ "$rc" = 0 ] || req_attach="$req_attach (**attach failed: exit $rc**, see bench/out/attach.err)"
  vmi_delay=$(sed -n 's/^VMI_PHASE_DELAY_MS=//p' "$ready/env")
  latency=$(awk -v d="$vmi_delay" 'BEGIN {printf "%.3f", 2 * d / 1000}')
  overhead=$(awk -v w="$wall" -v l="$latency" 'BEGIN {printf "%.3f", w - l}')
  attach_row="| \`attach docker-host --device altra-000c01000\` | $wall | $latency | **$overhead** | $req_attach |"
  attach_verdict="$overhead s: $(verdict "$overhead" 0.5)"
  [ "$rc" = 0 ] || attach_verdict="**attach failed: exit $rc** (bench/out/attach.err)"
fi

# ---------------------------------------------------------------------------------------------
# RESULTS.md
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
java_version=$(java -version 2>&1 | head -1)
kubectl_version=$("$KUBECTL" version --client 2>/dev/null | head -1)
timer_version=$([ "$timer" = hyperfine ] && hyperfine --version || echo "/usr/bin/time loops")
req_constant=$([ "$req_inventory" = "$req_scale_inventory" ] && echo met || echo "**not met**")

cat >"$results" <<EOF
# Benchmarks

Generated by \`bench/run.sh\` (one command; raw data in \`bench/out/\`, not committed). Every
command runs against the simulated cluster on 127.0.0.1 (\`bench/BenchServer.java\`: the test
simulator plus API discovery and the PCIDevice table kubectl asks for). \`./jbang\` runs each
script by path with \`--offline\` (no catalog probe, no downloads); kubectl gets the same
kubeconfig. On a loaded machine compare the CPU columns: they suffer less from waiting for a core.
${BENCH_NOTE:+
> $BENCH_NOTE
}
| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| machine | $(nproc) CPUs, $cpu_model |
| load average (1/5/15 min) | before: $load_before — after: $load_after |
| java | $java_version |
| kubectl | $kubectl_version |
| timer | $timer_version, $WARMUP warm-up runs, $RUNS timed runs (before/after and scale: $scale_runs) |

## Targets

| target | figure | result |
|---|---|---|
| warm \`./jbang inventory -o wide\` ≤ 4× kubectl | ${inventory_median} s vs ${kubectl_median} s = ${warm_ratio}× | $(verdict "$warm_ratio" 4) |
| API requests constant in device count | inventory: $req_inventory requests for $base_devices devices, $req_scale_inventory for $scale_devices | $req_constant |
| $scale_devices devices ≤ 2 s warm, peak RSS reported | ${scale_median} s, peak RSS ${scale_rss} MiB | $(verdict "$scale_median" 2) |
| attach overhead ≤ 0.5 s over the simulator's latencies | $attach_verdict | |

## Warm start-up, same API server ($base_devices PCIDevices)

| command | median wall (s) | CPU user+sys (s, mean) | API requests |
|---|---|---|---|
| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` | $kubectl_median | $kubectl_cpu | $req_kubectl (with a cold discovery cache: $req_kubectl_cold) |
| \`kubectl get pcidevices -o wide\` (short name) | $kubectl_short_median | $kubectl_short_cpu | $req_kubectl_short |
| \`./jbang inventory -o wide\` | $inventory_median | $inventory_cpu | $req_inventory |
| ratio inventory / kubectl (resource.group name) | ${warm_ratio}× | | |
| ratio inventory / kubectl (short name) | $(ratio "$inventory_median" "$kubectl_short_median")× | | |
| \`./jbang inventory -o json\` | | | $req_inventory_json |

kubectl reads only the PCIDevices; inventory also reads the claims and the VMs (to show claim
state and the VM using each device), always in 3 list requests. With a \`resource.group\` name
kubectl first tries it as \`resource.version.group\`, misses in its discovery cache, drops the
cache and reads discovery again on every call; with the short name it uses its discovery cache. \`./jbang\` runs the script by path (\`scripts/inventory.java\`):
the alias form (\`./jbang inventory\`) also parses the catalog and looks up JBang's built-in
jbanghub catalog (a DNS query even with \`--offline\`), which this benchmark must not do.

### Start-up tuning, before and after (\`./jbang inventory -o wide\`, warm)

| variant | median wall (s) | CPU user+sys (s) |
|---|---|---|
$(printf '%s\n' "${variant_rows[@]}")

Script JVM: \`//RUNTIME_OPTIONS -XX:TieredStopAtLevel=1 -XX:+UseSerialGC\` in \`scripts/lib/Cli.java\`
(JBang honours it from an included file: every script gets it) and \`//CDS\` in \`scripts/inventory.java\`
(JBang ignores \`//CDS\` in an included file, so each script needs its own line). JVM logging goes
to stderr so the CDS dump run keeps stdout clean. Launcher JVM (\`./jbang\`): C1 only, serial GC,
AppCDS archive made on its first run that launches a script.

## First (cold) run of each script

Fresh \`JBANG_CACHE_DIR\` (compile, resolve from the warm Maven repository, CDS dump where the
script has \`//CDS\`); the launcher is warm. One run each.

| command | wall (s) | peak RSS (MiB) | CDS archive made | check |
|---|---|---|---|---|
$(printf '%s\n' "${cold_rows[@]}")

## Scale: $scale_devices PCIDevices ($SCALE_NODES nodes × $SCALE_DEVICES devices + the seed)

| command | median wall (s) | CPU user+sys (s) | peak RSS (MiB) | API requests |
|---|---|---|---|---|
| \`./jbang inventory -o wide\` ($scale_lines lines) | $scale_median | $scale_cpu | $scale_rss | $req_scale_inventory |
| \`./jbang inventory -o json\` | | | $scale_json_rss | |
| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` | $scale_kubectl_median | | | $req_scale_kubectl |

Peak RSS is \`/usr/bin/time -v\` "Maximum resident set size": the largest single process of the
run (the launcher JVM or the script JVM). The simulator answers a list in one page; a real API
server pages kubectl's list by 500 (kubectl sends \`limit=500\`), our fabric8 list asks for all.

## attach, end to end

Cluster seeded ready (claims with owner references and passthrough enabled, vfio-pci, permitted in
the KubeVirt CR, allocatable on altra). Overhead = wall time − the simulator's configured latencies
(2 × vmiPhaseDelay: the restarted VMI's Scheduling and Scheduled phases). One run, warm script cache.

| command | wall (s) | simulator latencies (s) | overhead (s) | API requests |
|---|---|---|---|---|
$attach_row
EOF
sed -i "s|$out|bench/out|g; s|$root/||g" "$results"
log "wrote $results"
cat "$results"
