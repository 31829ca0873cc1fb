//! Cold-start init time of a function's real bootstrap: the process is started against a local
//! stand-in for the Lambda Runtime API, and the time from spawning it to its first
//! `GET /2018-06-01/runtime/invocation/next` is what Lambda reports as Init Duration (reading the
//! environment, loading the AWS config, building clients). The stand-in never answers, so no
//! handler runs and nothing is called in AWS.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const NEXT_INVOCATION: &[u8] = b"GET /2018-06-01/runtime/invocation/next";

/// Starts `bootstrap` with `env` (plus the variables Lambda sets) and returns how long it took to
/// ask for its first invocation.
pub async fn init_time(
    bootstrap: &Path,
    function_name: &str,
    memory_mb: u32,
    env: &BTreeMap<String, String>,
) -> Result<Duration> {
    let api = TcpListener::bind("127.0.0.1:0").await?;
    let addr = api.local_addr()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    let asked = tokio::time::timeout(Duration::from_secs(10), async {
        let (mut conn, _) = api.accept().await?;
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request
            .windows(NEXT_INVOCATION.len())
            .any(|w| w == NEXT_INVOCATION)
        {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                bail!("the runtime closed its connection before asking for an invocation");
            }
            request.extend_from_slice(&buf[..n]);
        }
        anyhow::Ok(started.elapsed())
    })
    .await;
    let _ = child.start_kill();
    match asked {
        Ok(result) => result,
        Err(_) => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), e.read_to_string(&mut stderr))
                    .await;
            }
            bail!(
                "{function_name} did not ask for an invocation within 10 s: {}",
                stderr.trim()
            )
        }
    }
}
