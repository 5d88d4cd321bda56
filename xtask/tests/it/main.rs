//! The integration tests of the xtask crate, one test binary (`it`): every command that
//! needs no AWS, run through the real `xtask` binary against throw-away repos, the real
//! docker engine and the local build image, plus the repo's self-checks (tidy,
//! architecture). The shared harness is `common`, compiled once here; the AWS commands'
//! tests (publish, rollout, prune, the publish lock) are xtask-aws's (xtask-aws/tests/it),
//! so these link no AWS SDK. A new test goes into the module of its subject, or a new
//! module declared below.

#[macro_use]
mod common;

mod architecture;
mod check;
mod check_trust;
mod config_trust;
mod declared;
mod deep;
mod docs;
mod handoff;
mod hostile_parallel;
mod installer;
mod interrupted;
mod json;
mod layer;
mod local;
mod lock;
mod output;
mod parallel;
mod reuse;
mod shared_container;
mod size;
mod stack;
mod tidy;
mod why;
mod workflow;
