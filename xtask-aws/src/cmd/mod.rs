//! The commands that call AWS: each runs one operation of `publish` or `rollout` and prints
//! what it returns through xtask's `output`. Their flags are declared in the xtask crate
//! (`xtask::cmd::remote`), so both binaries parse the same command line.

pub mod bootstrap;
pub mod prune;
pub mod publish;
pub mod rollout;
pub mod status;
pub mod unlock;
pub mod usage;
