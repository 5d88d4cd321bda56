//! The subcommands: each file declares its flags (the shared ones are in `args.rs`), runs
//! the stages, which live in the modules at the crate root, and prints what they return
//! through `output.rs`.

pub mod args;
pub mod bench;
pub mod bench_compile;
pub mod bootstrap;
pub mod changed;
pub mod check;
pub mod layer;
pub mod list;
pub mod lock;
pub mod new;
pub mod prune;
pub mod publish;
pub mod rollout;
pub mod size;
pub mod stack;
pub mod status;
pub mod unlock;
pub mod usage;
