//! Compile-fail tests: user data cannot be recorded as a metric or put in a payload.

#[test]
fn user_data_types_cannot_be_recorded() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
