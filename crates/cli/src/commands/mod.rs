//! One file per command, named as the command is; each holds its `Args` and its `run`, and
//! `cli::Command::run` calls them. Commands never import each other, nor `cli`: what they share
//! is in `context`, `output` and `exit`.

pub mod attach;
pub mod blob;
pub mod completion;
pub mod copy;
pub mod discover;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod init;
pub mod ls;
pub mod man;
pub mod manifest;
pub mod normalize;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod resolve;
pub mod serve;
pub mod tag;
pub mod tags;
pub mod untag;
