//! The `stockguard` operations CLI (contract sections 4 and 5). Every command is a plain async function
//! that takes the stack's connection (state store, queues, bus) and writes its report to a
//! `&mut impl Write`, as text or as JSON, so tests run the same code as the binary and read what
//! it printed.

pub mod audit;
pub mod buffers;
pub mod channels;
pub mod compensation;
pub mod dlq;
pub mod errors;
pub mod listings;
pub mod position;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod stack;
mod table;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use stockguard_adapters::StateStore;
use stockguard_domain::buffer::BufferMode;
use stockguard_domain::channel::ChannelKind;
use stockguard_domain::{ChannelName, Sku};

pub use stack::{Stack, Target};

const STACK_HELP: &str = "\
Which stack, first that applies:
  1. --stack-name NAME: the outputs of that CloudFormation stack (DescribeStacks) name the state
     table, the event bus, the dead-letter queues and the archive.
  2. STOCKGUARD_TABLE (with STOCKGUARD_BUS, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB and
     AWS_REGION) from the environment.
  3. Without --profile: .local/stack.json (written by `make local-up`) in the current directory
     or one of its parents.
Credentials and region: --profile (an SSO, credential_process, role or key profile of
~/.aws/config) else AWS_PROFILE or the SDK's default chain; --region else AWS_REGION, the
profile's region, or the stack file's. AWS_ENDPOINT_URL points the clients at an emulator.
--json prints one JSON document on stdout with what the text would show; errors stay one line on
stderr, and the exit status is non-zero.

Examples:
  stockguard --profile prod --region eu-west-1 --stack-name stockguard channels list
  stockguard dlq list --json --stack-name stockguard";

#[derive(Debug, Parser)]
#[command(
    name = "stockguard",
    version,
    about = "Operate a stockguard stack: channel settings and buffers, listing mappings, inventory \
             positions and dead-letter queues.",
    after_help = STACK_HELP
)]
pub struct Cli {
    /// Print one JSON document on stdout instead of tables and sentences.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or change the sales channels and their buffers.
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// Map SKUs to channel listings.
    #[command(subcommand)]
    Listings(ListingsCommand),
    /// Show a SKU's inventory position and what each enabled channel should show.
    Position(PositionArgs),
    /// Explain the buffers that channels hold back.
    #[command(subcommand)]
    Buffers(BuffersCommand),
    /// Show or change what stockguard does about an oversell.
    #[command(subcommand)]
    Compensation(CompensationCommand),
    /// Inspect the dead-letter queues and move their messages back.
    Dlq(DlqArgs),
    /// Run one channel reconciliation now: compare what every channel shows with what it should,
    /// repair the differences, and print the drift table.
    Reconcile,
    /// Replay the archived inbound events of a time window onto the stack's bus and follow the
    /// replay until it ends. Events already applied change nothing.
    #[command(after_help = replay::REPLAY_HELP)]
    Replay(replay::ReplayArgs),
    /// Replay your own order history under 15-minute batch sync with a 10% buffer, event-driven
    /// sync with the same buffer, and event-driven sync with dynamic buffers: oversells, lost
    /// sales and stock held back by each. Needs no stack.
    #[command(after_help = audit::AUDIT_HELP)]
    Audit(audit::AuditArgs),
    /// Write a realistic order history (ORDERS.csv, STOCK.csv, RESTOCKS.csv) to try the audit
    /// on without data of your own. Needs no stack.
    Simulate(audit::SimulateArgs),
}

impl Command {
    /// Runs a command that works on local files only; `None` for those that need a stack.
    pub fn run_offline(&self, out: &mut impl Write, terminal: Terminal) -> Option<Result<()>> {
        match self {
            Command::Audit(args) => Some(audit::audit(args, out, terminal)),
            Command::Simulate(args) => Some(audit::simulate(args, out, terminal)),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// List every configured channel.
    List,
    /// Create or update a channel, or with --sku set a per-SKU buffer override.
    #[command(after_help = "\
A new channel needs --kind and --endpoint. Options not given keep their stored values.

Buffers: a channel's buffer mode is dynamic (the default: sized from sales elsewhere and the
channel's delay, within --min-buffer and --max-buffer) or static (--buffer-units plus
--buffer-percent). Giving --buffer-units or --buffer-percent without --buffer-mode switches the
channel to static; --buffer-mode dynamic switches it back. A --sku override is a static buffer: it
applies while the channel is in static mode.

Examples:
  stockguard channels set shopify --kind shopify --endpoint https://shop.myshopify.com \\
      --credentials stockguard/channels/shopify
  stockguard channels set amazon --buffer-mode dynamic --risk-target 0.01 --min-buffer 1 \\
      --max-buffer 20 --low-stock-units 5
  stockguard channels set walmart --buffer-units 2 --buffer-percent 10     (static)
  stockguard channels set amazon --enabled false
  stockguard channels set ebay --sku TEE-RED-M --buffer-units 5")]
    Set(Box<SetChannel>),
}

#[derive(Debug, Args)]
pub struct SetChannel {
    /// The channel's name, e.g. shopify (lowercase letters, digits, '-' and '_').
    #[arg(value_parser = parse_channel_name)]
    pub name: ChannelName,
    /// Which adapter serves the channel.
    #[arg(long, value_parser = PossibleValuesParser::new(ChannelKind::names())
        .try_map(|name| name.parse::<ChannelKind>()))]
    pub kind: Option<ChannelKind>,
    /// Whether stockguard pushes quantities to the channel.
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
    /// Base URL of the channel's API.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    pub endpoint: Option<String>,
    /// Name of the Secrets Manager secret holding the channel's credentials (never the values).
    #[arg(long, value_name = "SECRET_NAME", value_parser = parse_non_empty)]
    pub credentials: Option<String>,
    /// How the channel's buffer is set: dynamic (from sales elsewhere and the channel's delay) or
    /// static (--buffer-units and --buffer-percent).
    #[arg(long, value_name = "dynamic|static", value_parser = parse_buffer_mode)]
    pub buffer_mode: Option<BufferMode>,
    /// Static mode: units always held back from the channel. Without --buffer-mode, switches the
    /// channel to static mode.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub buffer_units: Option<i64>,
    /// Static mode: percentage of available units held back (0 to 100; rounded up to whole
    /// units). Without --buffer-mode, switches the channel to static mode.
    #[arg(long, value_name = "P", value_parser = parse_percent)]
    pub buffer_percent: Option<f64>,
    /// Dynamic mode: the accepted probability that the channel sells a unit that is gone while a
    /// change is on its way to it (between 0 and 1; default 0.01).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub risk_target: Option<f64>,
    /// Dynamic mode: hold back at least N units (default 0).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_buffer: Option<i64>,
    /// Dynamic mode: hold back at most N units.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_buffer: Option<i64>,
    /// Dynamic mode: remove the channel's --max-buffer.
    #[arg(long, conflicts_with = "max_buffer")]
    pub no_max_buffer: bool,
    /// Dynamic mode: at N available units or fewer, the channel shows 0 if it is slow (its delay
    /// is above --low-stock-max-delay-ms); 0 turns the rule off (the default).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub low_stock_units: Option<i64>,
    /// Dynamic mode: a channel is slow for the low-stock rule when its delay is above MS
    /// milliseconds (default 60000).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub low_stock_max_delay_ms: Option<i64>,
    /// Never show the channel more than N units.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub maximum: Option<i64>,
    /// Remove the channel's maximum.
    #[arg(long, conflicts_with = "maximum")]
    pub no_maximum: bool,
    /// Amazon seller id.
    #[arg(long, value_name = "ID", value_parser = parse_non_empty)]
    pub seller_id: Option<String>,
    /// Marketplace id: Amazon's (required there, e.g. ATVPDKIKX0DER), or eBay's (EBAY_GB, ...;
    /// EBAY_US when unset), which eBay's cancellation names.
    #[arg(long, value_name = "ID", value_parser = parse_non_empty)]
    pub marketplace_id: Option<String>,
    /// Set the buffer of this SKU on the channel (with --buffer-units/--buffer-percent only).
    #[arg(
        long,
        value_name = "SKU",
        value_parser = parse_sku,
        conflicts_with_all = [
            "kind", "enabled", "endpoint", "credentials", "maximum", "no_maximum",
            "seller_id", "marketplace_id", "buffer_mode", "risk_target", "min_buffer",
            "max_buffer", "no_max_buffer", "low_stock_units", "low_stock_max_delay_ms",
        ]
    )]
    pub sku: Option<Sku>,
}

#[derive(Debug, Subcommand)]
pub enum CompensationCommand {
    /// The stored policy (the defaults until one is set).
    Show,
    /// Change the policy.
    #[command(after_help = compensation::SET_HELP)]
    Set(compensation::SetCompensation),
}

#[derive(Debug, Subcommand)]
pub enum BuffersCommand {
    /// Every enabled channel's buffer for a SKU, each factor it is made of, and which one set it.
    #[command(after_help = buffers::EXPLAIN_HELP)]
    Explain(ExplainBuffers),
}

#[derive(Debug, Args)]
pub struct ExplainBuffers {
    /// The SKU to explain.
    #[arg(value_parser = parse_sku)]
    pub sku: Sku,
}

#[derive(Debug, Subcommand)]
pub enum ListingsCommand {
    /// Import listing mappings from a CSV file, all or nothing.
    #[command(after_help = "\
The file has a header row: channel,sku,listing_id,location_id,offer_id,product_type
location_id is required for shopify, offer_id for ebay, product_type for amazon; leave unused
cells empty. Every row is checked before anything is stored; any rejected row rejects the file.")]
    Import(ImportListings),
}

#[derive(Debug, Args)]
pub struct ImportListings {
    /// The CSV file to import.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PositionArgs {
    /// The SKU to show.
    #[arg(value_parser = parse_sku)]
    pub sku: Sku,
}

#[derive(Debug, Args)]
#[command(after_help = dlq::FINDING_QUEUES_HELP)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    /// The stack's queue names start with PREFIX (default: the state table's name without its
    /// `StateTable` logical id).
    #[arg(
        long,
        global = true,
        value_name = "PREFIX",
        env = "STOCKGUARD_QUEUE_PREFIX"
    )]
    pub queue_prefix: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Each dead-letter queue's depth and its first messages with the reason they failed.
    List,
    /// Move every message of a dead-letter queue back to the queue it came from.
    #[command(after_help = dlq::REDRIVE_HELP)]
    Redrive(RedriveArgs),
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The dead-letter queue: its full name or its logical id, e.g. StockReceivedDLQ.
    #[arg(value_parser = parse_non_empty)]
    pub queue: String,
    /// Send the messages to this queue (full name or logical id) instead of the queue whose
    /// redrive policy names the dead-letter queue.
    #[arg(long, value_name = "QUEUE", value_parser = parse_non_empty)]
    pub to: Option<String>,
}

/// What the commands talk to: the stack's state store, its queues and its bus.
#[derive(Clone)]
pub struct Connection {
    pub store: StateStore,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// The state table's name, from which the queue names are derived.
    pub table: String,
    /// The event bus, where reconciliation publishes `DriftDetected`.
    pub bus: Option<String>,
    pub config: aws_config::SdkConfig,
    /// The stack, with what its outputs name (dead-letter queues, archive).
    pub stack: Stack,
}

impl Connection {
    /// The stack's event bus, or what to do to name it.
    pub fn event_bus(&self) -> Result<&str> {
        match self.bus.as_deref() {
            Some(bus) => Ok(bus),
            None => self.stack.bus(),
        }
    }
}

/// How the report is written, not what the command does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal {
    /// Draw progress bars: on stdout for text, on stderr with `--json` (the binary sets it when
    /// that stream is a terminal).
    pub progress: bool,
    /// One JSON document instead of text (`--json`).
    pub json: bool,
}

impl Terminal {
    /// Where progress bars are drawn: never on the stdout of a JSON report.
    pub fn progress_target(&self) -> indicatif::ProgressDrawTarget {
        match (self.progress, self.json) {
            (false, _) => indicatif::ProgressDrawTarget::hidden(),
            (true, false) => indicatif::ProgressDrawTarget::stdout(),
            (true, true) => indicatif::ProgressDrawTarget::stderr(),
        }
    }
}

/// Runs one command against the stack of `connection`, writing its report to `out`.
pub async fn run(
    connection: &Connection,
    command: &Command,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let store = &connection.store;
    match command {
        Command::Channels(ChannelsCommand::List) => channels::list(store, out, terminal).await,
        Command::Channels(ChannelsCommand::Set(args)) => {
            channels::set(store, args, out, terminal).await
        }
        Command::Listings(ListingsCommand::Import(args)) => {
            listings::import(store, &args.file, out, terminal).await
        }
        Command::Position(args) => position::show(store, &args.sku, out, terminal).await,
        Command::Buffers(BuffersCommand::Explain(args)) => {
            buffers::explain(connection, &args.sku, out, terminal).await
        }
        Command::Compensation(CompensationCommand::Show) => {
            compensation::show(store, out, terminal).await
        }
        Command::Compensation(CompensationCommand::Set(args)) => {
            compensation::set(store, args, out, terminal).await
        }
        Command::Dlq(args) => {
            let prefix = args.queue_prefix.as_deref();
            match &args.command {
                DlqCommand::List => dlq::list(connection, prefix, out, terminal).await,
                DlqCommand::Redrive(redrive) => {
                    dlq::redrive(connection, prefix, redrive, out, terminal).await
                }
            }
        }
        Command::Reconcile => reconcile::run(connection, out, terminal).await,
        Command::Replay(args) => replay::run(connection, args, out, terminal).await,
        Command::Audit(args) => audit::audit(args, out, terminal),
        Command::Simulate(args) => audit::simulate(args, out, terminal),
    }
}

/// The state store, queues and bus of `stack`, from one AWS configuration.
pub async fn connect(stack: &Stack) -> Result<Connection> {
    let config = stack.aws_config().await?;
    Ok(connect_with(stack, config))
}

/// [`connect`] with the configuration already loaded ([`Stack::locate`]'s).
pub fn connect_with(stack: &Stack, config: aws_config::SdkConfig) -> Connection {
    Connection {
        store: StateStore::new(aws_sdk_dynamodb::Client::new(&config), stack.table.clone()),
        sqs: aws_sdk_sqs::Client::new(&config),
        events: aws_sdk_eventbridge::Client::new(&config),
        table: stack.table.clone(),
        bus: stack.event_bus.clone(),
        config,
        stack: stack.clone(),
    }
}

fn parse_channel_name(raw: &str) -> Result<ChannelName, String> {
    ChannelName::parse(raw)
}

fn parse_sku(raw: &str) -> Result<Sku, String> {
    Sku::parse(raw)
}

fn parse_buffer_mode(raw: &str) -> Result<BufferMode, String> {
    BufferMode::parse(raw)
}

fn parse_percent(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{raw:?} is not a percentage from 0 to 100")),
    }
}

fn parse_endpoint(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(format!("{raw:?} is not an http(s) URL")),
    }
}

fn parse_non_empty(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn set_options_are_validated() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["stockguard", "channels", "set"].iter().chain(args))
                .map_err(|e| e.to_string())
        };
        assert!(parse(&["shopify", "--kind", "shopify"]).is_ok());
        assert!(parse(&["shopify", "--kind", "etsy"]).is_err());
        assert!(parse(&["Shop Name"]).is_err());
        assert!(parse(&["shopify", "--buffer-percent", "101"]).is_err());
        assert!(parse(&["shopify", "--buffer-percent", "NaN"]).is_err());
        assert!(parse(&["shopify", "--buffer-units", "-1"]).is_err());
        assert!(parse(&["shopify", "--maximum", "5", "--no-maximum"]).is_err());
        assert!(parse(&["shopify", "--enabled", "yes"]).is_err());
        assert!(parse(&["shopify", "--endpoint", "ftp://x"]).is_err());
        assert!(parse(&["shopify", "--sku", "TEE-1", "--buffer-units", "3"]).is_ok());
        assert!(parse(&["shopify", "--sku", "TEE-1", "--enabled", "false"]).is_err());
        assert!(parse(&["shopify", "--sku", "TEE-1", "--min-buffer", "2"]).is_err());
        assert!(parse(&["shopify", "--sku", "TEE-1", "--buffer-mode", "static"]).is_err());
        assert!(parse(&["shopify", "--buffer-mode", "dynamic"]).is_ok());
        assert!(parse(&["shopify", "--buffer-mode", "static"]).is_ok());
        let err = parse(&["shopify", "--buffer-mode", "auto"]).unwrap_err();
        assert!(err.contains("not one of: static, dynamic"), "{err}");
        assert!(parse(&["shopify", "--risk-target", "often"]).is_err());
        assert!(parse(&["shopify", "--max-buffer", "5", "--no-max-buffer"]).is_err());
        // Out-of-range numbers reach DynamicPolicy::validate, which names the rule.
        assert!(parse(&["shopify", "--min-buffer", "-1"]).is_ok());
        assert!(parse(&["shopify", "--risk-target", "-0.5"]).is_ok());
    }

    #[test]
    fn the_queue_prefix_is_accepted_before_or_after_the_dlq_command() {
        let prefix = |args: &[&str]| {
            let cli = Cli::try_parse_from(["stockguard", "dlq"].iter().chain(args)).unwrap();
            let Command::Dlq(dlq) = cli.command else {
                panic!("not a dlq command")
            };
            dlq.queue_prefix
        };
        assert_eq!(
            prefix(&["--queue-prefix", "sg-", "list"]).as_deref(),
            Some("sg-")
        );
        assert_eq!(
            prefix(&["redrive", "StockReceivedDLQ", "--queue-prefix", "sg-"]).as_deref(),
            Some("sg-")
        );
        assert!(Cli::try_parse_from(["stockguard", "dlq", "redrive"]).is_err());
    }

    #[test]
    fn the_stack_and_output_options_go_before_or_after_the_command() {
        for args in [
            &[
                "--json",
                "--profile",
                "ops",
                "--region",
                "eu-west-1",
                "--stack-name",
                "sg",
                "channels",
                "list",
            ][..],
            &[
                "channels",
                "list",
                "--stack-name",
                "sg",
                "--region",
                "eu-west-1",
                "--profile",
                "ops",
                "--json",
            ],
        ] {
            let cli =
                Cli::try_parse_from(std::iter::once("stockguard").chain(args.iter().copied()))
                    .unwrap();
            assert!(cli.json);
            assert_eq!(
                cli.target,
                Target {
                    profile: Some("ops".into()),
                    region: Some("eu-west-1".into()),
                    stack_name: Some("sg".into()),
                }
            );
        }
        assert!(Cli::try_parse_from(["stockguard", "--stack-name", "", "reconcile"]).is_err());
    }

    #[test]
    fn the_help_states_the_order_in_which_the_stack_is_found() {
        let help = Cli::command().render_long_help().to_string();
        let order = [
            "1. --stack-name",
            "2. STOCKGUARD_TABLE",
            "3. Without --profile",
        ];
        let at: Vec<usize> = order.iter().map(|s| help.find(s).expect(s)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{help}");
        assert!(replay::REPLAY_HELP.contains(&format!(
            "remembers them for {} days",
            stockguard_adapters::tx::RETENTION_DAYS
        )));
    }
}
