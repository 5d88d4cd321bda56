//! What the front is told to do: the behaviours of a test ([`Faults`]), its rules
//! ([`Rule`], [`Fault`]) and which call a rule hits ([`Rules`], deterministic: the `every`-th
//! matching call, at most `times` of them).

use serde::{Deserialize, Serialize};

/// The behaviours of the front, replaced whole by [`crate::Front::set`]. The default
/// models nothing: every call is relayed unchanged.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Faults of the calls a rule matches, the first rule that fires winning.
    pub rules: Vec<Rule>,
    /// ListLayers, ListLayerVersions, ListFunctions and S3 ListObjectsV2 answer at most
    /// this many items a page, with real markers (None: relayed as the emulator answers).
    pub page_size: Option<usize>,
    /// ListLayerVersions and ListLayers do not show a version published through the
    /// front until this long after its publish.
    pub list_lag_seconds: f64,
    /// A function stays "update in progress" this long after an update through the front.
    pub update_seconds: f64,
    /// GetAccountSettings answered by the front (the emulator has none).
    pub storage: Option<Storage>,
}

/// The account's code storage as GetAccountSettings reports it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `AccountLimit.TotalCodeSize`.
    pub limit_bytes: u64,
    /// `AccountUsage.TotalCodeSize` when set; then grows and shrinks with the layer
    /// versions published and deleted through the front.
    pub used_bytes: u64,
}

/// One fault of the calls it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `service:Operation` (`lambda:PublishLayerVersion`), `service:*` or `*`.
    pub op: String,
    /// Only calls signed for this region (None: any).
    #[serde(default)]
    pub region: Option<String>,
    pub fault: Fault,
    /// The `every`-th matching call faults (1: each one; 5: the 5th, 10th, ...).
    #[serde(default = "one")]
    pub every: u32,
    /// At most this many faults (None: no limit).
    #[serde(default)]
    pub times: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Rule {
    /// A rule faulting every call of `op` (see the fields for the rest).
    pub fn new(op: &str, fault: Fault) -> Rule {
        Rule { op: op.to_string(), region: None, fault, every: 1, times: None }
    }

    pub fn every(self, every: u32) -> Rule {
        Rule { every, ..self }
    }

    pub fn times(self, times: u32) -> Rule {
        Rule { times: Some(times), ..self }
    }

    pub fn region(self, region: &str) -> Rule {
        Rule { region: Some(region.to_string()), ..self }
    }

    /// Whether the rule is about a call of `op` (`service:Operation`) in `region`.
    pub fn matches(&self, op: &str, region: &str) -> bool {
        let op_ok = match self.op.as_str() {
            "*" => true,
            pattern => match pattern.strip_suffix(":*") {
                Some(service) => op.split_once(':').is_some_and(|(s, _)| s == service),
                None => pattern == op,
            },
        };
        op_ok && self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// What a rule does to a call it hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answered without forwarding: the service's throttling error.
    Throttle,
    /// Forwarded (the call takes effect), then the connection closed without an answer.
    Lose,
    /// Forwarded, then the answer held this long.
    Stall { seconds: f64 },
    /// Lambda 409 ResourceConflictException, without forwarding.
    Conflict,
    /// This HTTP status with the service's error body, without forwarding.
    Fail { status: u16 },
}

impl Fault {
    /// The name the counts use (`Counts::faults`).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Lose => "lose",
            Fault::Stall { .. } => "stall",
            Fault::Conflict => "conflict",
            Fault::Fail { .. } => "fail",
        }
    }
}

/// The rules of the current [`Faults`] with how many calls each has matched and faulted.
#[derive(Debug, Default)]
pub struct Rules {
    rules: Vec<(Rule, u64, u64)>,
}

impl Rules {
    pub fn new(rules: &[Rule]) -> Rules {
        Rules { rules: rules.iter().map(|r| (r.clone(), 0, 0)).collect() }
    }

    /// The fault of this call, if a rule hits it. Every matching rule counts the call.
    pub fn hit(&mut self, op: &str, region: &str) -> Option<Fault> {
        let mut fault = None;
        for (rule, seen, fired) in &mut self.rules {
            if !rule.matches(op, region) {
                continue;
            }
            *seen += 1;
            let due = *seen % u64::from(rule.every.max(1)) == 0;
            let left = rule.times.is_none_or(|t| *fired < u64::from(t));
            if fault.is_none() && due && left {
                *fired += 1;
                fault = Some(rule.fault.clone());
            }
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_call_faults_at_most_times() {
        let mut rules = Rules::new(&[Rule::new("lambda:*", Fault::Throttle).every(5).times(2)]);
        let hits: Vec<usize> = (1..=20).filter(|_| rules.hit("lambda:ListLayers", "us-east-1").is_some()).collect();
        assert_eq!(hits, vec![5, 10]);
        assert_eq!(rules.hit("s3:PutObject", "us-east-1"), None);
    }

    #[test]
    fn op_and_region_patterns() {
        let r = Rule::new("lambda:PublishLayerVersion", Fault::Lose).region("eu-west-1");
        assert!(r.matches("lambda:PublishLayerVersion", "eu-west-1"));
        assert!(!r.matches("lambda:PublishLayerVersion", "us-east-1"));
        assert!(!r.matches("lambda:ListLayers", "eu-west-1"));
        assert!(Rule::new("*", Fault::Lose).matches("s3:GetObject", "x"));
        assert!(!Rule::new("s3:*", Fault::Lose).matches("sts:GetCallerIdentity", "x"));
    }

    #[test]
    fn json_shape() {
        let f: Faults = serde_json::from_str(
            r#"{"rules":[{"op":"s3:PutObject","fault":{"kind":"stall","seconds":0.5},"every":2}],"page_size":2}"#,
        )
        .unwrap();
        assert_eq!(f.rules[0], Rule::new("s3:PutObject", Fault::Stall { seconds: 0.5 }).every(2));
        assert_eq!(f.page_size, Some(2));
        assert!(serde_json::from_str::<Faults>(r#"{"rule":[]}"#).is_err());
    }
}
