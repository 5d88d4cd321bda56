//! The Lambda Python runtimes and CPU architectures this tool knows, in one table.

use std::fmt;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// What the tool knows about one Lambda Python runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Runtime {
    /// Lambda's identifier, e.g. `python3.12`.
    pub id: &'static str,
    /// Python's minor version (3.x).
    pub minor: u32,
    /// The Amazon Linux generation the runtime runs on.
    pub os: &'static str,
    /// The glibc of that Amazon Linux, as (major, minor).
    pub glibc: (u32, u32),
    /// The deprecation date AWS announces (YYYY-MM-DD).
    pub deprecation: &'static str,
}

/// Every runtime the tool can build for, oldest first. Dates are AWS's announced
/// deprecation dates; update them from the Lambda runtimes page when AWS changes them.
pub const RUNTIMES: &[Runtime] = &[
    Runtime { id: "python3.10", minor: 10, os: "Amazon Linux 2", glibc: (2, 26), deprecation: "2026-06-30" },
    Runtime { id: "python3.11", minor: 11, os: "Amazon Linux 2", glibc: (2, 26), deprecation: "2026-06-30" },
    Runtime { id: "python3.12", minor: 12, os: "Amazon Linux 2023", glibc: (2, 34), deprecation: "2028-10-31" },
    Runtime { id: "python3.13", minor: 13, os: "Amazon Linux 2023", glibc: (2, 34), deprecation: "2029-06-30" },
    Runtime { id: "python3.14", minor: 14, os: "Amazon Linux 2023", glibc: (2, 34), deprecation: "2029-06-30" },
];

impl Runtime {
    pub fn parse(id: &str) -> Result<Runtime> {
        match RUNTIMES.iter().find(|r| r.id == id) {
            Some(r) => Ok(*r),
            None => {
                let valid: Vec<&str> = RUNTIMES.iter().map(|r| r.id).collect();
                bail!("unknown runtime `{}`: valid runtimes are {}", crate::quote::clip(id), valid.join(", "))
            }
        }
    }

    /// The short tag used in layer names and file names, e.g. `py312`.
    pub fn tag(&self) -> String {
        format!("py3{}", self.minor)
    }

    /// A warning when the runtime is past, or within 180 days of, its deprecation date.
    /// `today` is `YYYY-MM-DD`.
    pub fn deprecation_warning(&self, today: &str) -> Option<String> {
        let days_left = days_from_civil(self.deprecation)? - days_from_civil(today)?;
        if days_left < 0 {
            Some(format!(
                "{} was deprecated by AWS on {}: new functions can no longer use it; move to a newer runtime",
                self.id, self.deprecation
            ))
        } else if days_left <= 180 {
            Some(format!("{} will be deprecated by AWS on {} ({days_left} days)", self.id, self.deprecation))
        } else {
            None
        }
    }
}

/// As Lambda names it (`python3.13`), in JSON as everywhere.
impl Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.id)
    }
}

impl<'de> Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Runtime, D::Error> {
        let id = String::deserialize(d)?;
        Runtime::parse(&id).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// A Lambda instruction set architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "arm64" => Ok(Arch::Arm64),
            _ => bail!("unknown architecture `{}`: valid architectures are x86_64, arm64", crate::quote::clip(s)),
        }
    }

    /// Lambda's name, also used in file names.
    pub fn as_str(&self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The machine name: `platform.machine()` on Linux, PEP 508's `platform_machine` and the
    /// arch in wheel platform tags (`manylinux_2_34_aarch64`).
    pub fn machine(&self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The value of `docker run --platform`.
    pub fn docker_platform(&self) -> &'static str {
        match self {
            Arch::X86_64 => "linux/amd64",
            Arch::Arm64 => "linux/arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's algorithm).
pub fn days_from_civil(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468)
}

/// Today's date in UTC as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    civil_from_days(secs.div_euclid(86_400))
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> String {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_runtimes_and_rejects_others_listing_valid_ones() {
        assert_eq!(Runtime::parse("python3.12").unwrap().glibc, (2, 34));
        assert_eq!(Runtime::parse("python3.11").unwrap().tag(), "py311");
        let err = Runtime::parse("python3.9").unwrap_err().to_string();
        assert!(err.contains("python3.9") && err.contains("python3.14"), "{err}");
        assert!(Arch::parse("amd64").unwrap_err().to_string().contains("x86_64, arm64"));
    }

    #[test]
    fn dates_round_trip() {
        for d in ["1970-01-01", "2000-02-29", "2026-11-27", "2029-06-30"] {
            assert_eq!(civil_from_days(days_from_civil(d).unwrap()), d);
        }
    }

    #[test]
    fn deprecation_warnings() {
        let r311 = Runtime::parse("python3.11").unwrap();
        assert!(r311.deprecation_warning("2026-11-27").unwrap().contains("was deprecated"));
        assert!(r311.deprecation_warning("2026-03-01").unwrap().contains("days"));
        assert!(r311.deprecation_warning("2025-01-01").is_none());
    }
}
