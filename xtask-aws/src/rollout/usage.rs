//! Which functions attach which versions of this repo's layers: every function of each
//! region of a profile (ListFunctions, paginated), its attached layers split into the
//! repo's own (a layer name some unit of the repo publishes to, in the caller's account)
//! and other owners' (shown, never touched), each own layer with its attached and newest
//! version (ListLayerVersions), and the `[stacks.*]` entry the layer list matches.
//! Read-only; `prune` uses [`list_function_versions`] to keep every version a function (or
//! a published version of one) attaches.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use crate::aws::{identity, Clients, Session};
use xtask::config::StackConfig;
use xtask::profile::naming;
use xtask::runtime::{Arch, Runtime};
use xtask::unit::Unit;

/// The parts of a layer version ARN: `arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerArn {
    pub region: String,
    pub account: String,
    pub name: String,
    pub version: i64,
}

impl LayerArn {
    pub fn parse(arn: &str) -> Option<LayerArn> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [prefix, _partition, service, region, account, kind, name, version] = parts.as_slice() else {
            return None;
        };
        if *prefix != "arn" || *service != "lambda" || *kind != "layer" || name.is_empty() {
            return None;
        }
        Some(LayerArn {
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
            version: version.parse().ok()?,
        })
    }
}

/// A function as ListFunctions (or GetFunction) describes it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub arn: String,
    /// None for a container image function.
    pub runtime: Option<String>,
    pub arch: String,
    /// The attached layers in order: (ARN, zipped size).
    pub layers: Vec<(String, i64)>,
    /// The function's own code, zipped, in bytes.
    pub code_size: i64,
}

impl Listed {
    pub fn from_configuration(c: &aws_sdk_lambda::types::FunctionConfiguration) -> Listed {
        Listed {
            name: c.function_name().unwrap_or_default().to_string(),
            arn: c.function_arn().unwrap_or_default().to_string(),
            runtime: c.runtime().map(|r| r.as_str().to_string()),
            arch: c.architectures().first().map(|a| a.as_str().to_string()).unwrap_or_else(|| "x86_64".into()),
            layers: c.layers().iter().map(|l| (l.arn().unwrap_or_default().to_string(), l.code_size())).collect(),
            code_size: c.code_size(),
        }
    }

    pub fn layer_arns(&self) -> Vec<String> {
        self.layers.iter().map(|(a, _)| a.clone()).collect()
    }
}

/// Every function of the clients' region (ListFunctions, every page).
pub async fn list_functions(c: &Clients) -> Result<Vec<Listed>> {
    let what = format!("cannot list the functions in {}", c.target.region);
    let mut pages = c.lambda.list_functions().into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| c.target.explain(&what, e))?;
        out.extend(page.functions().iter().map(Listed::from_configuration));
    }
    Ok(out)
}

/// Every function of the clients' region and every published version of each
/// (ListFunctions with `FunctionVersion=ALL`): a published version keeps the layer list it
/// was published with, for as long as an alias or a caller may still invoke it. Each as
/// `(name, or name:version for a published version, layer ARNs)`.
pub async fn list_function_versions(c: &Clients) -> Result<Vec<(String, Vec<String>)>> {
    let what = format!("cannot list the functions (and their versions) in {}", c.target.region);
    let mut pages =
        c.lambda.list_functions().function_version(aws_sdk_lambda::types::FunctionVersion::All).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| c.target.explain(&what, e))?;
        for f in page.functions() {
            let l = Listed::from_configuration(f);
            let name = match f.version() {
                Some(v) if v != "$LATEST" => format!("{}:{v}", l.name),
                _ => l.name.clone(),
            };
            out.push((name, l.layer_arns()));
        }
    }
    Ok(out)
}

/// One version of a layer, as ListLayerVersions reports it.
#[derive(Debug, Clone)]
pub struct Version {
    pub version: i64,
    pub arn: String,
    pub description: String,
    pub runtimes: Vec<String>,
    pub archs: Vec<String>,
}

/// Every version of a layer in the clients' region (none when the layer does not exist).
pub async fn list_versions(c: &Clients, layer_name: &str) -> Result<Vec<Version>> {
    let what = || format!("cannot list the versions of layer {layer_name} in {}", c.target.region);
    let mut pages = c.lambda.list_layer_versions().layer_name(layer_name).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(c.target.explain(&what(), e)),
        };
        out.extend(page.layer_versions().iter().map(|v| Version {
            version: v.version(),
            arn: v.layer_version_arn().unwrap_or_default().to_string(),
            description: v.description().unwrap_or_default().to_string(),
            runtimes: v.compatible_runtimes().iter().map(|r| r.as_str().to_string()).collect(),
            archs: v.compatible_architectures().iter().map(|a| a.as_str().to_string()).collect(),
        }));
    }
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// The unit of the repo publishing to a Lambda layer name.
#[derive(Debug, Clone)]
pub struct Owner {
    pub layer: String,
    pub runtime: Runtime,
    pub arch: Arch,
    pub fingerprint: String,
    pub unit: usize,
}

/// Which Lambda layer names the repo's units publish to, under a profile.
pub struct Owners {
    pub units: Vec<Unit>,
    pub by_name: BTreeMap<String, Vec<Owner>>,
}

impl Owners {
    pub fn new(session: &Session, units: Vec<Unit>) -> Result<Owners> {
        let mut by_name: BTreeMap<String, Vec<Owner>> = BTreeMap::new();
        for (i, u) in units.iter().enumerate() {
            let name = naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)?;
            by_name.entry(name).or_default().push(Owner {
                layer: u.layer.name.clone(),
                runtime: u.runtime,
                arch: u.arch,
                fingerprint: u.fingerprint.clone(),
                unit: i,
            });
        }
        Ok(Owners { units, by_name })
    }

    /// Whether units of more than one target publish to this layer name.
    pub fn shared(&self, layer_name: &str) -> bool {
        self.by_name.get(layer_name).is_some_and(|o| o.iter().any(|x| (x.runtime, x.arch) != (o[0].runtime, o[0].arch)))
    }

    /// The owner of a layer name for a function's target: the unit built for it, else the
    /// first unit publishing to the name.
    pub fn owner(&self, layer_name: &str, runtime: Option<&str>, arch: &str) -> Option<&Owner> {
        let owners = self.by_name.get(layer_name)?;
        owners.iter().find(|o| Some(o.runtime.id) == runtime && o.arch.as_str() == arch).or(owners.first())
    }
}

/// One attached layer of a function.
#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    pub arn: String,
    /// The repo's layer (`numpy`); None for a layer of another owner.
    pub layer: Option<String>,
    pub layer_name: String,
    pub version: Option<i64>,
    /// The newest published version of the repo's layer in the function's region.
    pub newest: Option<i64>,
    /// `repo` or `other`.
    pub owner: &'static str,
}

impl Attached {
    pub fn is_own(&self) -> bool {
        self.layer.is_some()
    }

    pub fn outdated(&self) -> bool {
        matches!((self.version, self.newest), (Some(v), Some(n)) if n > v)
    }
}

/// A function that attaches a version of a repo layer.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub region: String,
    pub function: String,
    pub function_arn: String,
    pub runtime: Option<String>,
    pub arch: String,
    pub layers: Vec<Attached>,
    /// The `[stacks.NAME]` whose layers (in order) and target the function's own layers match.
    pub stack: Option<String>,
    #[serde(skip)]
    pub client: usize,
}

impl Function {
    pub fn outdated(&self) -> bool {
        self.layers.iter().any(Attached::outdated)
    }

    /// The repo layers it attaches, in order.
    pub fn own_layers(&self) -> Vec<String> {
        self.layers.iter().filter_map(|a| a.layer.clone()).collect()
    }
}

/// What `usage` found: the functions, and every version of each repo layer name seen,
/// per region (client index).
pub struct Survey {
    pub functions: Vec<Function>,
    pub versions: BTreeMap<(usize, String), Vec<Version>>,
    /// The caller's account in each region (client index).
    pub accounts: Vec<String>,
    /// The profile's regions (client index).
    pub regions: Vec<String>,
}

impl Survey {
    /// The newest version of a layer name; with `target` (runtime, architecture), the
    /// newest a function of that target can attach: a layer name shared by several targets
    /// (a `layer_name` without `{py}` or `{arch}`) holds versions built for each, and a
    /// newer one for another target is not an upgrade (see [`Owners::shared`]).
    pub fn newest(&self, client: usize, layer_name: &str, target: Option<(Option<&str>, &str)>) -> Option<&Version> {
        let fits = |v: &&Version| match target {
            None => true,
            Some((runtime, arch)) => {
                (v.runtimes.is_empty() || runtime.is_some_and(|r| v.runtimes.iter().any(|x| x == r)))
                    && (v.archs.is_empty() || v.archs.iter().any(|a| a == arch))
            }
        };
        self.versions.get(&(client, layer_name.to_string())).and_then(|v| v.iter().rev().find(fits))
    }

    pub fn version(&self, client: usize, layer_name: &str, version: i64) -> Option<&Version> {
        self.versions.get(&(client, layer_name.to_string()))?.iter().find(|v| v.version == version)
    }
}

/// Whether an attached ARN is one of the repo's: a layer name the repo publishes to, in
/// the caller's account and the function's region.
pub fn own_name<'a>(owners: &'a Owners, arn: &str, account: &str, region: &str) -> Option<(LayerArn, &'a [Owner])> {
    let a = LayerArn::parse(arn)?;
    if a.account != account || a.region != region {
        return None;
    }
    let owners = owners.by_name.get(&a.name)?;
    Some((a, owners.as_slice()))
}

/// Lists the functions of every region and the versions of each repo layer they attach.
/// `only`: repo layers (`numpy`) a function must attach to be listed (all when empty).
/// `named`: functions (name or ARN) listed even when they attach no repo layer (the ones
/// `rollout --stack S --function F` puts on a stack for the first time).
pub async fn survey(
    session: &Session,
    owners: &Owners,
    stacks: &BTreeMap<String, StackConfig>,
    only: &[String],
    named: &[String],
) -> Result<Survey> {
    let mut accounts = Vec::new();
    let mut listed = Vec::new();
    for (i, c) in session.clients.iter().enumerate() {
        accounts.push(identity::account(c).await?);
        // A region named twice in the profile is surveyed once (its functions are not
        // listed, or moved, twice).
        let again = session.clients[..i].iter().any(|x| x.target.region == c.target.region);
        listed.push(if again { Vec::new() } else { list_functions(c).await? });
    }
    let mut wanted: BTreeSet<(usize, String)> = BTreeSet::new();
    for (i, fs) in listed.iter().enumerate() {
        let region = &session.clients[i].target.region;
        for f in fs {
            for (arn, _) in &f.layers {
                if let Some((a, _)) = own_name(owners, arn, &accounts[i], region) {
                    wanted.insert((i, a.name));
                }
            }
        }
    }
    let mut versions = BTreeMap::new();
    for (i, name) in wanted {
        let v = list_versions(&session.clients[i], &name).await?;
        versions.insert((i, name), v);
    }
    let regions = session.clients.iter().map(|c| c.target.region.clone()).collect();
    let mut survey = Survey { functions: Vec::new(), versions, accounts, regions };
    for (i, fs) in listed.into_iter().enumerate() {
        let region = session.clients[i].target.region.clone();
        for f in fs {
            let layers: Vec<Attached> = f
                .layers
                .iter()
                .map(|(arn, _)| match own_name(owners, arn, &survey.accounts[i], &region) {
                    Some((a, _)) => {
                        let owner =
                            owners.owner(&a.name, f.runtime.as_deref(), &f.arch).expect("an own name has an owner");
                        Attached {
                            arn: arn.clone(),
                            layer: Some(owner.layer.clone()),
                            newest: survey
                                .newest(i, &a.name, owners.shared(&a.name).then_some((f.runtime.as_deref(), &f.arch)))
                                .map(|v| v.version),
                            layer_name: a.name,
                            version: Some(a.version),
                            owner: "repo",
                        }
                    }
                    None => {
                        let parsed = LayerArn::parse(arn);
                        Attached {
                            arn: arn.clone(),
                            layer: None,
                            layer_name: parsed.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| arn.clone()),
                            version: parsed.map(|a| a.version),
                            newest: None,
                            owner: "other",
                        }
                    }
                })
                .collect();
            let is_named = named.iter().any(|n| *n == f.name || *n == f.arn);
            if !layers.iter().any(Attached::is_own) && !is_named {
                continue;
            }
            let own: Vec<String> = layers.iter().filter_map(|a| a.layer.clone()).collect();
            if !only.is_empty() && !own.iter().any(|l| only.contains(l)) {
                continue;
            }
            let stack = matching_stack(stacks, &own, f.runtime.as_deref(), &f.arch, true);
            survey.functions.push(Function {
                region: region.clone(),
                function: f.name.clone(),
                function_arn: f.arn.clone(),
                runtime: f.runtime.clone(),
                arch: f.arch.clone(),
                layers,
                stack,
                client: i,
            });
        }
    }
    survey.functions.sort_by(|a, b| (&a.region, &a.function).cmp(&(&b.region, &b.function)));
    Ok(survey)
}

/// The stack whose layers are exactly `own` in this order; with `target`, also built for
/// the function's runtime and architecture.
pub fn matching_stack(
    stacks: &BTreeMap<String, StackConfig>,
    own: &[String],
    runtime: Option<&str>,
    arch: &str,
    target: bool,
) -> Option<String> {
    stacks
        .values()
        .find(|s| s.layers.as_slice() == own && (!target || (Some(s.runtime.id) == runtime && s.arch.as_str() == arch)))
        .map(|s| s.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_arns_are_parsed_and_re_versioned() {
        let a = LayerArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:six-py313-x86_64:7").unwrap();
        assert_eq!(
            (a.region.as_str(), a.account.as_str(), a.name.as_str(), a.version),
            ("us-east-1", "123456789012", "six-py313-x86_64", 7)
        );
        assert!(LayerArn::parse("arn:aws:lambda:us-east-1:123456789012:function:f").is_none());
        assert!(LayerArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:x:latest").is_none());
    }

    #[test]
    fn the_newest_version_is_the_newest_built_for_the_function() {
        let v = |version: i64, runtime: &str, arch: &str| Version {
            version,
            arn: format!("six:{version}"),
            description: String::new(),
            runtimes: vec![runtime.into()],
            archs: vec![arch.into()],
        };
        let survey = Survey {
            functions: Vec::new(),
            versions: BTreeMap::from([(
                (0, "six".to_string()),
                vec![v(1, "python3.13", "x86_64"), v(2, "python3.12", "x86_64"), v(3, "python3.13", "arm64")],
            )]),
            accounts: vec!["1".into()],
            regions: vec!["us-east-1".into()],
        };
        let newest = |r: &str, a: &str| survey.newest(0, "six", Some((Some(r), a))).map(|v| v.version);
        assert_eq!(survey.newest(0, "six", None).map(|v| v.version), Some(3));
        assert_eq!(newest("python3.13", "x86_64"), Some(1));
        assert_eq!(newest("python3.12", "x86_64"), Some(2));
        assert_eq!(newest("python3.13", "arm64"), Some(3));
        assert_eq!(newest("python3.11", "x86_64"), None);
    }

    #[test]
    fn a_layer_is_the_repos_only_by_name_account_and_region() {
        let owner = Owner {
            layer: "six".into(),
            runtime: Runtime::parse("python3.13").unwrap(),
            arch: Arch::X86_64,
            fingerprint: "f".into(),
            unit: 0,
        };
        let owners =
            Owners { units: Vec::new(), by_name: BTreeMap::from([("six-py313-x86_64".to_string(), vec![owner])]) };
        let arn = |account: &str, name: &str| format!("arn:aws:lambda:us-east-1:{account}:layer:{name}:3");
        let mine = own_name(&owners, &arn("123456789012", "six-py313-x86_64"), "123456789012", "us-east-1");
        assert_eq!(mine.map(|(a, o)| (a.version, o[0].layer.clone())), Some((3, "six".to_string())));
        // The same name in another account, another name, another region: another owner's.
        assert!(own_name(&owners, &arn("210987654321", "six-py313-x86_64"), "123456789012", "us-east-1").is_none());
        assert!(own_name(&owners, &arn("123456789012", "numpy-py313-x86_64"), "123456789012", "us-east-1").is_none());
        assert!(own_name(&owners, &arn("123456789012", "six-py313-x86_64"), "123456789012", "eu-west-1").is_none());
        assert!(owners.owner("six-py313-x86_64", Some("python3.12"), "arm64").is_some_and(|o| o.layer == "six"));
    }
}
