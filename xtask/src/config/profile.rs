//! Deploy profiles (`[profiles.NAME]` in `layers.toml`): [`Profile`], the checks made as
//! the file is read (region names, the bucket name in every region, and warnings about a
//! guard that does not guard), and [`check_profile`], the one made when a profile is used
//! to publish (its regions and their buckets). What a profile names (layer names, a
//! region's bucket, S3 keys) is `profile/naming.rs`'s.

use std::ops::Range;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::schema::{ConfigText, ProfileFile};
use super::RepoConfig;
use crate::quote::clip;

/// One `[profiles.NAME]` table in `layers.toml`: where and how layers are published.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The AWS profile (shared config and credentials files, SSO included).
    pub aws_profile: Option<String>,
    /// The regions every layer is published to.
    pub regions: Vec<String>,
    /// The S3 bucket the zips are uploaded to.
    pub bucket: String,
    /// The key prefix inside the bucket.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// When set, the caller's account must be this one.
    pub account_id: Option<String>,
    /// An endpoint to use instead of AWS's (an emulator).
    pub endpoint_url: Option<String>,
    /// Whether layers marked `public = true` may be shared with everyone.
    #[serde(default)]
    pub allow_public: bool,
    /// Whether writes need `--yes` (or the profile's name typed at a terminal).
    #[serde(default)]
    pub confirm: bool,
    /// The Lambda layer name; `{layer}`, `{py}` (e.g. py312) and `{arch}` are filled in.
    #[serde(default = "default_layer_name")]
    pub layer_name: String,
    /// When set, the SSM parameter each unit's newest ARN is written to on publish, e.g.
    /// `/layers/{layer}/{py}/{arch}` (as Powertools publishes its layers' ARNs).
    #[serde(default)]
    pub ssm_parameter: Option<String>,
}

pub(super) fn default_prefix() -> String {
    "layers".into()
}

pub(super) fn default_layer_name() -> String {
    "{layer}-{py}-{arch}".into()
}

/// Refuses a profile that cannot work (checked when a profile is used to publish, not as
/// layers.toml is read): no region, or several regions sharing one bucket.
pub fn check_profile(name: &str, profile: &Profile) -> Result<()> {
    if profile.regions.is_empty() {
        bail!("profile `{name}` in layers.toml has no regions: set e.g. regions = [\"eu-west-1\"]");
    }
    if profile.regions.len() > 1 && !profile.bucket.contains("{region}") {
        bail!(
            "profile `{name}` in layers.toml publishes to {} regions from one bucket, but Lambda reads a layer's zip only from a bucket in the same region: use a bucket per region, e.g. bucket = \"{}-{{region}}\"",
            profile.regions.len(),
            profile.bucket
        );
    }
    Ok(())
}

impl RepoConfig {
    /// The deploy profile called `name`, or an error listing the ones that exist. The
    /// first time a profile is used, its warnings (see [`profile_warnings`]) are printed.
    pub fn profile(&self, name: &str) -> Result<&Profile> {
        if self.warned.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string()) {
            for w in self.profile_warnings.get(name).into_iter().flatten() {
                crate::output::warn(w);
            }
        }
        self.profiles.get(name).with_context(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            format!(
                "unknown profile `{name}`: layers.toml defines {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }
}

/// Checks one `[profiles.NAME]` table: region names, the bucket name in every region,
/// and returns the profile with its warnings (a guard that does not guard).
pub(super) fn resolve_profile(name: &str, p: Spanned<ProfileFile>, src: &ConfigText) -> Result<(Profile, Vec<String>)> {
    let table = p.span();
    let p = p.into_inner();
    let at = |span: Range<usize>| format!("invalid config in {}: [profiles.{name}]", src.at(span));
    for (k, r) in p.regions.iter().enumerate() {
        if p.regions[..k].iter().any(|o| o.get_ref() == r.get_ref()) {
            bail!("{} `regions`: `{}` is listed twice: list each region once", at(r.span()), clip(r.get_ref()));
        }
        if !is_region(r.get_ref()) {
            bail!(
                "{} `regions`: `{}` is not an AWS region name: use one such as \"eu-west-1\", \"us-east-1\", \"ap-southeast-2\" or \"us-gov-west-1\"",
                at(r.span()),
                clip(r.get_ref())
            );
        }
    }
    let bucket = p.bucket.get_ref();
    let mut candidates: Vec<(Option<&str>, String)> =
        p.regions.iter().map(|r| (Some(r.get_ref().as_str()), bucket.replace("{region}", r.get_ref()))).collect();
    if candidates.is_empty() || !bucket.contains("{region}") {
        candidates = vec![(None, bucket.clone())];
    }
    for (region, b) in candidates {
        if let Err(why) = check_bucket(&b) {
            let filled = match region {
                Some(r) => format!(" (`{}` in {r})", clip(&b)),
                None => String::new(),
            };
            bail!(
                "{} `bucket` = \"{}\"{filled} is not a valid S3 bucket name: {why}; use 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit",
                at(p.bucket.span()),
                clip(bucket)
            );
        }
    }
    let mut warnings = Vec::new();
    let confirm = p.confirm.as_ref().is_some_and(|c| *c.get_ref());
    let confirm_at = src.at(p.confirm.as_ref().map(|c| c.span()).unwrap_or(table));
    if name == "production" && !confirm {
        warnings.push(format!(
            "profile production has confirm = false ({confirm_at}): it publishes without `--yes`; set confirm = true"
        ));
    }
    if let (true, Some(url)) = (confirm, &p.endpoint_url) {
        warnings.push(format!(
            "profile {name} has confirm = true but `endpoint_url` = \"{}\" ({}): an emulator endpoint is set on a guarded profile, so its writes go there and not to AWS; remove `endpoint_url` to publish to AWS",
            clip(url.get_ref()),
            src.at(url.span())
        ));
    }
    let profile = Profile {
        aws_profile: p.aws_profile,
        regions: p.regions.into_iter().map(Spanned::into_inner).collect(),
        bucket: p.bucket.into_inner(),
        prefix: p.prefix,
        account_id: p.account_id,
        endpoint_url: p.endpoint_url.map(Spanned::into_inner),
        allow_public: p.allow_public,
        confirm,
        layer_name: p.layer_name,
        ssm_parameter: match p.ssm_parameter {
            Some(t) => Some(check_ssm_parameter(t.get_ref()).map_err(|why| {
                anyhow::anyhow!("{} `ssm_parameter` = \"{}\" {why:#}", src.at(t.span()), clip(t.get_ref()))
            })?),
            None => None,
        },
    };
    Ok((profile, warnings))
}

/// An SSM parameter name template that names one parameter per unit: it starts with `/`,
/// holds `{layer}`, `{arch}` and `{py}` or `{runtime}`, no other placeholder, and only
/// the characters SSM allows (letters, digits, `_ . - /`).
fn check_ssm_parameter(t: &str) -> Result<String> {
    if !t.starts_with('/') {
        bail!("must start with `/`, e.g. \"/layers/{{layer}}/{{py}}/{{arch}}\"");
    }
    let has = |p: &str| t.contains(p);
    if !has("{layer}") || !has("{arch}") || !(has("{py}") || has("{runtime}")) {
        bail!("must hold {{layer}}, {{arch}} and {{py}} (or {{runtime}}), so each layer, runtime and architecture gets its own parameter");
    }
    let bare = ["{layer}", "{py}", "{runtime}", "{arch}"].iter().fold(t.to_string(), |s, p| s.replace(p, ""));
    if let Some(c) = bare.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c))) {
        bail!("holds `{c}`: use letters, digits, `_`, `.`, `-` and `/`, and the placeholders {{layer}}, {{py}}, {{runtime}}, {{arch}}");
    }
    if t.len() > 1011 {
        bail!("is longer than SSM allows (1011 characters)");
    }
    Ok(t.to_string())
}

/// A well-formed AWS region name: two letters, an optional partition (`gov`, `iso`,
/// `isob`, ...), a direction and one digit, e.g. `eu-west-1`, `us-gov-west-1`.
fn is_region(r: &str) -> bool {
    const DIRECTIONS: &[&str] =
        &["central", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"];
    let parts: Vec<&str> = r.split('-').collect();
    let (geo, middle, dir, num) = match parts.as_slice() {
        [geo, dir, num] => (*geo, None, *dir, *num),
        [geo, middle, dir, num] => (*geo, Some(*middle), *dir, *num),
        _ => return false,
    };
    let partition_ok = middle.is_none_or(|m| {
        m == "gov"
            || m.strip_prefix("iso").is_some_and(|rest| rest.len() <= 1 && rest.bytes().all(|b| b.is_ascii_lowercase()))
    });
    geo.len() == 2
        && geo.bytes().all(|b| b.is_ascii_lowercase())
        && partition_ok
        && DIRECTIONS.contains(&dir)
        && num.len() == 1
        && matches!(num.as_bytes()[0], b'1'..=b'9')
}

/// S3's bucket naming rules: 3 to 63 characters; lowercase letters, digits, `.` and `-`;
/// a letter or digit first and last; no `..`; not an IP address.
fn check_bucket(b: &str) -> std::result::Result<(), &'static str> {
    if b.len() < 3 || b.len() > 63 {
        return Err("it must be 3 to 63 characters long");
    }
    if b.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err("it has an uppercase letter");
    }
    if !b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Err("it has a character other than a lowercase letter, a digit, `.` or `-`");
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge(b.as_bytes()[0]) || !edge(b.as_bytes()[b.len() - 1]) {
        return Err("it must start and end with a letter or digit");
    }
    if b.contains("..") {
        return Err("it has two dots in a row");
    }
    if b.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it is formatted as an IP address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config_error, repo_with};

    #[test]
    fn an_ssm_parameter_template_names_one_parameter_per_unit() {
        assert_eq!(check_ssm_parameter("/layers/{layer}/{py}/{arch}").unwrap(), "/layers/{layer}/{py}/{arch}");
        check_ssm_parameter("/x/{runtime}.{layer}-{arch}").unwrap();
        for (bad, why) in [
            ("layers/{layer}/{py}/{arch}", "start with `/`"),
            ("/layers/{layer}/{arch}", "{py}"),
            ("/layers/{layer}/{py}", "{arch}"),
            ("/layers/{layer}/{py}/{arch}/{nope}", "holds `{`"),
            ("/layers/{layer} {py}/{arch}", "holds ` `"),
        ] {
            let err = format!("{:#}", check_ssm_parameter(bad).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn several_regions_need_a_bucket_per_region() {
        let mut p: Profile = toml::from_str("regions = [\"eu-west-1\", \"us-east-1\"]\nbucket = \"b\"\n").unwrap();
        let err = check_profile("prod", &p).unwrap_err().to_string();
        assert!(err.contains("prod") && err.contains("b-{region}"), "{err}");
        p.bucket = "b-{region}".into();
        check_profile("prod", &p).unwrap();
        p.regions.clear();
        let err = check_profile("prod", &p).unwrap_err().to_string();
        assert!(err.contains("has no regions"), "{err}");
    }

    #[test]
    fn region_names_are_checked_by_pattern() {
        for good in [
            "us-east-1",
            "eu-west-3",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
            "il-central-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "us-east-11",
            "us-east",
            "US-EAST-1",
            "useast-1",
            "us-middle-1",
            "us-east-0",
            "eu-west-1a",
            "",
            "us-foo-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        let err = config_error(
            "[profiles.staging]\nregions = [\"eu-west-1\",\n  \"us-east-11\"]\nbucket = \"bkt-{region}\"\n",
            "",
        );
        assert!(
            err.contains("layers.toml:3")
                && err.contains("[profiles.staging] `regions`")
                && err.contains("`us-east-11`")
                && err.contains("eu-west-1"),
            "{err}"
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules_after_region_substitution() {
        check_bucket("my-team-layers.eu").unwrap();
        for (bad, why) in [
            ("ab", "3 to 63"),
            ("My-Bucket", "uppercase"),
            ("a_b_c", "character"),
            ("-abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "two dots"),
            ("192.168.1.1", "IP address"),
        ] {
            assert!(check_bucket(bad).unwrap_err().contains(why), "{bad}");
        }
        check_bucket(&"a".repeat(63)).unwrap();
        check_bucket(&"a".repeat(64)).unwrap_err();
        let err = config_error("[profiles.prod]\nregions = [\"eu-west-1\"]\n\nbucket = \"Layers-{region}\"\n", "");
        assert!(
            err.contains("layers.toml:4")
                && err.contains("`bucket`")
                && err.contains("Layers-eu-west-1")
                && err.contains("uppercase"),
            "{err}"
        );
        // Fine alone, too long once the longest region is filled in.
        let long = format!("{}-{{region}}", "b".repeat(50));
        let err = config_error(
            &format!("[profiles.p]\nregions = [\"eu-west-1\", \"ap-southeast-2\"]\nbucket = \"{long}\"\n"),
            "",
        );
        assert!(err.contains("ap-southeast-2") && err.contains("3 to 63"), "{err}");
    }

    #[test]
    fn guards_that_do_not_guard_are_warned_about_with_their_line() {
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[profiles.production]\nregions = [\"eu-west-1\"]\nbucket = \"prod-bkt\"\nconfirm = false\n\n[profiles.guarded]\nregions = [\"us-east-1\"]\nbucket = \"g-bkt\"\nconfirm = true\nendpoint_url = \"http://127.0.0.1:5077\"\n\n[profiles.staging]\nregions = [\"us-east-1\"]\nbucket = \"s-bkt\"\nendpoint_url = \"http://127.0.0.1:5077\"\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let w = &cfg.profile_warnings;
        assert_eq!(w["production"].len(), 1);
        assert!(w["production"][0].starts_with("profile production has confirm = false (layers.toml:4)"), "{:?}", w);
        assert_eq!(w["guarded"].len(), 1);
        assert!(
            w["guarded"][0].contains("layers.toml:10")
                && w["guarded"][0].contains("emulator endpoint is set on a guarded profile"),
            "{:?}",
            w
        );
        assert!(w["staging"].is_empty());
        // A production profile that does not say `confirm` at all is not guarded either.
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[defaults]\n\n[profiles.production]\nregions = [\"eu-west-1\"]\nbucket = \"prod-bkt\"\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert!(cfg.profile_warnings["production"][0].contains("layers.toml:3"), "{:?}", cfg.profile_warnings);
        assert!(!cfg.profile("production").unwrap().confirm);
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let (_d, repo) =
            repo_with(&[("layers.toml", "[profiles.staging]\nregions = [\"eu-west-1\"]\nbucket = \"bkt\"\n")]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.profile("staging").unwrap().prefix, "layers");
        let err = cfg.profile("prod").unwrap_err().to_string();
        assert!(err.contains("prod") && err.contains("staging"), "{err}");
    }
}
