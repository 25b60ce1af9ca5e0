#!/usr/bin/env bash
# Builds EdgeKeepFFI.xcframework (iOS device, iOS simulator, macOS) with the size-optimized
# profile and writes the generated Swift API into Sources/EdgeKeep, so this folder is a Swift
# package an app can add (File > Add Package Dependencies > Add Local, or a path dependency).
# Needs macOS with Xcode and rustup; not run on Linux CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
profile="${PROFILE:-release-small}"
cd "$root"

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
  cargo build --locked -p edgekeep-ffi --profile "$profile" --target "$t"
done
lib() { echo "$target/$1/$profile/libedgekeep_ffi.$2"; }

# The Swift API and the C module, generated from the host library.
host="$(uname -m | sed 's/arm64/aarch64/')-apple-darwin"
generated="$here/build/generated"
bindings/generate.sh "$(lib "$host" dylib)" "$generated"
headers="$here/build/headers"
rm -rf "$headers" && mkdir -p "$headers"
cp "$generated/swift/EdgeKeepFFI.h" "$headers/"
cp "$generated/swift/EdgeKeepFFI.modulemap" "$headers/module.modulemap"
mkdir -p "$here/Sources/EdgeKeep"
cp "$generated/swift/EdgeKeep.swift" "$here/Sources/EdgeKeep/EdgeKeep.swift"

# One static library per platform (simulator and macOS slices merged with lipo).
fat="$here/build/fat"
rm -rf "$fat" && mkdir -p "$fat/ios-sim" "$fat/macos"
lipo -create "$(lib aarch64-apple-ios-sim a)" "$(lib x86_64-apple-ios a)" -output "$fat/ios-sim/libedgekeep_ffi.a"
lipo -create "$(lib aarch64-apple-darwin a)" "$(lib x86_64-apple-darwin a)" -output "$fat/macos/libedgekeep_ffi.a"

rm -rf "$here/build/EdgeKeepFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios a)" -headers "$headers" \
  -library "$fat/ios-sim/libedgekeep_ffi.a" -headers "$headers" \
  -library "$fat/macos/libedgekeep_ffi.a" -headers "$headers" \
  -output "$here/build/EdgeKeepFFI.xcframework"
echo "built $here/build/EdgeKeepFFI.xcframework; add $here as a Swift package"
