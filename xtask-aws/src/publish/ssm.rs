//! The newest ARN of each unit in SSM Parameter Store, for a profile with `ssm_parameter`
//! (e.g. `/layers/{layer}/{py}/{arch}`), as Powertools for AWS Lambda publishes its
//! layers' ARNs: SAM (`{{resolve:ssm:NAME}}`), the CDK
//! (`StringParameter.valueForStringParameter`) and Terraform (`aws_ssm_parameter`) then
//! resolve the ARN without the repo. Written when a version is published, and once for a
//! version recorded before the profile had `ssm_parameter` (the manifest entry remembers
//! the parameter it was written to), so a run with nothing new makes no SSM call.

use anyhow::Result;
use aws_sdk_ssm::types::ParameterType;

use crate::aws::Clients;

/// Writes `arn` to the parameter `name` in the clients' region, replacing what is there.
pub async fn put(c: &Clients, name: &str, arn: &str) -> Result<()> {
    c.ssm
        .put_parameter()
        .name(name)
        .value(arn)
        .r#type(ParameterType::String)
        .overwrite(true)
        .description("The newest layer version ARN (written by cargo xtask publish)")
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot write the SSM parameter {name} in {}", c.target.region), e))?;
    Ok(())
}
