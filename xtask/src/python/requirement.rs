//! Requirements: a `Requires-Dist` value parsed by `pep508_rs` into name, extras,
//! specifiers (PEP 440, matched by `pep440_rs`) and marker, and the name a line of
//! requirements.txt installs.

use std::str::FromStr;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use pep508_rs::{MarkerTree, VerbatimUrl, VersionOrUrl};

use super::marker::Env;
use super::name::{is_name_char, normalise};

/// One parsed PEP 508 requirement, e.g. `numpy>=1.26.0; python_version >= "3.12"`.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The normalised name of the required distribution.
    pub name: String,
    /// As written, without the marker, e.g. `numpy>=1.26.0`.
    pub text: String,
    /// The extras it asks for, normalised.
    pub extras: Vec<String>,
    /// `None` for any version (also the `name @ url` form).
    specifiers: Option<VersionSpecifiers>,
    /// One exact version: a single `==` (no wildcard) or `===`, or a URL.
    pinned: bool,
    marker: MarkerTree,
}

impl Requirement {
    /// `name [extras] (specifiers) ; marker` (parentheses optional) or
    /// `name [extras] @ url ; marker`; `None` when it is not valid PEP 508.
    pub fn parse(line: &str) -> Option<Requirement> {
        let req = pep508_rs::Requirement::<VerbatimUrl>::from_str(line.trim()).ok()?;
        let pinned = match &req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => {
                s.len() == 1 && matches!(s[0].operator(), Operator::Equal | Operator::ExactEqual)
            }
            Some(VersionOrUrl::Url(_)) => true,
            None => false,
        };
        let specifiers = match req.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        Some(Requirement {
            name: req.name.to_string(),
            text: without_marker(line).trim().to_string(),
            extras: req.extras.iter().map(ToString::to_string).collect(),
            specifiers,
            pinned,
            marker: req.marker,
        })
    }

    /// Whether it names one exact version: a single `==` without wildcard or `===`, or a
    /// URL (`name @ url`).
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Whether it is a direct reference, `name @ url` (a file, a VCS or web URL).
    pub fn is_direct_url(&self) -> bool {
        self.pinned && self.specifiers.is_none()
    }

    /// The one version it pins (`==V` or `===V`), when it pins one.
    pub fn pinned_version(&self) -> Option<String> {
        let specs = self.specifiers.as_ref().filter(|_| self.pinned)?;
        Some(specs.iter().next()?.version().to_string())
    }

    /// Whether the installed `version` satisfies the specifiers (pre-releases allowed, as
    /// `pip check`). A version that is not PEP 440 matches only `===` with the same text.
    pub fn allows(&self, version: &str) -> bool {
        let Some(specs) = &self.specifiers else { return true };
        match Version::from_str(version.trim()) {
            Ok(v) => specs.iter().all(|s| contains(s, &v)),
            Err(_) => specs.iter().all(|s| *s.operator() == Operator::ExactEqual && s.version().to_string() == version),
        }
    }

    /// Whether the marker holds in `env` with no extra, or with `extra` when it is not
    /// empty (pip's rule for the requirements of a distribution installed with an extra).
    pub fn applies(&self, env: &Env, extra: &str) -> bool {
        env.holds(&self.marker, "") || (!extra.is_empty() && env.holds(&self.marker, extra))
    }
}

/// `VersionSpecifier::contains`, except that `<V` with a pre-release `V` contains the
/// earlier pre-releases of V's release (`1.0rc1` is in `<1.0rc2`), as in Python's
/// `packaging`: pep440_rs 0.7 leaves them out.
fn contains(spec: &VersionSpecifier, version: &Version) -> bool {
    if *spec.operator() == Operator::LessThan && spec.version().any_prerelease() {
        return version.clone().without_local() < *spec.version();
    }
    spec.contains(version)
}

/// The text before the marker. In the URL form the `;` must follow white space, as a URL
/// may contain `;`.
fn without_marker(line: &str) -> &str {
    let url = line.split(';').next().unwrap_or_default().contains('@');
    let at = line.char_indices().find(|&(i, c)| c == ';' && (!url || line[..i].ends_with(char::is_whitespace)));
    at.map_or(line, |(i, _)| &line[..i])
}

/// The normalised name of the distribution a requirements.txt line installs: the PEP 508
/// name it starts with (`Typing_Extensions>=4` gives `typing-extensions`, `pkg @ url`
/// gives `pkg`). `None` for options (`--only-binary ...`), comments and paths such as
/// `./x.whl`; a bare file name such as `x-1.0-py3-none-any.whl` gives a name no
/// distribution has.
pub fn requirement_name(line: &str) -> Option<String> {
    let line = line.trim();
    if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let end = line.find(|c| !is_name_char(c)).unwrap_or(line.len());
    Some(normalise(&line[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Arch, Runtime};

    fn env() -> Env {
        Env::new(Runtime::parse("python3.13").unwrap(), Arch::X86_64)
    }

    #[test]
    fn requirement_forms() {
        let r = Requirement::parse("foo[Bar, baz]>=1,<2; extra == \"baz\"").unwrap();
        assert_eq!((r.name.as_str(), r.text.as_str()), ("foo", "foo[Bar, baz]>=1,<2"));
        assert_eq!(
            (r.extras.clone(), r.specifiers.as_ref().map(|s| s.len())),
            (vec!["bar".into(), "baz".into()], Some(2))
        );
        assert!(!r.applies(&env(), "") && r.applies(&env(), "baz") && r.applies(&env(), "Baz"));
        let r = Requirement::parse("numpy (>=1.22.4)").unwrap();
        assert_eq!((r.text.as_str(), r.specifiers.map(|s| s.len())), ("numpy (>=1.22.4)", Some(1)));
        let r = Requirement::parse("pkg @ https://x/y;z.whl ; os_name == 'posix'").unwrap();
        assert_eq!((r.text.as_str(), r.specifiers.is_none()), ("pkg @ https://x/y;z.whl", true));
        assert!(r.allows("anything") && r.applies(&env(), ""));
        assert_eq!(Requirement::parse("Zope.Interface (>=5)").unwrap().name, "zope-interface");
        for bad in [">=1", "foo >= nonsense!", "x~=1", "x=>1", ""] {
            assert!(Requirement::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pinned_is_one_exact_version_or_a_url() {
        for (line, pinned) in [
            ("pandas==2.2.3", true),
            ("requests[socks] == 2.32.3 ; python_version >= '3.8'", true),
            ("x===1.0", true),
            ("pkg @ https://x/p.whl#sha256=ab", true),
            ("six>=1.0", false),
            ("tzdata", false),
            ("foo==1.*", false),
            ("foo==1.0,!=1.1", false),
        ] {
            assert_eq!(Requirement::parse(line).unwrap().is_pinned(), pinned, "{line}");
        }
    }

    #[test]
    fn pep440_ordering_and_spellings() {
        let v = |s: &str| Version::from_str(s).unwrap();
        let order: Vec<_> =
            "0.9 1.0.dev0 1.0a1.dev1 1.0a1 1.0b2 1.0rc1 1.0 1.0+abc 1.0+5 1.0.post1.dev0 1.0.post1 1.1 1!0.1"
                .split(' ')
                .collect();
        for w in order.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        let same =
            "1.0=1.0.0 1.0alpha1=1.0a1 1.0-Beta.2=1.0b2 1.0c1=1.0rc1 1.0pre1=1.0rc1 1.0-1=1.0.post1 1.0r=1.0.post0";
        for (a, b) in same.split(' ').chain(["v1.0.DEV=1.0.dev0"]).filter_map(|p| p.split_once('=')) {
            assert_eq!(v(a), v(b), "{a} == {b}");
        }
        for bad in ["", "1.0foo", "a1", "1.0+", "1..0", "1.0_1"] {
            assert!(Version::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn specifiers() {
        // (specifier, versions it contains, versions it does not).
        let table = [
            ("~=2.2", "2.2 2.9.1", "2.1 3.0"),
            ("~=1.4.5", "1.4.5 1.4.9", "1.4.4 1.5"),
            ("==1.2.*", "1.2 1.2.7 1.2rc1", "1.3 1.20"),
            ("!=1.2.*", "1.20 1.3", "1.2 1.2.7"),
            ("==1.0", "1.0.0 1.0+local", "1.0.1 1.0rc1"),
            ("==1.0+a", "1.0+a", "1.0 1.0+b"),
            ("!=1.0", "1.0.1", "1.0.0"),
            ("<1.0", "0.9 0.9rc1", "1.0rc1 1.0.dev0 1.0"),
            ("<1.0rc2", "1.0rc1", "1.0rc2 1.0"),
            (">1.0", "1.0.1 1.1a1", "1.0.post1 1.0+x 1.0"),
            (">1.0.post1", "1.0.post2", "1.0.post1"),
            ("<=1.0", "1.0+x 0.1", "1.0.1"),
            (">=1.26.0", "2.3.5 1.26", "1.26.0rc1 1.24.0"),
            ("===1.0", "1.0", "1.0.0"),
            ("==1!1.0", "1!1.0", "1.0"),
        ];
        for (spec, yes, no) in table {
            let r = Requirement::parse(&format!("x{spec}")).unwrap();
            yes.split(' ').for_each(|v| assert!(r.allows(v), "{v} in {spec}"));
            no.split(' ').for_each(|v| assert!(!r.allows(v), "{v} not in {spec}"));
        }
        let r = Requirement::parse("x>=1.0, !=1.5.*, <2").unwrap();
        assert!(r.allows("1.4") && !r.allows("1.5.2") && !r.allows("2.0") && !r.allows("0.9"));
        // An installed version that is not PEP 440 satisfies only "any version".
        assert!(Requirement::parse("x").unwrap().allows("weird") && !r.allows("weird"));
    }

    #[test]
    fn marker_grammar_errors_skip_the_requirement() {
        for bad in
            ["python_version >=", "(os_name == 'posix'", "foo == 'x'", "os_name == 'posix' or", "os_name = 'posix"]
        {
            assert!(Requirement::parse(&format!("x; {bad}")).is_none(), "{bad}");
        }
        let holds = |m: &str| Requirement::parse(&format!("x; {m}")).unwrap().applies(&env(), "");
        assert!(!holds("os.name == 'posix' and platform_version != 'x'"));
        assert!(holds("python_version == '3.*' and python_version > '3.9'"));
    }

    #[test]
    fn the_name_a_requirements_line_installs() {
        let cases = [
            ("Typing_Extensions>=4", Some("typing-extensions")),
            ("  six==1.16.0  # pinned", Some("six")),
            ("requests[socks]==2.32.3 ; python_version >= '3.8'", Some("requests")),
            ("pkg @ https://x/p.whl#sha256=ab", Some("pkg")),
            ("--only-binary=:all:", None),
            ("# six", None),
            ("./wheels/a-1.0-py3-none-any.whl", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(requirement_name(line).as_deref(), want, "{line}");
        }
    }
}
