//! The end-to-end tests: one test binary, one module per area, sharing `common` (the binary under
//! test, fixture copies, snapshots, peer-tool rules). One binary links once and keeps `target/`
//! small; `cargo test --test tests MODULE::` runs one area.

mod common;
mod hostile_tar;

mod architecture;
mod bad_input;
mod cache;
mod cli;
mod concurrency;
mod conventions;
mod exit_codes;
mod fixtures;
mod import_hostile;
mod interop;
mod maintenance;
mod normalize;
mod promises;
mod pull_confinement;
mod pull_keep_old_files;
mod push_reproducible;
mod referrers;
mod registry;
mod serve;
mod snapshots;
mod transfer;
mod users;
