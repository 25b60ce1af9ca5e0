//! `uniffi-bindgen`, pinned to the UniFFI version `edgekeep-ffi` is built with (a mismatch
//! makes the generated code reject the library at load time). Used by `bindings/generate.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
