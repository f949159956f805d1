//! Compile-time behaviour of `#[derive(Schema)]` and `#[kong_pdk::plugin]`: what compiles,
//! and the messages for what does not (`tests/ui/*.stderr`).
//!
//! Regenerate the expected messages with
//! `TRYBUILD=overwrite cargo test -p kong-pdk --test ui`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
