//! PEP 508 markers evaluated for a Lambda runtime and architecture.
//!
//! The environment is Lambda's Linux CPython: `python_version` = `3.X`,
//! `python_full_version` and `implementation_version` = `3.X.0` (the patch level of the
//! runtime is not known ahead; real markers test minor versions), `os_name` = `posix`,
//! `sys_platform` = `linux`, `platform_system` = `Linux`, `platform_machine` = the arch's
//! machine name (`x86_64` / `aarch64`), `platform_python_implementation` = `CPython`,
//! `implementation_name` = `cpython`. `platform_release` and `platform_version` (the
//! kernel's) are unknown ahead: a marker that tests them holds only if it holds whatever
//! they are, so `platform_release >= "5"` and `platform_version != "x"` are both false.

use std::str::FromStr;

use pep508_rs::{
    ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, MarkerTreeKind, MarkerValueExtra,
    MarkerValueString,
};

use crate::runtime::{Arch, Runtime};

/// The marker environment of one runtime and architecture.
pub struct Env {
    env: MarkerEnvironment,
}

impl Env {
    pub fn new(runtime: Runtime, arch: Arch) -> Env {
        let (version, full) = (format!("3.{}", runtime.minor), format!("3.{}.0", runtime.minor));
        let env = MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: arch.machine(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &version,
            sys_platform: "linux",
        })
        .expect("the runtime table holds valid Python versions");
        Env { env }
    }

    /// Whether `marker` holds with `extra` active (none when empty).
    pub fn holds(&self, marker: &MarkerTree, extra: &str) -> bool {
        let extras: Vec<ExtraName> = ExtraName::from_str(extra).into_iter().collect();
        self.walk(marker.clone(), &extras)
    }

    /// Follows the marker's decision diagram: the branch of the environment's value at
    /// each known variable, every branch at an unknown one.
    fn walk(&self, tree: MarkerTree, extras: &[ExtraName]) -> bool {
        let env = &self.env;
        match tree.kind() {
            MarkerTreeKind::True => true,
            MarkerTreeKind::False => false,
            MarkerTreeKind::Version(m) => {
                m.edges().find(|(r, _)| r.contains(env.get_version(m.key()))).is_some_and(|(_, t)| self.walk(t, extras))
            }
            MarkerTreeKind::String(m) if unknown(m.key()) => m.children().all(|(_, t)| self.walk(t, extras)),
            MarkerTreeKind::String(m) => {
                let value = env.get_string(m.key()).to_string();
                m.children().find(|(r, _)| r.contains(&value)).is_some_and(|(_, t)| self.walk(t, extras))
            }
            MarkerTreeKind::In(m) if unknown(m.key()) => m.children().all(|(_, t)| self.walk(t, extras)),
            MarkerTreeKind::In(m) => self.walk(m.edge(m.value().contains(env.get_string(m.key()))), extras),
            MarkerTreeKind::Contains(m) if unknown(m.key()) => m.children().all(|(_, t)| self.walk(t, extras)),
            MarkerTreeKind::Contains(m) => self.walk(m.edge(env.get_string(m.key()).contains(m.value())), extras),
            MarkerTreeKind::Extra(m) => {
                self.walk(m.edge(matches!(m.name(), MarkerValueExtra::Extra(x) if extras.contains(x))), extras)
            }
        }
    }
}

/// The variables whose value is not known before the function runs.
fn unknown(key: &MarkerValueString) -> bool {
    matches!(
        key,
        MarkerValueString::PlatformRelease
            | MarkerValueString::PlatformVersion
            | MarkerValueString::PlatformVersionDeprecated
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(marker: &str, runtime: &str, arch: Arch, extra: &str) -> bool {
        let tree = MarkerTree::from_str(marker).unwrap();
        Env::new(Runtime::parse(runtime).unwrap(), arch).holds(&tree, extra)
    }

    #[test]
    fn the_environment_is_lambdas_linux_cpython() {
        let x86 = |m: &str| holds(m, "python3.12", Arch::X86_64, "");
        assert!(x86("platform_machine == 'x86_64' and sys_platform == 'linux' and os_name == 'posix'"));
        assert!(holds("platform_machine == 'aarch64'", "python3.12", Arch::Arm64, ""));
        assert!(x86("platform_system == 'Linux' and implementation_name == 'cpython'"));
        assert!(x86("platform_python_implementation == 'CPython' and python_implementation == 'CPython'"));
        assert!(x86("python_full_version == '3.12.0' and implementation_version >= '3.12'"));
        assert!(x86("\"3.12\" <= python_version and 'linux' in sys_platform and implementation_name not in 'pypy'"));
        assert!(!x86("python_version < '3.12' or sys_platform == 'win32'"));
    }

    #[test]
    fn unknown_variables_hold_only_when_any_value_would_do() {
        let x86 = |m: &str| holds(m, "python3.13", Arch::X86_64, "");
        assert!(!x86("platform_release >= '5'") && !x86("platform_version != 'x'"));
        assert!(!x86("os_name == 'nt' or platform_release >= '5'"));
        assert!(x86("os_name == 'posix' or platform_release >= '5'"));
        assert!(x86("platform_release >= '5' or platform_release < '5'"));
        assert!(!x86("'amzn' in platform_release"));
    }

    #[test]
    fn extras_are_active_only_when_given() {
        assert!(!holds("extra == 'test'", "python3.13", Arch::X86_64, ""));
        assert!(holds("extra == 'Test'", "python3.13", Arch::X86_64, "test"));
        assert!(!holds("extra == 'test'", "python3.13", Arch::X86_64, "perf"));
    }
}
