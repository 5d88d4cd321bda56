//! Which unit a row speaks of: a layer for one runtime and architecture. Every row the
//! tool prints or records (build reports, checks, failures, CI matrix entries) carries
//! one, typed, so a runtime is never a free-form string in one place and a `Runtime` in
//! another. Serialised flat (`layer`, `runtime`, `arch`), as the JSON always was.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::runtime::{Arch, Runtime};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnitId {
    pub layer: String,
    pub runtime: Runtime,
    pub arch: Arch,
}

impl UnitId {
    pub fn new(layer: &str, runtime: Runtime, arch: Arch) -> UnitId {
        UnitId { layer: layer.to_string(), runtime, arch }
    }
}

/// Sorted as their names read (`arm64` before `x86_64`), as lists and CI matrices are.
impl Ord for UnitId {
    fn cmp(&self, other: &UnitId) -> std::cmp::Ordering {
        let key = |u: &UnitId| (u.layer.clone(), u.runtime.id, u.arch.as_str());
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for UnitId {
    fn partial_cmp(&self, other: &UnitId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// `pandas python3.13 x86_64`, as every message names a unit.
impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.layer, self.runtime, self.arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_flat_as_the_json_always_was_and_reads_back() {
        let id = UnitId::new("pandas", Runtime::parse("python3.13").unwrap(), Arch::X86_64);
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, r#"{"layer":"pandas","runtime":"python3.13","arch":"x86_64"}"#);
        assert_eq!(serde_json::from_str::<UnitId>(&text).unwrap(), id);
        assert_eq!(id.to_string(), "pandas python3.13 x86_64");
        assert!(serde_json::from_str::<UnitId>(r#"{"layer":"a","runtime":"python2.7","arch":"x86_64"}"#).is_err());
    }
}
