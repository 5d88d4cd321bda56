//! The integration tests of the xtask-aws crate, one test binary (`it`): the AWS commands
//! (publish, publish-all, status, bootstrap, usage, rollout, prune, unlock) run through the
//! real `xtask` binary, which hands them to xtask-aws as `cargo xtask` does, against the
//! S3, Lambda and STS emulator, and what they left there read back through the AWS SDK. The harness
//! is xtask's (`common`, the same file, included by path) plus the emulator's side here
//! (`emulator`, `repo`). A new test goes into the module of its subject, or a new module
//! declared below.

// The harness is shared with xtask's tests, which use the parts these do not.
#[allow(dead_code)]
#[macro_use]
#[path = "../../../xtask/tests/it/common.rs"]
mod common;
mod emulator;
mod repo;

mod faults;
mod front;
mod hostile_rollout;
mod local;
mod parallel;
mod publish;
mod races;
mod rollout;
mod rollout_faults;
mod ssm;
mod stack;
mod storage;
