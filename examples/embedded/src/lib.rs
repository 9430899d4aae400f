//! The repository README, compiled: its Rust code samples run as doctests of this crate, so
//! `cargo test --workspace` fails if the README stops matching the API. The example program
//! itself is the `embedded` binary (`src/main.rs`).
#![doc = include_str!("../../../README.md")]
