//! `cargo xtask`: builds, checks and publishes the Python Lambda layers of this repo.
//!
//! This crate has everything but the AWS calls: the stages, the checks, the stacks, the
//! command line ([`cli`]). Its binary (src/main.rs) runs every command that needs no AWS
//! and hands the others to the `xtask-aws` binary (the xtask-aws crate: publish, status,
//! rollout, ...), so a first `cargo xtask layer` compiles no AWS SDK. See
//! docs/ARCHITECTURE.md.

pub mod build;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod docker_cli;
pub mod failure;
pub mod fingerprint;
pub mod interrupt;
pub mod limits;
pub mod lockfile;
pub mod origin;
pub mod output;
pub mod overlap;
pub mod package;
pub mod process;
pub mod profile;
pub mod progress;
pub mod python;
pub mod quote;
pub mod repo;
pub mod report;
pub mod requirements_txt;
pub mod requires;
pub mod runtime;
pub mod sbom;
pub mod schedule;
pub mod settings;
pub mod sizes;
pub mod slim;
pub mod stack;
pub mod suggest;
pub mod unit;
pub mod unit_id;
