//! Which stockguard stack the CLI talks to (contract section 4), and with which AWS account.
//!
//! In order: `--stack-name NAME`, whose CloudFormation outputs name the table, the bus, the
//! dead-letter queues, the archive and the API; else the environment (`STOCKGUARD_TABLE`,
//! `STOCKGUARD_BUS`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_REGION`); else, without
//! `--profile`, the `.local/stack.json` that `make local-up` writes, looked up from the current
//! directory through its ancestors. `--profile` and `--region` apply to each.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use serde::Deserialize;

use crate::errors::sdk_error_text;

/// Where a local stack describes itself, relative to the project root.
pub const STACK_FILE: &str = ".local/stack.json";

/// The stack outputs the CLI reads (template.yaml's Outputs). Only the table's is required; a
/// command that needs another says which output is missing.
pub mod outputs {
    pub const TABLE: &str = "StateTableName";
    pub const BUS: &str = "EventBusName";
    pub const API_URL: &str = "ReservationsApiUrl";
    pub const API_ID: &str = "ReservationsApiId";
    /// The archive of inbound events, by ARN or by name, in order of preference.
    pub const ARCHIVE: [&str; 3] = ["InboundArchiveArn", "InboundArchiveName", "InboundArchive"];
    /// `<LogicalId>DLQUrl`: each dead-letter queue's URL.
    pub const DLQ_URL_SUFFIX: &str = "Url";
}

/// How the operator names the stack and the AWS account: `--profile`, `--region`, `--stack-name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Stack and AWS account")]
pub struct Target {
    /// Use this profile of ~/.aws/config (SSO, credential_process, keys or a role) for
    /// credentials and, unless --region is given, its region. Implies AWS: .local/stack.json is
    /// not read.
    #[arg(long, global = true, value_name = "NAME", value_parser = non_empty)]
    pub profile: Option<String>,
    /// The AWS region, over AWS_REGION, the profile's and the stack file's.
    #[arg(long, global = true, value_name = "REGION", value_parser = non_empty)]
    pub region: Option<String>,
    /// The deployed CloudFormation stack: its outputs name the table, the bus, the dead-letter
    /// queues, the archive and the API. Wins over STOCKGUARD_TABLE and .local/stack.json.
    #[arg(long, global = true, value_name = "NAME", value_parser = non_empty)]
    pub stack_name: Option<String>,
}

fn non_empty(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.to_owned())
    }
}

/// The stack the commands run against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub table: String,
    pub event_bus: Option<String>,
    /// `None`: the SDK's own resolution (AWS itself, or `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// DynamoDB's own endpoint, where it differs (the local emulator runs DynamoDB apart).
    /// `None`: the SDK's own resolution (`AWS_ENDPOINT_URL_DYNAMODB`, else `endpoint_url`).
    pub dynamodb_endpoint_url: Option<String>,
    /// `None`: the SDK's own resolution (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// `--profile`; `None`: the SDK's own resolution (`AWS_PROFILE`, the default profile).
    pub profile: Option<String>,
    pub api_url: Option<String>,
    /// The dead-letter queues the stack's outputs name: logical id to URL. Empty: the queues are
    /// found by name (`stockguard dlq --help`).
    pub dead_letter_queues: BTreeMap<String, String>,
    /// The archive of inbound events the stack's outputs name, by ARN or by name.
    pub archive: Option<String>,
    /// Use the emulator's dummy credentials: the endpoint is local and no credentials are set.
    pub test_credentials: bool,
    pub origin: Origin,
}

/// Where the stack was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Environment,
    File(PathBuf),
    Explicit,
    /// `--stack-name`: the outputs of this CloudFormation stack.
    CloudFormation(String),
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::CloudFormation(name) => write!(f, "stack {name}, table {}", self.table)?,
            _ => write!(f, "table {}", self.table)?,
        }
        if let Some(url) = &self.endpoint_url {
            write!(f, " at {url}")?;
        }
        if let Some(url) = &self.dynamodb_endpoint_url {
            write!(f, " (DynamoDB at {url})")?;
        }
        if let Some(region) = &self.region {
            write!(f, " in {region}")?;
        }
        if let Some(profile) = &self.profile {
            write!(f, " with profile {profile}")?;
        }
        match &self.origin {
            Origin::Environment => write!(f, ", from STOCKGUARD_TABLE"),
            Origin::File(path) => write!(f, ", from {}", path.display()),
            Origin::Explicit | Origin::CloudFormation(_) => Ok(()),
        }
    }
}

/// The shape of `.local/stack.json`.
#[derive(Debug, Deserialize)]
struct StackFile {
    aws_endpoint_url: Option<String>,
    aws_endpoint_url_dynamodb: Option<String>,
    region: Option<String>,
    table: String,
    event_bus: Option<String>,
    api_url: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    // Read by later commands (reconcile); parsed now so a bad file fails early.
    channels: BTreeMap<String, String>,
}

impl Stack {
    /// A stack named directly (tests, tools): dummy credentials when the endpoint is local and the
    /// process has none.
    pub fn explicit(
        table: impl Into<String>,
        endpoint_url: Option<String>,
        region: Option<String>,
    ) -> Self {
        let test_credentials = wants_test_credentials(endpoint_url.as_deref(), &process_env);
        Self {
            table: table.into(),
            event_bus: None,
            endpoint_url,
            dynamodb_endpoint_url: None,
            region,
            profile: None,
            api_url: None,
            dead_letter_queues: BTreeMap::new(),
            archive: None,
            test_credentials,
            origin: Origin::Explicit,
        }
    }

    /// Finds the stack `target` names, from the process environment and the current directory,
    /// with the AWS configuration to reach it.
    pub async fn locate(target: &Target) -> Result<(Self, aws_config::SdkConfig)> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        Self::locate_from(target, &process_env, &cwd).await
    }

    /// [`Stack::locate`] with `env` (a variable lookup) and `cwd`.
    pub async fn locate_from(
        target: &Target,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<(Self, aws_config::SdkConfig)> {
        let Some(name) = &target.stack_name else {
            let stack = Self::discover_for(target, env, cwd)?;
            let config = stack.aws_config().await?;
            return Ok((stack, config));
        };
        // Endpoints as the SDK resolves them (AWS itself, or AWS_ENDPOINT_URL for an emulator).
        let config =
            load_sdk_config(target.profile.as_deref(), target.region.as_deref(), false).await?;
        let described = describe_stack(&config, name, target.profile.as_deref()).await?;
        let mut stack = Self::from_outputs(name, &described)?;
        stack.region = config.region().map(|r| r.to_string());
        stack.profile.clone_from(&target.profile);
        Ok((stack, config))
    }

    /// The stack `name` from its CloudFormation outputs: the table's is required, the others are
    /// read when present.
    pub fn from_outputs(name: &str, described: &DescribedStack) -> Result<Self> {
        let outputs = &described.outputs;
        let table = outputs
            .get(outputs::TABLE)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| missing_output(name, described, outputs::TABLE, "the state table"))?;
        let dead_letter_queues = outputs
            .iter()
            .filter_map(|(key, url)| {
                let id = key.strip_suffix(outputs::DLQ_URL_SUFFIX)?;
                (id.ends_with("DLQ") && !url.trim().is_empty())
                    .then(|| (id.to_owned(), url.clone()))
            })
            .collect();
        let archive = outputs::ARCHIVE
            .iter()
            .find_map(|key| outputs.get(*key))
            .or_else(|| {
                // An archive output under another name: the only one whose name says so.
                let mut others = outputs.iter().filter(|(k, _)| k.contains("Archive"));
                match (others.next(), others.next()) {
                    (Some((_, v)), None) => Some(v),
                    _ => None,
                }
            })
            .filter(|v| !v.trim().is_empty())
            .cloned();
        let api_url = outputs.get(outputs::API_URL).cloned();
        Ok(Self {
            table: table.clone(),
            event_bus: outputs
                .get(outputs::BUS)
                .filter(|v| !v.trim().is_empty())
                .cloned(),
            endpoint_url: None,
            dynamodb_endpoint_url: None,
            region: None,
            profile: None,
            api_url,
            dead_letter_queues,
            archive,
            test_credentials: false,
            origin: Origin::CloudFormation(name.to_owned()),
        })
    }

    /// Finds the stack from the process environment and the current directory, without
    /// `--stack-name`.
    pub fn discover() -> Result<Self> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        Self::discover_from(&process_env, &cwd)
    }

    /// Finds the stack from `env` (a variable lookup) and `cwd`.
    pub fn discover_from(env: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Result<Self> {
        Self::discover_for(&Target::default(), env, cwd)
    }

    /// The stack from `env` or the stack file, with `target`'s profile and region. The stack file
    /// describes the local emulator, so with a `--profile` it is not read.
    pub fn discover_for(
        target: &Target,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Self> {
        if let Some(name) = &target.stack_name {
            bail!("stack {name} is read from CloudFormation: use Stack::locate");
        }
        let mut stack = Self::from_environment(env)
            .map(Ok)
            .unwrap_or_else(|| match &target.profile {
                Some(profile) => Err(anyhow!(
                    "no stockguard stack named: --profile {profile} chooses the AWS account, not                      the stack; add --stack-name NAME (the CloudFormation stack), or set                      STOCKGUARD_TABLE and STOCKGUARD_BUS"
                )),
                None => Self::from_file(env, cwd),
            })?;
        if let Some(region) = &target.region {
            stack.region = Some(region.clone());
        }
        if let Some(profile) = &target.profile {
            stack.profile = Some(profile.clone());
            stack.test_credentials = false;
        }
        Ok(stack)
    }

    fn from_environment(env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let table = var("STOCKGUARD_TABLE")?;
        let endpoint_url = var("AWS_ENDPOINT_URL");
        Some(Self {
            table,
            event_bus: var("STOCKGUARD_BUS"),
            test_credentials: wants_test_credentials(endpoint_url.as_deref(), env),
            endpoint_url,
            dynamodb_endpoint_url: var("AWS_ENDPOINT_URL_DYNAMODB"),
            region: var("AWS_REGION"),
            profile: None,
            api_url: None,
            dead_letter_queues: BTreeMap::new(),
            archive: None,
            origin: Origin::Environment,
        })
    }

    fn from_file(env: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Result<Self> {
        let Some(path) = find_stack_file(cwd) else {
            bail!(
                "no stockguard stack found: STOCKGUARD_TABLE is not set and there is no \
                 {STACK_FILE} in {} or its parents; start a local stack with `make local-up` \
                 (from the project root), or name a deployed one with --stack-name NAME (and \
                 --profile, --region as needed)",
                cwd.display()
            );
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: StackFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a stack description (expected {{\"aws_endpoint_url\", \
                 \"aws_endpoint_url_dynamodb\", \"region\", \"table\", \"event_bus\", \"api_url\", \
                 \"channels\"}}); run `make local-up` again",
                path.display()
            )
        })?;
        if file.table.trim().is_empty() {
            bail!(
                "{} names no table; run `make local-up` again",
                path.display()
            );
        }
        let endpoint_url = file.aws_endpoint_url.filter(|u| !u.trim().is_empty());
        Ok(Self {
            table: file.table,
            event_bus: file.event_bus,
            test_credentials: wants_test_credentials(endpoint_url.as_deref(), env),
            endpoint_url,
            dynamodb_endpoint_url: file
                .aws_endpoint_url_dynamodb
                .filter(|u| !u.trim().is_empty()),
            region: file.region.filter(|r| !r.trim().is_empty()),
            profile: None,
            api_url: file.api_url,
            dead_letter_queues: BTreeMap::new(),
            archive: None,
            origin: Origin::File(path),
        })
    }

    /// Whether the stack is in AWS rather than in a local emulator: named by `--stack-name`,
    /// reached with a `--profile`, or without a local endpoint. Hints about `make local-up` are
    /// for local stacks only.
    pub fn is_aws(&self) -> bool {
        self.profile.is_some()
            || matches!(self.origin, Origin::CloudFormation(_))
            || !self
                .endpoint_url
                .as_deref()
                .or(self.dynamodb_endpoint_url.as_deref())
                .is_some_and(is_local_endpoint)
    }

    /// The event bus, or what to do to name it.
    pub fn bus(&self) -> Result<&str> {
        if let Some(bus) = self.event_bus.as_deref() {
            return Ok(bus);
        }
        match &self.origin {
            Origin::CloudFormation(name) => bail!(
                "stack {name} has no output {}, the event bus; is it deployed from this \
                 version's template.yaml?",
                outputs::BUS
            ),
            Origin::File(path) => bail!(
                "{} names no event_bus; run `make local-up` again",
                path.display()
            ),
            Origin::Environment | Origin::Explicit => {
                bail!("the stack's event bus is unknown: set STOCKGUARD_BUS, or use --stack-name")
            }
        }
    }

    /// The AWS configuration for this stack, loaded once per run.
    pub async fn aws_config(&self) -> Result<aws_config::SdkConfig> {
        let mut config = load_sdk_config(
            self.profile.as_deref(),
            self.region.as_deref(),
            self.test_credentials,
        )
        .await?;
        if self.endpoint_url.is_some() || self.dynamodb_endpoint_url.is_some() {
            // The stack's endpoints win over the environment's. Given as service configuration,
            // not as the loader's endpoint_url, which every client would take, DynamoDB's included.
            let endpoints = StackEndpoints {
                endpoint_url: self.endpoint_url.clone(),
                dynamodb_endpoint_url: self.dynamodb_endpoint_url.clone(),
                base: config.clone(),
            };
            let mut builder = config.into_builder().service_config(endpoints);
            if let Some(url) = &self.endpoint_url {
                builder = builder.endpoint_url(url);
            }
            config = builder.build();
        }
        Ok(config)
    }
}

/// The SDK configuration for `profile` (else the SDK's own choice) in `region` (else the
/// environment's or the profile's).
async fn load_sdk_config(
    profile: Option<&str>,
    region: Option<&str>,
    test_credentials: bool,
) -> Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = profile {
        check_profile_exists(profile).await?;
        // As with the AWS CLI, a profile named on the command line gives the credentials even
        // where the environment has some (AWS_ACCESS_KEY_ID).
        loader = loader.profile_name(profile).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    if test_credentials {
        loader = loader.credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "stockguard-local-emulator",
        ));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        match profile {
            Some(profile) => bail!(
                "no AWS region: pass --region, set AWS_REGION, or give profile {profile} a region"
            ),
            None => bail!("no AWS region: pass --region or set AWS_REGION"),
        }
    }
    Ok(config)
}

/// Fails, naming the files read, when no profile `name` is in the AWS config and credentials
/// files: the SDK would go on without it.
async fn check_profile_exists(name: &str) -> Result<()> {
    use aws_types::os_shim_internal::{Env, Fs};
    let profiles = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &aws_runtime::env_config::file::EnvConfigFiles::default(),
        None,
    )
    .await
    .map_err(|e| anyhow!("reading the AWS config files for profile {name}: {e}"))?;
    if profiles.get_profile(name).is_none() {
        let files = match (
            std::env::var("AWS_CONFIG_FILE"),
            std::env::var("AWS_SHARED_CREDENTIALS_FILE"),
        ) {
            (Err(_), Err(_)) => "~/.aws/config nor ~/.aws/credentials".to_owned(),
            (config, credentials) => format!(
                "{} nor {}",
                config.unwrap_or_else(|_| "~/.aws/config".into()),
                credentials.unwrap_or_else(|_| "~/.aws/credentials".into())
            ),
        };
        bail!(
            "there is no profile {name}: neither {files} has it; `aws configure list-profiles` \
             lists the profiles, `aws configure sso --profile {name}` adds an SSO one"
        );
    }
    Ok(())
}

/// What DescribeStacks says of a stack: its status and outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedStack {
    pub status: String,
    pub outputs: BTreeMap<String, String>,
}

async fn describe_stack(
    config: &aws_config::SdkConfig,
    name: &str,
    profile: Option<&str>,
) -> Result<DescribedStack> {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let client = aws_sdk_cloudformation::Client::new(config);
    let described = match client.describe_stacks().stack_name(name).send().await {
        Ok(described) => described,
        Err(e) => {
            let missing = e.as_service_error().is_some_and(|s| {
                aws_sdk_cloudformation::error::ProvideErrorMetadata::message(s)
                    .is_some_and(|m| m.contains("does not exist"))
            });
            if missing {
                let with = profile
                    .map(|p| format!(" (profile {p})"))
                    .unwrap_or_default();
                bail!(
                    "there is no CloudFormation stack {name} in {region}{with}: check --stack-name \
                     and --region"
                );
            }
            bail!(
                "reading the outputs of stack {name} in {region} (CloudFormation \
                 DescribeStacks): {}",
                sdk_error_text(&e)
            );
        }
    };
    let Some(stack) = described.stacks().first() else {
        bail!(
            "there is no CloudFormation stack {name} in {region}: check --stack-name and --region"
        );
    };
    Ok(DescribedStack {
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
    })
}

fn missing_output(
    name: &str,
    described: &DescribedStack,
    output: &str,
    what: &str,
) -> anyhow::Error {
    let status = match described.status.as_str() {
        "" | "CREATE_COMPLETE" | "UPDATE_COMPLETE" => String::new(),
        status => format!(" (its status is {status})"),
    };
    let keys: Vec<&str> = described.outputs.keys().map(String::as_str).collect();
    let has = if keys.is_empty() {
        "it has no outputs".to_owned()
    } else {
        format!("its outputs are {}", keys.join(", "))
    };
    anyhow!(
        "stack {name}{status} has no output {output} ({what}): is it a stockguard stack, \
         deployed from this version's template.yaml? {has}"
    )
}

/// Each service's endpoint as `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL` would give it;
/// any other setting from the configuration these were added to.
#[derive(Debug)]
struct StackEndpoints {
    endpoint_url: Option<String>,
    dynamodb_endpoint_url: Option<String>,
    base: aws_config::SdkConfig,
}

impl LoadServiceConfig for StackEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() == "AWS_ENDPOINT_URL" {
            let own = match key.service_id() {
                "DynamoDB" => self.dynamodb_endpoint_url.as_ref(),
                _ => None,
            };
            if let Some(url) = own.or(self.endpoint_url.as_ref()) {
                return Some(url.clone());
            }
        }
        self.base.service_config()?.load_config(key)
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `.local/stack.json` in `dir` or the nearest ancestor that has one.
pub fn find_stack_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(STACK_FILE))
        .find(|p| p.is_file())
}

fn wants_test_credentials(
    endpoint_url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let has_credentials = ["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]
        .iter()
        .any(|name| env(name).is_some_and(|v| !v.trim().is_empty()));
    !has_credentials && endpoint_url.is_some_and(is_local_endpoint)
}

/// Whether `url` points at this machine (or a container next to it), where an emulator runs.
pub fn is_local_endpoint(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "host.docker.internal"
        || host == "localstack"
        || host == "moto"
        || host == "::1"
        || host == "0.0.0.0"
        || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stockguard-cli-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_environment_wins_when_stockguard_table_is_set() {
        let env = env_of(&[
            ("STOCKGUARD_TABLE", "sg-state"),
            ("STOCKGUARD_BUS", "sg-bus"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:5001"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let stack = Stack::discover_from(&env, Path::new("/")).unwrap();
        assert_eq!(stack.table, "sg-state");
        assert_eq!(stack.event_bus.as_deref(), Some("sg-bus"));
        assert_eq!(stack.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            stack.dynamodb_endpoint_url.as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(stack.region.as_deref(), Some("eu-west-1"));
        assert!(stack.test_credentials);
        assert_eq!(stack.origin, Origin::Environment);
    }

    #[test]
    fn the_stack_file_is_found_in_an_ancestor() {
        let root = temp_dir("ancestor");
        std::fs::create_dir_all(root.join(".local")).unwrap();
        std::fs::write(
            root.join(STACK_FILE),
            r#"{"aws_endpoint_url": "http://localhost:4566",
                "aws_endpoint_url_dynamodb": "http://localhost:4567", "region": "us-east-1",
                "table": "local-state", "event_bus": "local-bus", "api_url": "http://127.0.0.1:3000",
                "channels": {"shopify": "http://127.0.0.1:9001"}}"#,
        )
        .unwrap();
        let nested = root.join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "AKIA...")]);
        let stack = Stack::discover_from(&env, &nested).unwrap();
        assert_eq!(stack.table, "local-state");
        assert_eq!(stack.event_bus.as_deref(), Some("local-bus"));
        assert_eq!(stack.endpoint_url.as_deref(), Some("http://localhost:4566"));
        assert_eq!(
            stack.dynamodb_endpoint_url.as_deref(),
            Some("http://localhost:4567")
        );
        assert_eq!(stack.region.as_deref(), Some("us-east-1"));
        assert!(
            !stack.test_credentials,
            "the caller's own credentials are kept"
        );
        assert_eq!(stack.origin, Origin::File(root.join(STACK_FILE)));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn dynamodb_clients_get_their_own_endpoint() {
        let mut stack = Stack::explicit(
            "t",
            Some("http://127.0.0.1:5000".into()),
            Some("us-east-1".into()),
        );
        stack.dynamodb_endpoint_url = Some("http://127.0.0.1:5001".into());
        let config = stack.aws_config().await.unwrap();
        // How each client resolves its endpoint when no client-level one was set in code.
        assert!(!config.get_origin("endpoint_url").is_client_config());
        let endpoint = |service_id| {
            let key = ServiceConfigKey::builder()
                .service_id(service_id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap();
            config
                .service_config()
                .and_then(|c| c.load_config(key))
                .or_else(|| config.endpoint_url().map(str::to_owned))
        };
        assert_eq!(
            endpoint("DynamoDB").as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(endpoint("SQS").as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn no_stack_says_how_to_get_one() {
        let dir = temp_dir("none");
        let err = Stack::discover_from(&env_of(&[]), &dir).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("make local-up"), "{msg}");
        assert!(msg.contains("STOCKGUARD_TABLE"), "{msg}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_malformed_stack_file_is_reported_with_its_path() {
        let dir = temp_dir("bad");
        std::fs::create_dir_all(dir.join(".local")).unwrap();
        std::fs::write(dir.join(STACK_FILE), r#"{"region": "us-east-1"}"#).unwrap();
        let err = Stack::discover_from(&env_of(&[]), &dir).unwrap_err();
        assert!(err.to_string().contains(".local/stack.json"), "{err:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn described(status: &str, outputs: &[(&str, &str)]) -> DescribedStack {
        DescribedStack {
            status: status.into(),
            outputs: outputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_deployed_stack_is_read_from_its_outputs() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/sg-StockReceivedDLQ-1AB2";
        let stack = Stack::from_outputs(
            "sg",
            &described(
                "UPDATE_COMPLETE",
                &[
                    ("StateTableName", "sg-StateTable-1X2Y"),
                    ("EventBusName", "stockguard"),
                    (
                        "EventBusArn",
                        "arn:aws:events:eu-west-1:123456789012:event-bus/stockguard",
                    ),
                    ("StockReceivedDLQUrl", url),
                    (
                        "ReservationsApiUrl",
                        "https://abc.execute-api.eu-west-1.amazonaws.com",
                    ),
                    ("ReservationsApiId", "abc"),
                    (
                        "InboundArchiveArn",
                        "arn:aws:events:eu-west-1:123456789012:archive/sg-inbound",
                    ),
                    ("DashboardName", "sg-stockguard"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(stack.table, "sg-StateTable-1X2Y");
        assert_eq!(stack.event_bus.as_deref(), Some("stockguard"));
        assert_eq!(
            stack.dead_letter_queues,
            BTreeMap::from([("StockReceivedDLQ".to_owned(), url.to_owned())])
        );
        assert_eq!(
            stack.api_url.as_deref(),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            stack.archive.as_deref(),
            Some("arn:aws:events:eu-west-1:123456789012:archive/sg-inbound")
        );
        assert_eq!(stack.origin, Origin::CloudFormation("sg".into()));
        assert!(stack.is_aws());
        assert_eq!(stack.to_string(), "stack sg, table sg-StateTable-1X2Y");

        // Outputs named otherwise: an archive output found by its name, no bus.
        let stack = Stack::from_outputs(
            "sg",
            &described(
                "",
                &[("StateTableName", "t"), ("EventsArchiveName", "sg-archive")],
            ),
        )
        .unwrap();
        assert_eq!(stack.archive.as_deref(), Some("sg-archive"));
        let err = stack.bus().unwrap_err().to_string();
        assert!(err.contains("stack sg has no output EventBusName"), "{err}");
    }

    #[test]
    fn a_missing_table_output_is_named_with_the_outputs_there_are() {
        let err = Stack::from_outputs(
            "sg",
            &described(
                "ROLLBACK_COMPLETE",
                &[("EventBusName", "b"), ("DashboardName", "d")],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "stack sg (its status is ROLLBACK_COMPLETE) has no output StateTableName"
            ),
            "{err}"
        );
        assert!(
            err.ends_with("its outputs are DashboardName, EventBusName"),
            "{err}"
        );
        let err = Stack::from_outputs("sg", &described("CREATE_COMPLETE", &[]))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("it has no outputs"), "{err}");
    }

    #[test]
    fn a_profile_means_aws_so_the_stack_file_is_not_read() {
        let root = temp_dir("profile");
        std::fs::create_dir_all(root.join(".local")).unwrap();
        std::fs::write(
            root.join(STACK_FILE),
            r#"{"aws_endpoint_url": "http://localhost:4566", "region": "us-east-1",
                "table": "local-state"}"#,
        )
        .unwrap();
        let target = Target {
            profile: Some("prod".into()),
            region: Some("eu-west-1".into()),
            stack_name: None,
        };
        let err = Stack::discover_for(&target, &env_of(&[]), &root).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--profile prod chooses the AWS account"),
            "{msg}"
        );
        assert!(!msg.contains("make local-up"), "{msg}");

        // With STOCKGUARD_TABLE, the profile and region apply to it.
        let env = env_of(&[
            ("STOCKGUARD_TABLE", "sg-StateTable-1X2Y"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let stack = Stack::discover_for(&target, &env, &root).unwrap();
        assert_eq!(stack.profile.as_deref(), Some("prod"));
        assert_eq!(stack.region.as_deref(), Some("eu-west-1"), "--region wins");
        assert!(stack.is_aws() && !stack.test_credentials);

        // Without a profile the file is read; --region still wins over it.
        let target = Target {
            region: Some("eu-west-1".into()),
            ..Target::default()
        };
        let stack = Stack::discover_for(&target, &env_of(&[]), &root).unwrap();
        assert_eq!(stack.table, "local-state");
        assert_eq!(stack.region.as_deref(), Some("eu-west-1"));
        assert!(!stack.is_aws());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn local_endpoints_are_recognised() {
        for url in [
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "http://[::1]:4566",
            "http://host.docker.internal:4566",
        ] {
            assert!(is_local_endpoint(url), "{url}");
        }
        for url in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "https://localhost.example.com",
        ] {
            assert!(!is_local_endpoint(url), "{url}");
        }
    }
}
