#!/usr/bin/env bash
# Generates the Swift, Kotlin and Python bindings from the built edgekeep-ffi library.
#   bindings/generate.sh [LIBRARY] [OUT_DIR]
# LIBRARY defaults to the dev build (target/debug/libedgekeep_ffi.so, or .dylib on macOS);
# OUT_DIR to bindings/generated. The output is not committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in Darwin) ext=dylib ;; *) ext=so ;; esac
lib="${1:-$target/debug/libedgekeep_ffi.$ext}"
out="${2:-$root/bindings/generated}"
bindgen="${UNIFFI_BINDGEN:-$target/debug/uniffi-bindgen}"

[ -f "$lib" ] || { echo "generate.sh: no library at $lib (cargo build -p edgekeep-ffi)" >&2; exit 1; }
if [ ! -x "$bindgen" ]; then
  (cd "$root" && cargo build --locked -q -p uniffi-bindgen)
fi

rm -rf "$out"
mkdir -p "$out"
cd "$root"
for language in kotlin python swift; do
  "$bindgen" generate --no-format --language "$language" --out-dir "$out/$language" "$lib"
done
echo "generated bindings in $out: $(find "$out" -type f | sed "s|$out/||" | sort | tr '\n' ' ')"
