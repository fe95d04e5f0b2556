#!/usr/bin/env bash
# bench/run.sh — start-up, API requests and scale of our scripts, side by side with kubectl in one
# run, against the simulated cluster on 127.0.0.1 (bench/BenchServer.java). One command
# regenerates bench/RESULTS.md; raw data (per-run figures, strace logs, caches) goes to bench/out/.
#
#   bench/run.sh                         # ~6-8 minutes on 2 idle cores
#   RUNS=5 BENCH_NOTE="..." bench/run.sh
#
# Environment: RUNS (9: rounds of the warm comparison; each round runs every command once, in
# turn, so load that comes and goes hits them alike), SCALE_NODES (100), SCALE_DEVICES (50),
# KUBECTL (/usr/bin/kubectl), BENCH_BASELINE (commit whose scripts are the "before" of the
# start-up work), BENCH_AOT_JDK (a JDK >= 24 for the AOT-cache row; default: the first one found
# in /usr/lib/jvm), BENCH_COLD_DEMO (1: time a first `./jbang demo` on a fresh machine),
# BENCH_NOTE (a line printed at the top of RESULTS.md, e.g. how loaded the machine was),
# ATTACH_VMI_PHASE_DELAY_MS / ATTACH_CONTROLLER_DELAY_MS (simulator latencies for attach, default 0).
# Never contacts anything but 127.0.0.1: every ./jbang call is --offline (the Maven repository must
# be warm, e.g. after ./jbang test), and the fresh-machine run downloads from a Maven repository
# served on 127.0.0.1 from ~/.m2 (bench/LocalMavenMirror.java).
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
root=$PWD
out=$root/bench/out
results=$root/bench/RESULTS.md
RUNS=${RUNS:-9}
SCALE_NODES=${SCALE_NODES:-100}
SCALE_DEVICES=${SCALE_DEVICES:-50}
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
BENCH_BASELINE=${BENCH_BASELINE:-2d806a4}
BENCH_COLD_DEMO=${BENCH_COLD_DEMO:-1}
export JBANG_NO_VERSION_CHECK=true
started=$(date +%s)

rm -rf "$out"
mkdir -p "$out"
log() { printf '[bench] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Tools
for tool in /usr/bin/time jq curl strace; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install ${tool##*/})" >&2; exit 1; }
done
[ -x "$KUBECTL" ] || { echo "bench: kubectl not found at $KUBECTL (set KUBECTL)" >&2; exit 1; }
jdk_major() { sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null; }
if [ -z "${BENCH_AOT_JDK:-}" ]; then
  for j in /usr/lib/jvm/*; do
    [ -x "$j/bin/java" ] && [ "$(jdk_major "$j")" -ge 24 ] 2>/dev/null && { BENCH_AOT_JDK=$j; break; }
  done
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Simulated clusters: one BenchServer per scenario (its stdin is a FIFO we hold open; closing it
# ends the server). Each is stopped as soon as its section is done: an idle simulator still costs
# CPU (its controllers poll the store), and on 2 cores an idle one beside the command under test
# inflates every figure. The trap kills whatever is left by pid.
declare -A server_pid=() server_fd=()
cleanup() {
  local pid
  for pid in ${server_pid[@]+"${server_pid[@]}"}; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# background NAME FIFO LOG COMMAND...: runs COMMAND with stdin from FIFO (created here) and
# stdout+stderr to LOG; holds FIFO open.
background() {
  local name=$1 fifo=$2 log=$3 fd; shift 3
  mkfifo "$fifo"
  "$@" <"$fifo" >"$log" 2>&1 &
  server_pid[$name]=$!
  exec {fd}>"$fifo"
  server_fd[$name]=$fd
}
# stop_server NAME: closes its stdin, waits for it to exit (kills it after 10 s).
stop_server() {
  local name=$1 pid=${server_pid[$1]} fd=${server_fd[$1]} i
  exec {fd}>&-
  for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "server_pid[$name]" "server_fd[$name]"
}

# start_server NAME [BenchServer args] — sets $state (dir with kubeconfig, control, env)
start_server() {
  local name=$1; shift
  state=$out/server-$name
  mkdir -p "$state"
  background "$name" "$state/stdin" "$state/server.log" env JBANG_CACHE_DIR="$out/cache/server" ./jbang --offline bench/BenchServer.java "$state" "$@"
  local i
  for i in $(seq 600); do
    [ -s "$state/ready" ] && break
    kill -0 "${server_pid[$name]}" 2>/dev/null || { cat "$state/server.log" >&2; echo "bench: server $name died" >&2; exit 1; }
    sleep 0.5
  done
  [ -s "$state/ready" ] || { echo "bench: server $name not up after 300 s" >&2; exit 1; }
  sleep 1 # the server's own start-up (JIT, its controllers' first ticks) settles before anything is timed
  log "server $name: $(cat "$state/ready") ($(grep DEVICES "$state/env"))"
}
requests_reset() { curl -sf "$(cat "$1/control")/reset" >/dev/null; }
requests_count() { curl -sf "$(cat "$1/control")/requests" | grep -c . || true; }

# ---------------------------------------------------------------------------------------------
# Timing. once NAME COMMAND: one run; appends "wall cpu rss" (s, s user+sys, MiB peak RSS of the
# largest process) to $out/NAME.runs; stdout/stderr of the last run in $out/NAME.out/.err; sets
# $wall $cpu $rss $rc, and $t0 $t1 (its start and end, seconds since the epoch).
once() {
  local name=$1 cmd=$2
  t0=$EPOCHREALTIME
  rc=0
  /usr/bin/time -f '%U %S %M' -o "$out/$name.time" timeout 300 bash -c "$cmd" >"$out/$name.out" 2>"$out/$name.err" || rc=$?
  t1=$EPOCHREALTIME
  tail -1 "$out/$name.time" | awk -v a="$t0" -v b="$t1" '{printf "%.3f %.3f %.0f\n", b - a, $1 + $2, $3 / 1024}' >>"$out/$name.runs"
  read -r wall cpu rss < <(tail -1 "$out/$name.runs")
}
must() { # NAME COMMAND: once, and stop the bench if it failed
  once "$1" "$2"
  [ "$rc" = 0 ] || { cat "$out/$1.err" >&2; echo "bench: '$2' failed (exit $rc)" >&2; exit 1; }
}
median() { # FILE COLUMN
  sort -n -k"$2,$2" "$1" | awk -v c="$2" '{a[NR]=$c} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf (c==3 ? "%.0f" : "%.3f"), m}'
}
# rounds N NAME=COMMAND... : one warm-up each, then N rounds running every command once in turn.
rounds() {
  local n=$1 spec i; shift
  for spec in "$@"; do must "${spec%%=*}.warmup" "${spec#*=}"; done
  for i in $(seq "$n"); do
    for spec in "$@"; do must "${spec%%=*}" "${spec#*=}"; done
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a/b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "**not met**"}'; }

# breakdown NAME COMMAND PORT: one run under strace (execve, connect, write): launcher = start ->
# exec of the script's java (the last java started: JBang's own JVM comes first); JVM start -> first connect() to the API server; first request ->
# last write to stdout; last output -> exit. Sets $bd_row ("a | b | c | d"). strace slows every
# traced call a little: compare the parts, not their sum with the timed figures.
breakdown() {
  local name=$1 cmd=$2 port=$3
  strace -f --seccomp-bpf -ttt -q -e trace=execve,connect,write -e signal=none -o "$out/$name.strace" \
    bash -c "$cmd" >/dev/null 2>"$out/$name.strace.err" || { cat "$out/$name.strace.err" >&2; echo "bench: '$cmd' failed under strace" >&2; exit 1; }
  # One pass: the row, then this run's start, exec of the script's java (or "-") and end, seconds
  # since the epoch (bd_start bd_java bd_end), on a second line.
  { IFS= read -r bd_row; read -r bd_start bd_java bd_end; } < <(awk -v port="htons($port)" '
    NR == 1 { start = $2 }
    /execve\(".*\/bin\/java"/ && / = 0$/ { java = $2 }
    /connect\(/ && index($0, port) && !first { first = $2 }
    / write\(1, / { last = $2 }
    { end = $2 }
    END {
      launcher = java ? sprintf("%.3f", java - start) : "–"
      from = java ? java : start
      printf "%s | %.3f | %.3f | %.3f\n", launcher, first - from, last - first, end - last
      printf "%s %s %s\n", start, java ? java : "-", end
    }' "$out/$name.strace")
}

jb="./jbang --offline"
kc() { echo "$KUBECTL --kubeconfig $1/kubeconfig --cache-dir $out/kube-cache get pcidevices.devices.harvesterhci.io -o wide"; }
kc_short() { echo "$KUBECTL --kubeconfig $1/kubeconfig --cache-dir $out/kube-cache get pcidevices -o wide"; }
inv() { echo "JBANG_CACHE_DIR=$out/cache/inventory $jb scripts/inventory.java --kubeconfig $1/kubeconfig $2"; }
port_of() { sed -n 's/.*server: *https*:\/\/[^:]*:\([0-9]*\).*/\1/p' "$1/kubeconfig" | head -1; }

# ---------------------------------------------------------------------------------------------
# 1. First (cold) run of each script: a fresh JBANG_CACHE_DIR (compile; a class-data archive where
#    the script has //CDS and the run is a real one), warm Maven repository and launcher. inventory
#    runs for real (-o json, checked to parse: the archive-recording run must not pollute stdout);
#    the others run --help, which must not leave an archive.
start_server base
base=$state
base_port=$(port_of "$base")
scheme=$(sed -n 's/.*server: *\(https*\):.*/\1/p' "$base/kubeconfig" | head -1)
cold_rows=()
for script in scripts/*.java; do
  name=$(basename "$script" .java)
  # --help exits at once even for sandbox and demo, which otherwise serve until stopped.
  if [ "$name" = inventory ]; then args="-o json --kubeconfig $base/kubeconfig"; else args="--help"; fi
  log "cold: $name $args"
  once "cold-$name" "JBANG_CACHE_DIR=$out/cache/$name $jb $script $args"
  check=$([ "$rc" = 0 ] || echo "**failed: exit $rc**, see bench/out/cold-$name.err")
  if [ "$name" = inventory ]; then
    if jq -e '.devices | length > 0' "$out/cold-$name.out" >/dev/null 2>&1; then check="stdout is valid JSON $check"; else check="**stdout is NOT valid JSON** $check"; fi
  fi
  archive=$(find "$out/cache/$name/jars" \( -name '*.jsa' -o -name '*.aot' \) -printf '%s\n' 2>/dev/null | awk '{printf "%.0f MB", $1 / 1048576}')
  cold_rows+=("| \`$name $args\` | $wall | $cpu | $rss | ${archive:-none} | $check |")
done
once cold-kubectl "$KUBECTL --kubeconfig $base/kubeconfig --cache-dir $out/kube-cache-cold get pcidevices.devices.harvesterhci.io -o wide"
cold_rows+=("| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` (empty discovery cache) | $wall | $cpu | $rss | | |")

# ---------------------------------------------------------------------------------------------
# 2. Warm, side by side on the same API server, interleaved rounds.
log "warm: $RUNS rounds of kubectl, inventory and its variants"
JBANG_CACHE_DIR=$out/cache/inventory JBANG_WRAPPER_PRINT=1 $jb scripts/inventory.java --kubeconfig "$base/kubeconfig" -o wide >"$out/jvm-alone.cmd"
specs=(
  "kubectl=$(kc "$base")"
  "kubectl-short=$(kc_short "$base")"
  "inventory=$(inv "$base" "-o wide")"
  "jvm-alone=$(cat "$out/jvm-alone.cmd")"
  "inventory-via-jbang=JBANG_WRAPPER_FAST=0 $(inv "$base" "-o wide")"
  "inventory-no-archive=JBANG_WRAPPER_SCRIPT_CDS=0 $(inv "$base" "-o wide")"
)
if [ -n "${BENCH_AOT_JDK:-}" ]; then
  aot_inv="JAVA_HOME=$BENCH_AOT_JDK $(inv "$base" "-o wide")"
  must aot-record "$aot_inv"
  for i in $(seq 120); do find "$out/cache/inventory/jars" -name '*.aot' | grep -q . && break; sleep 0.5; done
  specs+=("inventory-jdk$(jdk_major "$BENCH_AOT_JDK")-aot=$aot_inv")
fi
rounds "$RUNS" "${specs[@]}"
row() { # NAME LABEL -> a table row of the medians
  printf '| %s | %s | %s | %s |\n' "$2" "$(median "$out/$1.runs" 1)" "$(median "$out/$1.runs" 2)" "$(median "$out/$1.runs" 3)"
}
kubectl_median=$(median "$out/kubectl.runs" 1)
inventory_median=$(median "$out/inventory.runs" 1)
jvm_median=$(median "$out/jvm-alone.runs" 1)
warm_ratio=$(ratio "$inventory_median" "$kubectl_median")

log "breakdown (one run each under strace)"
breakdown bd-kubectl "$(kc "$base")" "$base_port"; bd_kubectl=$bd_row
breakdown bd-inventory "$(inv "$base" "-o wide")" "$base_port"; bd_inventory=$bd_row
breakdown bd-via-jbang "JBANG_WRAPPER_FAST=0 $(inv "$base" "-o wide")" "$base_port"; bd_via_jbang=$bd_row

# Start-up work, before and after: the scripts as of $BENCH_BASELINE through today's launcher
# without its fast path (JBang then makes the archive its own way: //CDS on the first run).
variant_rows=()
if git cat-file -e "$BENCH_BASELINE^{commit}" 2>/dev/null; then
  mkdir -p "$out/baseline"
  git archive "$BENCH_BASELINE" scripts templates patches | tar -x -C "$out/baseline"
  log "warm: inventory as of $BENCH_BASELINE"
  base_cmd="JBANG_WRAPPER_FAST=0 JBANG_CACHE_DIR=$out/cache/baseline $jb $out/baseline/scripts/inventory.java --kubeconfig $base/kubeconfig -o wide"
  rounds 3 "baseline=$base_cmd"
  variant_rows+=("$(row baseline "scripts as of $BENCH_BASELINE (no archive, default JIT and GC), every run through JBang")")
fi

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
stop_server base

# ---------------------------------------------------------------------------------------------
# 4. Scale: SCALE_NODES x SCALE_DEVICES more PCIDevices.
log "scale: starting a server with $SCALE_NODES x $SCALE_DEVICES more devices"
start_server scale --nodes "$SCALE_NODES" --devices "$SCALE_DEVICES"
scale=$state
scale_devices=$(sed -n 's/^DEVICES=//p' "$scale/env")
scale_runs=$(( (RUNS + 1) / 2 ))
rounds "$scale_runs" "scale-inventory=$(inv "$scale" "-o wide")" "scale-kubectl=$(kc "$scale")" "scale-inventory-json=$(inv "$scale" "-o json")"
scale_median=$(median "$out/scale-inventory.runs" 1)
scale_lines=$(grep -c . "$out/scale-inventory.out")
breakdown bd-scale "$(inv "$scale" "-o wide")" "$(port_of "$scale")"; bd_scale=$bd_row
count "$scale" "$(inv "$scale" "-o wide")"; req_scale_inventory=$n
count "$scale" "$(kc "$scale")"; req_scale_kubectl=$n
stop_server scale

# ---------------------------------------------------------------------------------------------
# 5. attach, on a cluster seeded with the device claimed, on vfio-pci, permitted and allocatable:
#    end-to-end wall time minus the simulator's latency, measured at the server from the arrival of
#    attach's restart request to the simulated KubeVirt's write of phase Running on the new VMI
#    (its reconcile ticks and vmiPhaseDelay through stop, Pending, Scheduling, Scheduled).
attach_row="| \`attach docker-host --device altra-000c01000\` | not measured (attach not present) | | | | |"
attach_verdict="not measured (attach not present)"
bd_attach_row=
attach_split_rows=
# attach_split TIMELINE: from BenchServer's /timeline, sets $first_req (first client request),
# $restart_req (attach's PUT .../virtualmachines/NAME/restart) and $running (phase Running
# written on the VMI created after it), seconds since the epoch, "-" where missing.
attach_split() {
  read -r first_req restart_req running < <(awk '
    $2 == "request" && first == "" { first = $1 }
    $2 == "request" && $3 == "PUT" && $4 ~ /\/virtualmachines\/[^\/?]+\/restart$/ && restart == "" { restart = $1 }
    $2 == "vmi" && restart != "" && $5 == "Pending" && uid == "" { uid = $4 }
    $2 == "vmi" && uid != "" && $4 == uid && $5 == "Running" && running == "" { running = $1 }
    END { printf "%s %s %s\n", first == "" ? "-" : first, restart == "" ? "-" : restart, running == "" ? "-" : running }' "$1")
}
span() { # FROM TO -> seconds between two epoch times, "–" when one is missing
  if [ "$1" = - ] || [ "$2" = - ]; then echo "–"; else awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; fi
}
if [ -f scripts/attach.java ]; then
  log "attach: on a cluster seeded ready"
  attach_cmd() { echo "JBANG_CACHE_DIR=$out/cache/attach $jb scripts/attach.java docker-host --device altra-000c01000 --kubeconfig $1/kubeconfig"; }
  sim_delays=(--controller-delay-ms "${ATTACH_CONTROLLER_DELAY_MS:-0}" --vmi-phase-delay-ms "${ATTACH_VMI_PHASE_DELAY_MS:-0}")
  # Warm-up on a cluster of its own: builds the script and records its archive (only a real run
  # that worked records one); then attach for real, timed, on a fresh cluster.
  start_server ready-warmup --ready
  bash -c "$(attach_cmd "$state")" >"$out/attach-warmup.out" 2>&1 \
    || { cat "$out/attach-warmup.out" >&2; echo "bench: attach warm-up failed" >&2; exit 1; }
  stop_server ready-warmup
  start_server ready --ready "${sim_delays[@]}"
  ready=$state
  requests_reset "$ready"
  once attach "$(attach_cmd "$ready")"
  attach_rc=$rc
  req_attach=$(requests_count "$ready")
  curl -sf "$(cat "$ready/control")/timeline" >"$out/attach.timeline"
  stop_server ready
  [ "$attach_rc" = 0 ] || req_attach="$req_attach (**attach failed: exit $attach_rc**, see bench/out/attach.err)"
  attach_split "$out/attach.timeline"
  latency=$(span "$restart_req" "$running")
  if [ "$attach_rc" != 0 ]; then
    overhead="–"
    attach_verdict="**attach failed: exit $attach_rc** (bench/out/attach.err)"
  elif [ "$latency" = "–" ]; then
    overhead="–"
    attach_verdict="**no restart request or no Running in the server's timeline** (bench/out/attach.timeline)"
  else
    overhead=$(awk -v w="$wall" -v l="$latency" 'BEGIN {printf "%.3f", w - l}')
    attach_verdict="$overhead s: $(verdict "$overhead" 0.5)"
  fi
  attach_row="| \`attach docker-host --device altra-000c01000\` | $wall | $cpu | $latency | **$overhead** | $req_attach |"
  attach_split_rows="| the timed run above | $wall | – | $(span "$t0" "$first_req") (launcher and JVM) | $(span "$first_req" "$restart_req") | $latency | $(span "$running" "$t1") |"

  start_server ready-strace --ready "${sim_delays[@]}"
  requests_reset "$state"
  breakdown bd-attach "$(attach_cmd "$state")" "$(port_of "$state")"
  bd_attach_row="| \`attach docker-host --device altra-000c01000\` | $bd_row |"
  curl -sf "$(cat "$state/control")/timeline" >"$out/bd-attach.timeline"
  stop_server ready-strace
  attach_split "$out/bd-attach.timeline"
  attach_split_rows+="
| one run under strace | $(span "$bd_start" "$bd_end") | $(span "$bd_start" "$bd_java") | $(span "$bd_java" "$first_req") | $(span "$first_req" "$restart_req") | $(span "$restart_req" "$running") | $(span "$running" "$bd_end") |"
fi

# ---------------------------------------------------------------------------------------------
# 6. First `./jbang demo` on a fresh machine: empty HOME (so no ~/.m2, ~/.jbang, bootstrap cache),
#    dependencies downloaded from a Maven repository served on 127.0.0.1 from our warm ~/.m2 (the
#    figure leaves out the transfer from Maven Central: see the bytes served).
cold_demo_row="| not measured (BENCH_COLD_DEMO=0) | | | | |"
cold_demo_verdict="not measured"
if [ "$BENCH_COLD_DEMO" = 1 ]; then
  log "fresh machine: first ./jbang demo"
  fresh=$out/fresh
  mkdir -p "$fresh/home/.m2" "$fresh/mirror"
  background mirror "$fresh/mirror/stdin" "$fresh/mirror/log" java bench/LocalMavenMirror.java "${M2_REPOSITORY:-$HOME/.m2/repository}" "$fresh/mirror"
  for i in $(seq 120); do [ -s "$fresh/mirror/url" ] && break; sleep 0.5; done
  cat >"$fresh/home/.m2/settings.xml" <<EOF
<settings><mirrors><mirror><id>bench-local</id><mirrorOf>*</mirrorOf><url>$(cat "$fresh/mirror/url")</url></mirror></mirrors></settings>
EOF
  h=$fresh/home
  once cold-demo "env -i PATH=$PATH HOME=$h JBANG_WRAPPER_FORCE_BOOTSTRAP=1 LANG=${LANG:-C.UTF-8} JBANG_NO_VERSION_CHECK=true MAVEN_OPTS=-Duser.home=$h JBANG_JAVA_OPTIONS=-Duser.home=$h ./jbang demo --delay-ms 50"
  served=$(awk '{printf "%.0f", $1 / 1048576}' "$fresh/mirror/bytes" 2>/dev/null || echo "?")
  stop_server mirror
  pass=$(grep -q 'RESULT: PASS\|Done:' "$out/cold-demo.out" && echo "demo passed" || echo "**demo failed: exit $rc** (bench/out/cold-demo.err)")
  cold_demo_row="| \`./jbang demo --delay-ms 50\`, empty HOME | $wall | $cpu | $rss | $served MB | $pass |"
  cold_demo_verdict="$wall s + download of $served MB: $(verdict "$wall" 60)"
fi

# ---------------------------------------------------------------------------------------------
# RESULTS.md
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
java_version=$(java -version 2>&1 | head -1)
kubectl_version=$("$KUBECTL" version --client 2>/dev/null | head -1)
variant_text=$(printf '%s\n' ${variant_rows[@]+"${variant_rows[@]}"})
req_constant=$([ "$req_inventory" = "$req_scale_inventory" ] && echo met || echo "**not met**")
elapsed=$(( $(date +%s) - started ))

cat >"$results" <<EOF
# Benchmarks

Generated by \`bench/run.sh\` (one command, $((elapsed / 60)) min $((elapsed % 60)) s; raw data in
\`bench/out/\`, not committed). Every command runs against the simulated cluster on 127.0.0.1
(\`bench/BenchServer.java\`: the test simulator, with API discovery and the PCIDevice table kubectl
asks for), here over **${scheme:-?}** (a bearer token and the simulator's CA in the kubeconfig). \`./jbang\` runs each script with \`--offline\` (no downloads);
kubectl gets the same kubeconfig. Figures are medians of interleaved rounds (each round runs every
command once, in turn). CPU is user+sys of all processes of the run; RSS is the peak of its largest
process. On a loaded machine compare the CPU columns: they suffer less from waiting for a core.
${BENCH_NOTE:+
> $BENCH_NOTE
}
| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| machine | $(nproc) CPUs, $cpu_model |
| load average (1/5/15 min) | before: $load_before — after: $load_after |
| java | $java_version${BENCH_AOT_JDK:+; AOT row: $("$BENCH_AOT_JDK/bin/java" -version 2>&1 | head -1)} |
| kubectl | $kubectl_version |
| runs | $RUNS rounds after one warm-up (scale: $scale_runs; before/after: 3) |

## Targets

| target | figure | result |
|---|---|---|
| warm \`./jbang inventory -o wide\` ≤ 4× kubectl (must: ≤ 6×) | ${inventory_median} s vs ${kubectl_median} s = **${warm_ratio}×** | ≤ 4×: $(verdict "$warm_ratio" 4); ≤ 6×: $(verdict "$warm_ratio" 6) |
| the script JVM alone ≤ 0.6 s | ${jvm_median} s | $(verdict "$jvm_median" 0.6) |
| API requests constant in device count | inventory: $req_inventory requests for $base_devices devices, $req_scale_inventory for $scale_devices | $req_constant |
| $scale_devices devices ≤ 2 s warm | ${scale_median} s | $(verdict "$scale_median" 2) |
| attach overhead ≤ 0.5 s over the simulator's latency (restart request → Running written, see below) | $attach_verdict | |
| first \`./jbang demo\` on a fresh machine ≤ 60 s | $cold_demo_verdict | |

## Warm start-up, same API server ($base_devices PCIDevices)

| command | median wall (s) | median CPU (s) | peak RSS (MiB) |
|---|---|---|---|
$(row kubectl "\`kubectl get pcidevices.devices.harvesterhci.io -o wide\`")
$(row kubectl-short "\`kubectl get pcidevices -o wide\` (short name)")
$(row inventory "\`./jbang inventory -o wide\` (what users run, warm)")
$(row jvm-alone "the script JVM alone (the java command ./jbang runs)")
$(row inventory-via-jbang "\`./jbang inventory -o wide\` without the fast path (JBANG_WRAPPER_FAST=0: JBang's JVM every run)")
$(row inventory-no-archive "\`./jbang inventory -o wide\` without the class-data archive (JBANG_WRAPPER_SCRIPT_CDS=0)")
$(for f in "$out"/inventory-jdk*-aot.runs; do [ -f "$f" ] && n=$(basename "$f" .runs) && row "$n" "\`./jbang inventory -o wide\` on JDK ${n//[!0-9]/} with its AOT cache"; done)
$variant_text

Ratio inventory / kubectl: **${warm_ratio}×** (resource.group name), $(ratio "$inventory_median" "$(median "$out/kubectl-short.runs" 1)")× (short name).

### Where the time goes (one run each under strace; seconds)

| command | launcher (start → script's java) | JVM start → first request | first request → last output | last output → exit |
|---|---|---|---|---|
| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` | $bd_kubectl |
| \`./jbang inventory -o wide\` | $bd_inventory |
| \`./jbang inventory -o wide\`, JBANG_WRAPPER_FAST=0 | $bd_via_jbang |
| \`./jbang inventory -o wide\`, $scale_devices devices | $bd_scale |
${bd_attach_row:-}

For kubectl, "JVM start" is its process start. "First request → last output" holds all API
requests and the rendering.

### API requests

| command | requests |
|---|---|
| \`kubectl get pcidevices.devices.harvesterhci.io -o wide\` | $req_kubectl (with a cold discovery cache: $req_kubectl_cold) |
| \`kubectl get pcidevices -o wide\` | $req_kubectl_short |
| \`./jbang inventory -o wide\` | $req_inventory |
| \`./jbang inventory -o json\` | $req_inventory_json |

kubectl reads only the PCIDevices; inventory also reads the claims and the VMs (to show claim
state and the VM using each device), always in 3 list requests. With a \`resource.group\` name
kubectl first tries it as \`resource.version.group\`, misses in its discovery cache, drops the
cache and reads discovery again on every call; with the short name it uses its discovery cache.

How the warm figure is reached: \`./jbang\` remembers the java command JBang printed for a script
and runs it directly while nothing it depends on changed (no JBang JVM); the script JVM runs with
C1 only and the serial GC (\`//RUNTIME_OPTIONS\` in \`scripts/lib/cli/Cli.java\`) and a class-data archive
recorded by \`./jbang\` from the script's first real run (AppCDS on JDK 17, an AOT cache on JDK ≥ 24).

## First (cold) run of each script

Fresh \`JBANG_CACHE_DIR\` (compile, resolve from the warm Maven repository, and for a real run of a
script with \`//CDS\` the class-data archive); the launcher is warm. One run each. A \`--help\` run
leaves no archive (by design: it would hold a tenth of the classes of a real run).

| command | wall (s) | CPU (s) | peak RSS (MiB) | archive | check |
|---|---|---|---|---|---|
$(printf '%s\n' "${cold_rows[@]}")

## First \`./jbang demo\` on a fresh machine

Empty HOME (no ~/.m2, no ~/.jbang, no JBang bootstrap); every download from a Maven repository on
127.0.0.1 (a copy of Maven Central's files): add the transfer of the bytes served at your bandwidth.

| command | wall (s) | CPU (s) | peak RSS (MiB) | downloaded | check |
|---|---|---|---|---|---|
$cold_demo_row

## Scale: $scale_devices PCIDevices ($SCALE_NODES nodes × $SCALE_DEVICES devices + the seed)

| command | median wall (s) | median CPU (s) | peak RSS (MiB) |
|---|---|---|---|
$(row scale-inventory "\`./jbang inventory -o wide\` ($scale_lines lines; $req_scale_inventory API requests)")
$(row scale-inventory-json "\`./jbang inventory -o json\`")
$(row scale-kubectl "\`kubectl get pcidevices.devices.harvesterhci.io -o wide\` ($req_scale_kubectl API requests)")

The simulator answers a list in one page; a real API server pages kubectl's list by 500 (kubectl
sends \`limit=500\`), our fabric8 list asks for all.

## attach, end to end

Cluster seeded ready (claims with owner references and passthrough enabled, vfio-pci, permitted in
the KubeVirt CR, allocatable on altra); simulator delays: controller ${ATTACH_CONTROLLER_DELAY_MS:-0} ms,
vmiPhaseDelay ${ATTACH_VMI_PHASE_DELAY_MS:-0} ms. One run, warm script cache, no other server running.

**Simulator latency** = from the arrival of attach's restart request (\`PUT …/virtualmachines/docker-host/restart\`)
to the simulated KubeVirt's write of phase Running on the new VMI, both timed at the server: the
controller's reconcile ticks (every 50 ms) carrying the restart through stop → Pending → Scheduling
→ Scheduled → Running, plus vmiPhaseDelay per phase. **Overhead** = wall time − simulator latency:
everything else (launcher, JVM start, attach's reads and patch before the restart, noticing Running
through its watch, output and exit).

| command | wall (s) | CPU (s) | simulator latency (s) | overhead (s) | API requests |
|---|---|---|---|---|---|
$attach_row

Where attach's time goes (seconds; times of requests and of the Running write from the server, the
start, the script's java and the exit from the shell or strace; strace slows each traced call a little):

| run | wall | launcher (start → script's java) | JVM start → first request | first request → restart request | restart → Running written (simulator) | Running written → exit |
|---|---|---|---|---|---|---|
${attach_split_rows:-| not measured (attach not present) | | | | | | |}
EOF
sed -i "s|$out|bench/out|g; s|$root/||g" "$results"
log "wrote $results in $((elapsed / 60)) min $((elapsed % 60)) s"
cat "$results"
