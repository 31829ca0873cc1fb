//! Which stockguard stack the CLI talks to (contract section 4): the environment
//! (`STOCKGUARD_TABLE`, `STOCKGUARD_BUS`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_REGION`) or, when
//! `STOCKGUARD_TABLE` is unset, the `.local/stack.json` that `make local-up` writes, looked up from
//! the current directory through its ancestors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use serde::Deserialize;

/// Where a local stack describes itself, relative to the project root.
pub const STACK_FILE: &str = ".local/stack.json";

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
    pub api_url: Option<String>,
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
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {}", self.table)?;
        if let Some(url) = &self.endpoint_url {
            write!(f, " at {url}")?;
        }
        if let Some(url) = &self.dynamodb_endpoint_url {
            write!(f, " (DynamoDB at {url})")?;
        }
        if let Some(region) = &self.region {
            write!(f, " in {region}")?;
        }
        match &self.origin {
            Origin::Environment => write!(f, ", from STOCKGUARD_TABLE"),
            Origin::File(path) => write!(f, ", from {}", path.display()),
            Origin::Explicit => Ok(()),
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
            api_url: None,
            test_credentials,
            origin: Origin::Explicit,
        }
    }

    /// Finds the stack from the process environment and the current directory.
    pub fn discover() -> Result<Self> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        Self::discover_from(&process_env, &cwd)
    }

    /// Finds the stack from `env` (a variable lookup) and `cwd`.
    pub fn discover_from(env: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Result<Self> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(table) = var("STOCKGUARD_TABLE") {
            let endpoint_url = var("AWS_ENDPOINT_URL");
            return Ok(Self {
                table,
                event_bus: var("STOCKGUARD_BUS"),
                test_credentials: wants_test_credentials(endpoint_url.as_deref(), env),
                endpoint_url,
                dynamodb_endpoint_url: var("AWS_ENDPOINT_URL_DYNAMODB"),
                region: var("AWS_REGION"),
                api_url: None,
                origin: Origin::Environment,
            });
        }
        let Some(path) = find_stack_file(cwd) else {
            bail!(
                "no stockguard stack found: STOCKGUARD_TABLE is not set and there is no {STACK_FILE} \
                 in {} or its parents.\n\
                 Start a local stack with `make local-up` (from the project root), or point at a \
                 deployed one with STOCKGUARD_TABLE, STOCKGUARD_BUS and AWS_REGION (and \
                 AWS_ENDPOINT_URL for an emulator).",
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
            api_url: file.api_url,
            origin: Origin::File(path),
        })
    }

    /// The AWS configuration for this stack, loaded once per run.
    pub async fn aws_config(&self) -> Result<aws_config::SdkConfig> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if self.test_credentials {
            loader = loader.credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "stockguard-local-emulator",
            ));
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            bail!("no AWS region for {self}: set AWS_REGION");
        }
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
