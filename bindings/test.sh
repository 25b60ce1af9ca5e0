#!/usr/bin/env bash
# The binding tests: builds the FFI library and the control plane, generates the bindings,
# starts a real edgekeep-server on loopback, seeds it, and runs the Kotlin (JVM), Python and
# Swift checks. Called by scripts/test; fails on the first failing step.
#
# Needs: java 17, JNA (/usr/share/java/jna.jar, Debian libjna-java), the npm kotlin-compiler in
# bindings/.tools (see .ci/run), python3 with pytest, tree-sitter, tree-sitter-swift, and a C
# compiler.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export RUST_LIB_BACKTRACE=0
target="${CARGO_TARGET_DIR:-$root/target}"
lib="$target/debug/libedgekeep_ffi.so"
tools="$root/bindings/.tools/node_modules/kotlin-compiler"
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { echo "== bindings: $*"; }

# One workspace build with the feature set `cargo test --workspace` resolves, so after the Rust
# tests this reuses their artifacts: the FFI library, edgekeep-server, uniffi-bindgen and the
# fleet fixture.
step "build (edgekeep-ffi, edgekeep-server, uniffi-bindgen, fleet fixture)"
cargo build --locked -q --workspace --lib --bins --examples

step "generate Swift, Kotlin and Python"
gen="$work/generated"
bindings/generate.sh "$lib" "$gen" >/dev/null

step "API snapshot and Swift checks"
python3 bindings/swift/check_swift.py --swift-dir "$gen/swift" --library "$lib" \
  --snapshot bindings/api/edgekeep-ffi.api --readme bindings/README.md

step "compile the Kotlin tests"
[ -x "$tools/bin/kotlinc" ] || { echo "kotlinc missing: npm install --prefix bindings/.tools kotlin-compiler" >&2; exit 1; }
[ -f "$jna" ] || { echo "JNA missing: apt-get install libjna-java" >&2; exit 1; }
coroutines="$tools/lib/kotlinx-coroutines-core-jvm.jar"
"$tools/bin/kotlinc" -nowarn -cp "$jna:$coroutines" -d "$work/kotlin-tests.jar" \
  "$gen/kotlin/dev/edgekeep/edgekeep_ffi.kt" bindings/kotlin/EdgeKeepTest.kt

step "start edgekeep-server"
"$target/debug/edgekeep-server" init --data "$work/server" --org "Bindings CI" >"$work/init.txt"
owner="$(sed -n 's/^owner API key: *//p' "$work/init.txt")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$target/debug/edgekeep-server" serve --data "$work/server" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$work/server.log" || { echo "server did not start" >&2; cat "$work/server.log"; exit 1; }
url="https://127.0.0.1:$port"

# Seeds the control plane once (publisher key, published + approved + rolled-out model, 12
# single-use bootstrap tokens) and exports what the tests read; each language gets 6 tokens.
"$target/debug/examples/fleet_fixture" "$url" "$work/server/tls/ca.pem" "$owner" \
  models/logreg.onnx classifier 12 >"$work/fleet.json"
fleet() { python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$work/fleet.json" "$1"; }
export EK_URL="$url" EK_ORG="$(fleet 'f["org_id"]')" EK_PUBLISHER_KEY="$(fleet 'f["publisher_key"]')"
export EK_SLOT="$(fleet 'f["slot"]')" EK_CA_PEM_FILE="$work/server/tls/ca.pem" EK_MODELS_DIR="$root/models"

step "Kotlin tests (JVM)"
EK_TOKENS="$(fleet '",".join(f["tokens"][:6])')" \
java -Djna.library.path="$(dirname "$lib")" \
  -cp "$work/kotlin-tests.jar:$jna:$coroutines:$tools/lib/kotlin-stdlib.jar" \
  dev.edgekeep.test.EdgeKeepTestKt

step "Python tests"
ln -s "$lib" "$gen/python/libedgekeep_ffi.so"
EK_TOKENS="$(fleet '",".join(f["tokens"][6:])')" \
PYTHONPATH="$gen/python" python3 -m pytest -q -p no:cacheprovider bindings/python

step "all binding tests passed"
