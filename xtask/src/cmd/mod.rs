//! The subcommands: each file parses nothing and prints everything; the stages they run
//! live in the modules at the crate root.

pub mod bench;
pub mod bootstrap;
pub mod changed;
pub mod check;
pub mod layer;
pub mod list;
pub mod new;
pub mod prune;
pub mod publish;
pub mod stack;
pub mod status;
pub mod unlock;
