//! `stockguard replay --from T --to T [--archive NAME]`: starts an EventBridge replay of the
//! stack's archive of inbound events onto the bus they were archived from, and follows it until it
//! ends. The functions apply an event_id once, so events that were already applied change nothing.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stockguard_adapters::tx::RETENTION_DAYS;
use stockguard_domain::Millis;
use stockguard_domain::types::{format_timestamp, parse_timestamp};
use stockguard_handlers::deps::now_ms;

use crate::errors::aws_error;
use crate::report::{Report, emit};
use crate::stack::outputs;
use crate::{Connection, Terminal};

pub const REPLAY_HELP: &str = "\
The archive is --archive (a name or an ARN), else the stack's InboundArchiveArn output
(--stack-name), else the only archive of the stack's bus. The replay sends the archived events of
the window back to that bus, whose rules deliver them to the functions' queues as before.

Replayed events are applied once: every function records each event_id it applies and skips one it
has applied before (the state table remembers them for 30 days). Events of the window that were
applied change nothing; those that were not (dead-lettered and discarded, or lost before
delivery) are applied now. A window that starts more than 30 days ago is refused without
--allow-reapply, as events that old would be applied a second time.

Without --rule the replay reaches every rule of the bus that matches an event, consumers' own
included; --rule limits it to the rules named (`aws events list-rules --event-bus-name BUS` lists
them).

The replay goes on in EventBridge if the command is interrupted: `aws events describe-replay
--replay-name NAME` follows it and `aws events cancel-replay --replay-name NAME` stops it.
Examples:
  stockguard replay --from 2025-05-01T09:00:00Z --to 2025-05-01T11:30:00Z
  stockguard replay --from 2025-05-01T09:00:00+02:00 --to now --archive stockguard-inbound";

/// How often the replay's state is read.
pub const POLL: Duration = Duration::from_secs(2);
const DAY_MS: Millis = 24 * 60 * 60 * 1000;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Replay the events that occurred from TIME on (RFC 3339, e.g. 2025-05-01T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Millis,
    /// ... up to TIME (RFC 3339, or `now`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Millis,
    /// The archive to replay: its name or ARN (default: the stack's InboundArchiveArn output, or
    /// the only archive of the stack's bus).
    #[arg(long, value_name = "NAME|ARN", value_parser = parse_archive)]
    pub archive: Option<String>,
    /// Replay a window that starts before the 30 days in which the functions remember applied
    /// event_ids: events that old that were applied are applied again.
    #[arg(long)]
    pub allow_reapply: bool,
    /// Replay to this rule of the bus only (its name or ARN; repeat for more), e.g. the stack's
    /// StockReceivedRule. Without it the events go to every rule of the bus that matches them.
    #[arg(long = "rule", value_name = "NAME|ARN", value_parser = parse_rule)]
    pub rules: Vec<String>,
}

fn parse_rule(raw: &str) -> Result<String, String> {
    let rule = raw.trim();
    if rule.is_empty() || rule.contains(char::is_whitespace) {
        Err(format!("{raw:?} is not a rule name or ARN"))
    } else {
        Ok(rule.to_owned())
    }
}

fn parse_time(raw: &str) -> Result<Millis, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("now") {
        return Ok(now_ms());
    }
    parse_timestamp(raw).ok_or_else(|| {
        format!("{raw:?} is not a time: give RFC 3339 (2025-05-01T09:00:00Z) or `now`")
    })
}

fn parse_archive(raw: &str) -> Result<String, String> {
    let name = archive_name(raw);
    let valid = !name.is_empty()
        && name.len() <= 48
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{raw:?} is not an archive name (up to 48 letters, digits, '.', '-', '_') or ARN"
        ))
    }
}

/// An archive's name from its name or its ARN (`arn:aws:events:REGION:ACCOUNT:archive/NAME`).
pub fn archive_name(name_or_arn: &str) -> &str {
    let raw = name_or_arn.trim();
    if raw.starts_with("arn:") {
        raw.rsplit_once(":archive/").map_or(raw, |(_, name)| name)
    } else {
        raw
    }
}

/// The problems with a window, before anything is asked of AWS.
pub fn check_window(from: Millis, to: Millis, now: Millis, allow_reapply: bool) -> Result<()> {
    if from >= to {
        bail!(
            "--from {} is not before --to {}",
            format_timestamp(from),
            format_timestamp(to)
        );
    }
    if to > now {
        bail!(
            "--to {} is in the future; the archive holds events up to now: use --to now",
            format_timestamp(to)
        );
    }
    let remembered_from = now - RETENTION_DAYS * DAY_MS;
    if from < remembered_from && !allow_reapply {
        bail!(
            "--from {} is more than {RETENTION_DAYS} days ago: the functions remember applied \
             event_ids for {RETENTION_DAYS} days, so events before {} that were applied would be \
             applied again; start at {} or later, or pass --allow-reapply",
            format_timestamp(from),
            format_timestamp(remembered_from),
            format_timestamp(remembered_from)
        );
    }
    Ok(())
}

/// `replay`: the replay as EventBridge last described it.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub replay: String,
    pub replay_arn: Option<String>,
    pub archive: String,
    pub archive_arn: Option<String>,
    /// The bus the events are replayed onto: the one they were archived from.
    pub bus_arn: String,
    /// The rules the replay is limited to; empty: every rule of the bus.
    pub rules: Vec<String>,
    pub from: String,
    pub to: String,
    /// COMPLETED, FAILED or CANCELLED (or STARTING, RUNNING, CANCELLING when not followed to the
    /// end).
    pub state: String,
    pub state_reason: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// When the last replayed event occurred.
    pub last_replayed: Option<String>,
    /// How replayed events are applied.
    pub applied_once: String,
    /// Anything about this window.
    pub notes: Vec<String>,
}

impl Report for ReplayReport {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "Replay {}: {}", self.replay, self.state)?;
        let dash = || "-".to_owned();
        let fields = [
            ("archive", self.archive.clone()),
            ("onto bus", self.bus_arn.clone()),
            (
                "rules",
                if self.rules.is_empty() {
                    "every rule of the bus".to_owned()
                } else {
                    self.rules.join(", ")
                },
            ),
            ("events from", self.from.clone()),
            ("events to", self.to.clone()),
            ("started", self.started_at.clone().unwrap_or_else(dash)),
            ("ended", self.ended_at.clone().unwrap_or_else(dash)),
            (
                "last replayed",
                self.last_replayed.clone().unwrap_or_else(dash),
            ),
        ];
        for (label, value) in fields {
            writeln!(out, "  {label:<14} {value}")?;
        }
        if let Some(reason) = &self.state_reason {
            writeln!(out, "  {:<14} {reason}", "reason")?;
        }
        writeln!(out, "{}", self.applied_once)?;
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        Ok(())
    }
}

/// The archive `args` or the stack names, or else the only archive of the stack's bus.
async fn choose_archive(connection: &Connection, args: &ReplayArgs) -> Result<String> {
    if let Some(archive) = &args.archive {
        return Ok(archive.clone());
    }
    if let Some(archive) = &connection.stack.archive {
        return Ok(archive_name(archive).to_owned());
    }
    let bus = connection
        .event_bus()
        .map_err(|e| anyhow!("{e:#}; or name the archive to replay with --archive NAME"))?;
    let bus_arn = bus_arn(connection, bus).await?;
    let archives = connection
        .events
        .list_archives()
        .event_source_arn(&bus_arn)
        .send()
        .await
        .map_err(aws_error("EventBridge ListArchives"))?;
    let names: Vec<&str> = archives
        .archives()
        .iter()
        .filter_map(|a| a.archive_name())
        .collect();
    match names.as_slice() {
        [name] => Ok((*name).to_owned()),
        [] => bail!(
            "the stack's bus {bus} has no archive to replay from (the stack's {} output names \
             it when deployed from template.yaml); name one with --archive NAME",
            outputs::ARCHIVE[0]
        ),
        _ => bail!(
            "the stack's bus {bus} has {} archives ({}); choose one with --archive NAME",
            names.len(),
            names.join(", ")
        ),
    }
}

async fn bus_arn(connection: &Connection, bus: &str) -> Result<String> {
    if bus.starts_with("arn:") {
        return Ok(bus.to_owned());
    }
    connection
        .events
        .describe_event_bus()
        .name(bus)
        .send()
        .await
        .map_err(aws_error("EventBridge DescribeEventBus"))?
        .arn
        .ok_or_else(|| anyhow!("EventBridge did not say the ARN of bus {bus}"))
}

/// The ARN of `rule` (a name or an ARN) of the bus `bus_arn`.
async fn rule_arn(connection: &Connection, bus_arn: &str, rule: &str) -> Result<String> {
    if rule.starts_with("arn:") {
        return Ok(rule.to_owned());
    }
    let described = connection
        .events
        .describe_rule()
        .name(rule)
        .event_bus_name(bus_arn)
        .send()
        .await;
    match described {
        Ok(described) => described
            .arn
            .ok_or_else(|| anyhow!("EventBridge did not say the ARN of rule {rule}")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            bail!(
                "bus {bus_arn} has no rule {rule}: `aws events list-rules --event-bus-name \
                 {bus_arn}` lists them"
            )
        }
        Err(e) => Err(aws_error("EventBridge DescribeRule")(e).into()),
    }
}

fn time_text(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.to_millis().ok()).map(format_timestamp)
}

/// A name EventBridge accepts and no other replay has: `stockguard-<start ms>-<pid>`.
fn replay_name(now: Millis) -> String {
    format!("stockguard-{now}-{}", std::process::id())
}

/// Starts the replay, follows it with a progress bar until it ends, and reports it. A replay
/// that failed or was cancelled is reported and is an error.
pub async fn run(
    connection: &Connection,
    args: &ReplayArgs,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let now = now_ms();
    check_window(args.from, args.to, now, args.allow_reapply)?;
    let events = &connection.events;
    let archive = choose_archive(connection, args).await?;
    let described = events
        .describe_archive()
        .archive_name(&archive)
        .send()
        .await
        .map_err(|e| {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            if missing {
                anyhow!(
                    "there is no archive {archive}: check --archive, or the stack's {} output",
                    outputs::ARCHIVE[0]
                )
            } else {
                aws_error("EventBridge DescribeArchive")(e).into()
            }
        })?;
    let Some(source_arn) = described.event_source_arn().map(str::to_owned) else {
        bail!("EventBridge did not say which bus archive {archive} archives");
    };
    if let Some(bus) = &connection.bus {
        let stack_bus = bus_arn(connection, bus).await?;
        if stack_bus != source_arn {
            bail!(
                "archive {archive} holds the events of bus {source_arn}, not of the stack's bus \
                 {stack_bus}, and a replay goes back to the bus its events were archived from; \
                 choose the stack's archive"
            );
        }
    }
    let applied_once = format!(
        "Replayed events are applied once: each function skips an event_id it has applied (the \
         state table remembers them for {RETENTION_DAYS} days), so the events of the window that \
         were applied change nothing and those that were not are applied now."
    );
    let mut notes = Vec::new();
    if let Some(created) = described.creation_time().and_then(|t| t.to_millis().ok())
        && args.from < created
    {
        notes.push(format!(
            "archive {archive} was created at {}; nothing before that is in it",
            format_timestamp(created)
        ));
    }
    if let Some(days) = described.retention_days().filter(|d| *d > 0)
        && args.from < now - i64::from(days) * DAY_MS
    {
        notes.push(format!(
            "archive {archive} keeps events {days} days; those before {} are gone",
            format_timestamp(now - i64::from(days) * DAY_MS)
        ));
    }

    let mut destination = ReplayDestination::builder().arn(&source_arn);
    for rule in &args.rules {
        destination = destination.filter_arns(rule_arn(connection, &source_arn, rule).await?);
    }
    let name = replay_name(now);
    let started = events
        .start_replay()
        .replay_name(&name)
        .description(format!(
            "stockguard replay of {archive} from {} to {}",
            format_timestamp(args.from),
            format_timestamp(args.to)
        ))
        .event_source_arn(described.archive_arn().unwrap_or_default())
        .event_start_time(DateTime::from_millis(args.from))
        .event_end_time(DateTime::from_millis(args.to))
        .destination(destination.build()?)
        .send()
        .await
        .map_err(aws_error("EventBridge StartReplay"))?;

    let window_s = ((args.to - args.from) / 1000).max(1) as u64;
    let bar = ProgressBar::with_draw_target(Some(window_s), terminal.progress_target());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {percent:>3}% of the window replayed ({msg})")
    {
        bar.set_style(style);
    }
    let state_of = |s: Option<&ReplayState>| {
        s.map_or_else(|| "STARTING".to_owned(), |s| s.as_str().to_owned())
    };
    bar.set_message(format!("replay {name}, {}", state_of(started.state())));
    let replay = loop {
        let replay = events
            .describe_replay()
            .replay_name(&name)
            .send()
            .await
            .map_err(aws_error("EventBridge DescribeReplay"));
        let replay = match replay {
            Ok(replay) => replay,
            Err(e) => {
                bar.abandon();
                return Err(anyhow!(e).context(still_running(&name)));
            }
        };
        if let Some(last) = replay
            .event_last_replayed_time()
            .and_then(|t| t.to_millis().ok())
        {
            bar.set_position((((last - args.from) / 1000).max(0) as u64).min(window_s));
        }
        bar.set_message(format!("replay {name}, {}", state_of(replay.state())));
        let ended = matches!(
            replay.state(),
            Some(ReplayState::Completed | ReplayState::Failed | ReplayState::Cancelled)
        );
        if ended {
            break replay;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                bail!("interrupted; {}", still_running(&name));
            }
        }
    };
    bar.finish_and_clear();

    let state = state_of(replay.state());
    let report = ReplayReport {
        replay: name.clone(),
        replay_arn: replay
            .replay_arn()
            .or(started.replay_arn())
            .map(str::to_owned),
        archive: archive.clone(),
        archive_arn: described.archive_arn().map(str::to_owned),
        bus_arn: source_arn,
        rules: replay
            .destination()
            .map(|d| d.filter_arns().to_vec())
            .unwrap_or_default(),
        from: format_timestamp(args.from),
        to: format_timestamp(args.to),
        state: state.clone(),
        state_reason: replay
            .state_reason()
            .filter(|r| !r.trim().is_empty())
            .map(str::to_owned),
        started_at: time_text(replay.replay_start_time()),
        ended_at: time_text(replay.replay_end_time()),
        last_replayed: time_text(replay.event_last_replayed_time()),
        applied_once,
        notes,
    };
    emit(out, terminal, &report)?;
    if replay.state() != Some(&ReplayState::Completed) {
        bail!(
            "replay {name} of archive {archive} ended {state}{}",
            report
                .state_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn still_running(name: &str) -> String {
    format!(
        "replay {name} goes on in EventBridge: `aws events describe-replay --replay-name {name}` \
         follows it, `aws events cancel-replay --replay-name {name}` stops it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_named_by_name_or_arn() {
        assert_eq!(
            archive_name("arn:aws:events:eu-west-1:123456789012:archive/sg-inbound"),
            "sg-inbound"
        );
        assert_eq!(archive_name(" sg-inbound "), "sg-inbound");
        assert_eq!(parse_archive("sg.inbound_1").unwrap(), "sg.inbound_1");
        assert!(parse_archive("two words").is_err());
        assert!(parse_archive("").is_err());
        assert!(parse_archive(&"a".repeat(49)).is_err());
    }

    #[test]
    fn times_are_rfc_3339_or_now() {
        assert_eq!(
            parse_time("2025-05-01T09:00:00Z").unwrap(),
            1_746_090_000_000
        );
        assert_eq!(
            parse_time("2025-05-01T11:00:00+02:00").unwrap(),
            1_746_090_000_000
        );
        let before = now_ms();
        let now = parse_time("now").unwrap();
        assert!(now >= before && now <= now_ms());
        let err = parse_time("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn a_window_is_checked_before_anything_starts() {
        let now = 100 * DAY_MS;
        let hour = DAY_MS / 24;
        assert!(check_window(now - hour, now, now, false).is_ok());
        let err = check_window(now, now - hour, now, false).unwrap_err();
        assert!(err.to_string().contains("is not before --to"), "{err}");
        let err = check_window(now - hour, now + hour, now, false).unwrap_err();
        assert!(err.to_string().contains("use --to now"), "{err}");
        let old = now - (RETENTION_DAYS + 1) * DAY_MS;
        let err = check_window(old, now, now, false).unwrap_err();
        assert!(err.to_string().contains("--allow-reapply"), "{err}");
        assert!(check_window(old, now, now, true).is_ok());
    }

    #[test]
    fn replay_names_are_valid() {
        let name = replay_name(1_746_090_000_000);
        assert!(name.len() <= 64, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        );
    }
}
