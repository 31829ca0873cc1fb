use stockguard_adapters::{AwsClients, DeadLetters, EventPublisher, StateStore, load_aws_config};
use stockguard_domain::Millis;
use stockguard_domain::decayed::Horizons;

/// What every function needs, built once per cold start.
#[derive(Clone)]
pub struct Deps {
    pub store: StateStore,
    pub publisher: EventPublisher,
    /// Where permanent failures go with their reason; `None` only for the HTTP API.
    pub dead_letters: Option<DeadLetters>,
    pub settings: Settings,
    /// The clients the above are built on, for what else the function calls (Secrets Manager).
    pub clients: AwsClients,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Deliveries of one message before a retryable failure is dead-lettered. Matches the queue's
    /// `maxReceiveCount`, so the function dead-letters it with a reason just before SQS would
    /// without one.
    pub retry_budget: u32,
    /// Divides the sales-rate horizons (15 minutes, 24 hours) where a demo or a test compresses
    /// time; 1 in a deployment.
    pub rate_horizon_compression: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_budget: 5,
            rate_horizon_compression: 1.0,
        }
    }
}

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is required"))
}

impl Deps {
    /// Builds the dependencies from the environment: `STOCKGUARD_TABLE`, `STOCKGUARD_BUS`,
    /// optional `STOCKGUARD_DLQ_URL` and `STOCKGUARD_RETRY_BUDGET`. Fails fast on a missing one.
    pub async fn from_env() -> Result<Self, String> {
        let table = required("STOCKGUARD_TABLE")?;
        let bus = required("STOCKGUARD_BUS")?;
        let dlq = std::env::var("STOCKGUARD_DLQ_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let mut settings = Settings::default();
        if let Ok(b) = std::env::var("STOCKGUARD_RETRY_BUDGET") {
            settings.retry_budget = b
                .parse()
                .map_err(|_| format!("STOCKGUARD_RETRY_BUDGET is not a number: {b}"))?;
        }
        let config = load_aws_config().await;
        Ok(Self::new(&config, &table, &bus, dlq.as_deref(), settings))
    }

    pub fn new(
        config: &aws_config::SdkConfig,
        table: &str,
        bus: &str,
        dlq_url: Option<&str>,
        settings: Settings,
    ) -> Self {
        Self::from_clients(AwsClients::new(config), table, bus, dlq_url, settings)
    }

    pub fn from_clients(
        clients: AwsClients,
        table: &str,
        bus: &str,
        dlq_url: Option<&str>,
        settings: Settings,
    ) -> Self {
        Self {
            store: StateStore::new(clients.dynamodb.clone(), table)
                .with_horizons(Horizons::compressed(settings.rate_horizon_compression)),
            publisher: EventPublisher::new(clients.eventbridge.clone(), bus),
            dead_letters: dlq_url.map(|u| DeadLetters::new(clients.sqs.clone(), u)),
            settings,
            clients,
        }
    }

    /// The same dependencies with another dead-letter queue (one per function).
    pub fn with_dead_letters(&self, dlq_url: &str) -> Self {
        let mut d = self.clone();
        d.dead_letters = Some(DeadLetters::new(self.clients.sqs.clone(), dlq_url));
        d
    }
}

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
