//! Arbitrary session scenarios — login (right or wrong password), refresh with the current
//! or an older token, logout, password change, disable/enable, access-token use and clock
//! moves — played against the identity layer and checked step by step against the plain
//! model of `crm_core::testkit::session_model` (rotation, grace window, reuse detection,
//! revocation, expiry). The same model backs the `session_model` property test.
#![no_main]

use crm_core::testkit::session_model::{Op, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Long scenarios add little over short ones and slow the fuzzer down.
    if data.len() > 120 {
        return;
    }
    let ops = Op::sequence(data);
    if !ops.is_empty() {
        run(ops);
    }
});
