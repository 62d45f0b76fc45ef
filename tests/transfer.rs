//! placeholder, filled in below
mod common;
