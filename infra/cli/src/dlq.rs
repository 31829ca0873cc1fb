//! `stockguard dlq list` and `stockguard dlq redrive QUEUE`: what is in the dead-letter queues and
//! why, and moving it back once the cause is fixed.
//!
//! With `--stack-name`, the dead-letter queues are the ones the stack's outputs name
//! (`<LogicalId>DLQUrl`). Otherwise they are found by name. The local runtime names each queue the
//! stack prefix plus its template logical id (`StockReceivedDLQ`, `ShopifySyncDLQ`,
//! `RuleDeliveryDLQ`) and the state table the same way (`StateTable`), so the prefix is the
//! table's name without `StateTable`. CloudFormation names them `<stack>-<logical id>-<suffix>`,
//! which the same rule covers; any other naming needs `--queue-prefix`.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use stockguard_domain::types::format_timestamp;

use crate::errors::{aws_error, sdk_error_text};
use crate::report::{Report, emit};
use crate::table::{plural, write_indented_table, write_table};
use crate::{Connection, RedriveArgs, Terminal};

pub const FINDING_QUEUES_HELP: &str = "\
With --stack-name, the stack's dead-letter queues are those its outputs name (<LogicalId>DLQUrl).
Otherwise they are the SQS queues whose names start with its queue prefix and end with DLQ (or
DLQ-<suffix>, as CloudFormation names them). The prefix is the state table's name without its
logical id StateTable: empty for `make local-up`, `<stack>-` for a SAM stack whose table
CloudFormation named `<stack>-StateTable-<suffix>`. A stack whose table or queues are named some
other way needs --queue-prefix (or STOCKGUARD_QUEUE_PREFIX), which also wins over the outputs.";

pub const REDRIVE_HELP: &str = "\
Messages go back to the queue whose redrive policy names the dead-letter queue, or to --to.
Each is sent (its body only, without the reason attributes) before it is deleted from the
dead-letter queue, so an interrupted redrive can send a message twice but never loses one; the
functions apply each event_id once. RuleDeliveryDLQ has no source queue: EventBridge put its
messages there, and their TARGET_ARN attribute says which queue each was meant for; redrive it with
--to that queue (a function dead-letters an event of another type as misrouted). How the stack's
queues are found: `stockguard dlq --help`.
Examples:
  stockguard dlq redrive StockReceivedDLQ
  stockguard dlq redrive RuleDeliveryDLQ --to StockReceivedQueue";

/// The state table's template logical id, the end of its name.
pub const TABLE_LOGICAL_ID: &str = "StateTable";
/// Messages `dlq list` shows per queue.
pub const PEEK: usize = 10;
/// How long a peeked message stays hidden if making it visible again fails.
const PEEK_HIDDEN_SECONDS: i32 = 5;
/// How long a message being moved stays hidden from the dead-letter queue's other readers.
const MOVE_HIDDEN_SECONDS: i32 = 60;
/// The most messages one ReceiveMessage returns.
const RECEIVE_MAX: usize = 10;
/// Empty receives in a row after which a queue whose counters still show messages is left alone.
const EMPTY_RECEIVES: u32 = 3;

/// Why a dead-letter command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error(
        "cannot tell the stack's queue names from its table {table}, which does not end with \
         {TABLE_LOGICAL_ID}; give their common prefix with --queue-prefix"
    )]
    NoQueuePrefix { table: String },
    #[error("{}", unknown_queue(name, prefix, known))]
    UnknownQueue {
        name: String,
        prefix: String,
        /// The stack's dead-letter queues, when looking for one of them.
        known: Vec<String>,
    },
    #[error(
        "no queue names {dlq} as its dead-letter queue in its redrive policy; say where its \
         messages go with --to QUEUE"
    )]
    NoSourceQueue { dlq: String },
    #[error(
        "{} queues name {dlq} as their dead-letter queue ({}); choose one with --to QUEUE",
        sources.len(), sources.join(", ")
    )]
    AmbiguousSource { dlq: String, sources: Vec<String> },
    #[error("{queue} is the dead-letter queue itself; --to must name another queue")]
    SameQueue { queue: String },
    #[error(
        "{} of {dlq} not moved ({moved} moved); run `stockguard dlq redrive {dlq}` again \
         once the cause is fixed",
        plural(*failed, "message")
    )]
    Incomplete {
        dlq: String,
        moved: usize,
        failed: usize,
    },
}

fn unknown_queue(name: &str, prefix: &str, known: &[String]) -> String {
    let mut text = format!("there is no queue {name}");
    if !prefix.is_empty() {
        text.push_str(&format!(" (nor {prefix}{name})"));
    }
    if known.is_empty() {
        text.push_str(&format!(
            "; no dead-letter queue is named {prefix}...DLQ, so check --queue-prefix"
        ));
    } else {
        text.push_str(&format!(
            "; the stack's dead-letter queues are {}",
            known.join(", ")
        ));
    }
    text
}

/// The prefix of the stack's queue names: `explicit` (`--queue-prefix`) or the table's name
/// without its logical id (`t1-StateTable` gives `t1-`, CloudFormation's
/// `sg-StateTable-1AB2C3` gives `sg-`).
pub fn queue_prefix(table: &str, explicit: Option<&str>) -> Result<String, DlqError> {
    if let Some(prefix) = explicit {
        return Ok(prefix.trim().to_owned());
    }
    if let Some(prefix) = table.strip_suffix(TABLE_LOGICAL_ID) {
        return Ok(prefix.to_owned());
    }
    let generated = format!("-{TABLE_LOGICAL_ID}-");
    match table.rfind(&generated) {
        Some(i) if is_generated_suffix(&table[i + generated.len()..]) => Ok(table[..=i].to_owned()),
        _ => Err(DlqError::NoQueuePrefix {
            table: table.to_owned(),
        }),
    }
}

/// The random end CloudFormation gives the names it generates.
fn is_generated_suffix(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The logical id of the queue `name` when it is one of the dead-letter queues of the stack
/// whose queue names start with `prefix`.
pub fn dead_letter_logical_id<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    if rest.ends_with("DLQ") {
        return Some(rest);
    }
    let (id, suffix) = rest.rsplit_once('-')?;
    (id.ends_with("DLQ") && is_generated_suffix(suffix)).then_some(id)
}

/// One of the stack's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub name: String,
    pub url: String,
}

impl Queue {
    fn from_url(url: String) -> Self {
        Self {
            name: name_of_url(&url).to_owned(),
            url,
        }
    }
}

/// A queue URL ends with the queue's name: `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`.
fn name_of_url(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// Every queue whose name starts with `prefix`, through all pages.
async fn queues_named(sqs: &Client, prefix: &str) -> Result<Vec<Queue>> {
    let mut request = sqs.list_queues().max_results(1000);
    if !prefix.is_empty() {
        request = request.queue_name_prefix(prefix);
    }
    let mut pages = request.into_paginator().send();
    let mut queues = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("SQS ListQueues"))?;
        queues.extend(
            page.queue_urls
                .unwrap_or_default()
                .into_iter()
                .map(Queue::from_url),
        );
    }
    Ok(queues)
}

/// The stack's dead-letter queues with their logical ids, in logical-id order.
async fn dead_letter_queues(sqs: &Client, prefix: &str) -> Result<Vec<(String, Queue)>> {
    let mut queues: Vec<(String, Queue)> = queues_named(sqs, prefix)
        .await?
        .into_iter()
        .filter_map(|q| Some((dead_letter_logical_id(&q.name, prefix)?.to_owned(), q)))
        .collect();
    queues.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    Ok(queues)
}

/// How the stack's dead-letter queues were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Named by the stack's outputs.
    Outputs,
    /// By name, with this prefix.
    Prefix(String),
}

/// The stack's dead-letter queues with their logical ids, in logical-id order: those its outputs
/// name, or else (or with `--queue-prefix`) those found by name.
async fn stack_dead_letter_queues(
    connection: &Connection,
    explicit_prefix: Option<&str>,
) -> Result<(Vec<(String, Queue)>, Found)> {
    let named = &connection.stack.dead_letter_queues;
    if explicit_prefix.is_none() && !named.is_empty() {
        let queues = named
            .iter()
            .map(|(id, url)| (id.clone(), Queue::from_url(url.clone())))
            .collect();
        return Ok((queues, Found::Outputs));
    }
    let prefix = queue_prefix(&connection.table, explicit_prefix)?;
    let queues = dead_letter_queues(&connection.sqs, &prefix).await?;
    Ok((queues, Found::Prefix(prefix)))
}

/// The URL of the queue named exactly `name`, if there is one.
async fn queue_url(sqs: &Client, name: &str) -> Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_queue_does_not_exist()
                    || aws_sdk_sqs::error::ProvideErrorMetadata::code(s)
                        == Some("AWS.SimpleQueueService.NonExistentQueue")
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error("SQS GetQueueUrl")(e).into()),
    }
}

/// A queue named by the operator: its full name, or the stack prefix plus `wanted` (the logical
/// id), with or without CloudFormation's suffix.
async fn find_queue(sqs: &Client, prefix: &str, wanted: &str) -> Result<Queue> {
    for name in [wanted.to_owned(), format!("{prefix}{wanted}")] {
        if let Some(url) = queue_url(sqs, &name).await? {
            return Ok(Queue { name, url });
        }
    }
    let generated: Vec<Queue> = queues_named(sqs, &format!("{prefix}{wanted}-"))
        .await?
        .into_iter()
        .filter(|q| {
            q.name.rsplit_once('-').is_some_and(|(id, suffix)| {
                id == format!("{prefix}{wanted}") && is_generated_suffix(suffix)
            })
        })
        .collect();
    if let [queue] = generated.as_slice() {
        return Ok(queue.clone());
    }
    Err(DlqError::UnknownQueue {
        name: wanted.to_owned(),
        prefix: prefix.to_owned(),
        known: Vec::new(),
    }
    .into())
}

/// The dead-letter queue `wanted`: one of the stack's `queues` by full name or logical id, or
/// else any queue of that exact name.
async fn find_dead_letter_queue(
    sqs: &Client,
    queues: Vec<(String, Queue)>,
    prefix: &str,
    wanted: &str,
) -> Result<Queue> {
    if let Some((_, q)) = queues
        .iter()
        .find(|(id, q)| q.name == wanted || id == wanted)
    {
        return Ok(q.clone());
    }
    if let Some(url) = queue_url(sqs, wanted).await? {
        return Ok(Queue {
            name: wanted.to_owned(),
            url,
        });
    }
    Err(DlqError::UnknownQueue {
        name: wanted.to_owned(),
        prefix: prefix.to_owned(),
        known: queues.into_iter().map(|(_, q)| q.name).collect(),
    }
    .into())
}

/// The queue whose redrive policy names `dlq`.
async fn source_queue(sqs: &Client, dlq: &Queue) -> Result<Queue> {
    let mut pages = sqs
        .list_dead_letter_source_queues()
        .queue_url(&dlq.url)
        .max_results(1000)
        .into_paginator()
        .send();
    let mut sources = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws_error("SQS ListDeadLetterSourceQueues"))?;
        sources.extend(page.queue_urls.into_iter().map(Queue::from_url));
    }
    match sources.len() {
        1 => Ok(sources.remove(0)),
        0 => Err(DlqError::NoSourceQueue {
            dlq: dlq.name.clone(),
        }
        .into()),
        _ => Err(DlqError::AmbiguousSource {
            dlq: dlq.name.clone(),
            sources: sources.into_iter().map(|q| q.name).collect(),
        }
        .into()),
    }
}

/// Messages in a queue, as SQS approximates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received by someone and not yet deleted or made visible again.
    pub in_flight: u64,
}

async fn depth(sqs: &Client, queue: &Queue) -> Result<Depth> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue.url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(aws_error("SQS GetQueueAttributes"))?
        .attributes
        .unwrap_or_default();
    let count = |name: &QueueAttributeName| {
        attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        visible: count(&QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

/// `dlq list`: each dead-letter queue's depth and its first messages.
#[derive(Debug, Serialize)]
pub struct DlqList {
    pub queues: Vec<DlqQueue>,
    #[serde(skip)]
    pub found: Found,
}

#[derive(Debug, Serialize)]
pub struct DlqQueue {
    pub queue: String,
    pub logical_id: String,
    pub url: String,
    /// Waiting to be received.
    pub messages: u64,
    /// Received by someone and not yet deleted or made visible again.
    pub in_flight: u64,
    /// The first [`PEEK`] messages, with why they failed.
    pub first_messages: Vec<DeadLetter>,
    /// Set when peeked messages could not be made visible again at once.
    pub note: Option<String>,
}

impl Report for DlqList {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.queues.is_empty() {
            let prefix = match &self.found {
                Found::Prefix(prefix) => prefix.as_str(),
                Found::Outputs => "",
            };
            return writeln!(
                out,
                "No dead-letter queues: no queue is named {prefix}...DLQ. If the stack's queues \
                 are named differently, give their prefix with --queue-prefix."
            );
        }
        let rows: Vec<[String; 3]> = self
            .queues
            .iter()
            .map(|q| {
                [
                    q.queue.clone(),
                    q.messages.to_string(),
                    q.in_flight.to_string(),
                ]
            })
            .collect();
        write_table(out, ["QUEUE", "MESSAGES", "IN FLIGHT"], &rows)?;
        for q in &self.queues {
            if q.messages == 0 && q.in_flight == 0 {
                continue;
            }
            writeln!(out)?;
            if let Some(note) = &q.note {
                writeln!(out, "({note})")?;
            }
            if q.first_messages.is_empty() {
                writeln!(
                    out,
                    "{}: none to show; {} in flight (being read or moved)",
                    q.queue,
                    plural(q.in_flight as usize, "message")
                )?;
                continue;
            }
            let total = (q.messages + q.in_flight).max(q.first_messages.len() as u64);
            writeln!(
                out,
                "{}: the first {} of {}",
                q.queue,
                q.first_messages.len(),
                plural(total as usize, "message")
            )?;
            let dash = || "-".to_owned();
            let rows: Vec<[String; 4]> = q
                .first_messages
                .iter()
                .map(|letter| {
                    [
                        letter.reason_code.clone().unwrap_or_else(dash),
                        letter.event.clone(),
                        letter.dead_lettered_at.clone().unwrap_or_else(dash),
                        letter
                            .reason
                            .clone()
                            .unwrap_or_else(|| "(no reason recorded)".into()),
                    ]
                })
                .collect();
            write_indented_table(
                out,
                "  ",
                ["REASON CODE", "EVENT", "DEAD-LETTERED AT", "REASON"],
                &rows,
            )?;
        }
        if self
            .queues
            .iter()
            .all(|q| q.messages == 0 && q.in_flight == 0)
        {
            writeln!(out, "\nEvery dead-letter queue is empty.")?;
        }
        Ok(())
    }
}

/// The stack's dead-letter queues with their depths, then, for each one holding messages, the
/// first [`PEEK`] of them with the reason they failed. Peeking hides a message for a moment and
/// then makes it visible again, so nothing is consumed.
pub async fn list(
    connection: &Connection,
    queue_prefix_option: Option<&str>,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let sqs = &connection.sqs;
    let (queues, found) = stack_dead_letter_queues(connection, queue_prefix_option).await?;
    let mut listed = Vec::with_capacity(queues.len());
    for (logical_id, queue) in queues {
        let d = depth(sqs, &queue).await?;
        let (peeked, note) = if d.visible > 0 {
            peek(sqs, &queue, PEEK).await?
        } else {
            (Vec::new(), None)
        };
        listed.push(DlqQueue {
            queue: queue.name,
            logical_id,
            url: queue.url,
            messages: d.visible,
            in_flight: d.in_flight,
            first_messages: peeked.iter().map(DeadLetter::of).collect(),
            note,
        });
    }
    let report = DlqList {
        queues: listed,
        found,
    };
    emit(out, terminal, &report)
}

/// Receives up to `limit` messages of `queue` and makes them visible again at once; the note says
/// when that failed.
async fn peek(sqs: &Client, queue: &Queue, limit: usize) -> Result<(Vec<Message>, Option<String>)> {
    let mut seen = HashSet::new();
    let mut messages: Vec<Message> = Vec::new();
    // A short poll samples some of the queue's servers, so one receive may return fewer
    // messages than there are.
    for _ in 0..3 {
        let wanted = (limit - messages.len()).min(RECEIVE_MAX);
        if wanted == 0 {
            break;
        }
        let received = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(wanted as i32)
            .visibility_timeout(PEEK_HIDDEN_SECONDS)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(aws_error("SQS ReceiveMessage"))?
            .messages
            .unwrap_or_default();
        if received.is_empty() {
            break;
        }
        for m in received {
            if seen.insert(m.message_id.clone().unwrap_or_default()) {
                messages.push(m);
            }
        }
    }
    let note = show_again(sqs, queue, &messages).await.err().map(|e| {
        format!(
            "the peeked messages of {} could not be made visible again, so they stay hidden for \
             up to {PEEK_HIDDEN_SECONDS} s: {e:#}",
            queue.name
        )
    });
    Ok((messages, note))
}

async fn show_again(sqs: &Client, queue: &Queue, messages: &[Message]) -> Result<()> {
    for chunk in messages.chunks(RECEIVE_MAX) {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, m) in chunk.iter().enumerate() {
            let Some(handle) = m.receipt_handle() else {
                continue;
            };
            entries.push(
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()?,
            );
        }
        if entries.is_empty() {
            continue;
        }
        let result = sqs
            .change_message_visibility_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(aws_error("SQS ChangeMessageVisibilityBatch"))?;
        if let Some(failed) = result.failed.first() {
            anyhow::bail!(
                "{} of them: {}",
                plural(result.failed.len(), "message"),
                failed.message.as_deref().unwrap_or(&failed.code)
            );
        }
    }
    Ok(())
}

/// A dead letter as `dlq list` shows it; `None` is shown as `-` (the reason as "(no reason
/// recorded)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    pub reason_code: Option<String>,
    /// The event's detail-type, event_id and the SKU, reservation or order it is about.
    pub event: String,
    pub dead_lettered_at: Option<String>,
    pub reason: Option<String>,
}

impl DeadLetter {
    /// The functions put `reason_code` and `reason` on every dead letter; EventBridge puts
    /// `ERROR_CODE`, `ERROR_MESSAGE` and `TARGET_ARN` on the events it could not deliver; a
    /// queue's own redrive policy puts nothing.
    pub fn of(message: &Message) -> Self {
        let attribute = |name: &str| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(one_line)
        };
        let sent_at = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|v| v.parse().ok())
            .map(format_timestamp);
        Self {
            message_id: message.message_id().unwrap_or_default().to_owned(),
            reason_code: attribute("reason_code").or_else(|| attribute("ERROR_CODE")),
            event: event_summary(message.body().unwrap_or_default()),
            dead_lettered_at: sent_at,
            reason: attribute("reason").or_else(|| {
                let message = attribute("ERROR_MESSAGE")?;
                Some(match attribute("TARGET_ARN") {
                    Some(arn) => format!("{message} (for {})", arn.rsplit(':').next()?),
                    None => message,
                })
            }),
        }
    }
}

/// What a message body is about: `ReservationConfirmed c-1 reservation_id=r-1` for an
/// EventBridge event, the same fields of any other JSON object, or the start of the body.
pub fn event_summary(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return format!("not JSON: {}", excerpt(body, 40));
    };
    let fields = match value.get("detail") {
        Some(detail) if detail.is_object() => detail,
        _ => &value,
    };
    let mut parts = Vec::new();
    if let Some(detail_type) = value.get("detail-type").and_then(Value::as_str) {
        parts.push(one_line(detail_type));
    }
    if let Some(event_id) = fields.get("event_id").and_then(Value::as_str) {
        parts.push(one_line(event_id));
    }
    let key = ["sku", "reservation_id", "order_id", "return_id"]
        .into_iter()
        .find_map(|k| Some((k, fields.get(k)?.as_str()?)));
    if let Some((k, v)) = key {
        parts.push(format!("{k}={}", one_line(v)));
    }
    if parts.is_empty() {
        format!("JSON: {}", excerpt(body, 40))
    } else {
        parts.join(" ")
    }
}

/// `text` on one line, so a table row stays one row.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn excerpt(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{}...", cut.trim_end())
    }
}

/// A message that could not be moved.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub message_id: String,
    pub what: String,
}

/// `dlq redrive QUEUE`: what was moved where, and what was not.
#[derive(Debug, Serialize)]
pub struct Redriven {
    pub from: String,
    pub to: String,
    pub moved: usize,
    pub failed: Vec<Failure>,
    /// Messages in flight (being read elsewhere) when the redrive started, which it may not
    /// have moved.
    pub in_flight_at_start: u64,
}

impl Report for Redriven {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        for f in &self.failed {
            writeln!(out, "message {}: {}", f.message_id, f.what)?;
        }
        if self.moved == 0 && self.failed.is_empty() {
            writeln!(out, "{} has no messages to move.", self.from)?;
        } else {
            writeln!(
                out,
                "Moved {} from {} to {}.",
                plural(self.moved, "message"),
                self.from,
                self.to
            )?;
        }
        if self.in_flight_at_start > 0 {
            writeln!(
                out,
                "{} of {} {} in flight (being read elsewhere) when the redrive started and may \
                 not have been moved; `stockguard dlq list` shows what is left.",
                plural(self.in_flight_at_start as usize, "message"),
                self.from,
                if self.in_flight_at_start == 1 {
                    "was"
                } else {
                    "were"
                }
            )?;
        }
        Ok(())
    }
}

/// Moves every message of the dead-letter queue `args.queue` back to its source queue (or
/// `args.to`): each is sent first and deleted only after its send succeeded, in receives of ten
/// until the queue stays empty. Prints each failure and the count moved.
pub async fn redrive(
    connection: &Connection,
    queue_prefix_option: Option<&str>,
    args: &RedriveArgs,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let sqs = &connection.sqs;
    let (queues, found) = stack_dead_letter_queues(connection, queue_prefix_option).await?;
    // Other queues (--to) are found by name: the stack's prefix, where the table's name tells it.
    let prefix = match found {
        Found::Prefix(prefix) => prefix,
        Found::Outputs => queue_prefix(&connection.table, None).unwrap_or_default(),
    };
    let dlq = find_dead_letter_queue(sqs, queues, &prefix, &args.queue).await?;
    let target = match &args.to {
        Some(to) => find_queue(sqs, &prefix, to).await?,
        None => source_queue(sqs, &dlq).await?,
    };
    if target.url == dlq.url {
        return Err(DlqError::SameQueue { queue: dlq.name }.into());
    }
    let before = depth(sqs, &dlq).await?;

    let bar = ProgressBar::with_draw_target(Some(before.visible), terminal.progress_target());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} messages ({eta} left)") {
        bar.set_style(style);
    }
    let moved = move_messages(sqs, &dlq, &target, &bar).await;
    bar.finish_and_clear();
    let (moved, failures) = moved?;

    let report = Redriven {
        from: dlq.name.clone(),
        to: target.name.clone(),
        moved,
        failed: failures,
        in_flight_at_start: before.in_flight,
    };
    emit(out, terminal, &report)?;
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(DlqError::Incomplete {
            dlq: dlq.name,
            moved,
            failed: report.failed.len(),
        }
        .into())
    }
}

/// The receive-send-delete loop: how many moved, and what failed. A message that failed stays
/// hidden in the dead-letter queue until [`MOVE_HIDDEN_SECONDS`] pass, so it is not tried twice
/// in one run.
async fn move_messages(
    sqs: &Client,
    dlq: &Queue,
    target: &Queue,
    bar: &ProgressBar,
) -> Result<(usize, Vec<Failure>)> {
    let mut moved = 0;
    let mut failures = Vec::new();
    let mut empty_receives = 0;
    let stopped = |moved: usize| {
        format!(
            "reading {} stopped after {} moved",
            dlq.name,
            plural(moved, "message")
        )
    };
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&dlq.url)
            .max_number_of_messages(RECEIVE_MAX as i32)
            .visibility_timeout(MOVE_HIDDEN_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws_error("SQS ReceiveMessage"))
            .with_context(|| stopped(moved))?
            .messages
            .unwrap_or_default();
        if received.is_empty() {
            empty_receives += 1;
            if empty_receives >= EMPTY_RECEIVES
                || depth(sqs, dlq)
                    .await
                    .with_context(|| stopped(moved))?
                    .visible
                    == 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        empty_receives = 0;
        for m in received {
            let message_id = m.message_id.clone().unwrap_or_default();
            match move_one(sqs, dlq, target, &m).await {
                Ok(()) => moved += 1,
                Err(what) => failures.push(Failure { message_id, what }),
            }
            bar.set_length(bar.length().unwrap_or(0).max(bar.position() + 1));
            bar.inc(1);
        }
    }
    Ok((moved, failures))
}

/// Sends one message's body to `target`, then deletes it from `dlq`.
async fn move_one(sqs: &Client, dlq: &Queue, target: &Queue, m: &Message) -> Result<(), String> {
    let body = m.body().unwrap_or_default();
    sqs.send_message()
        .queue_url(&target.url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "not sent to {}, left in {}: {}",
                target.name,
                dlq.name,
                sdk_error_text(&e)
            )
        })?;
    sqs.delete_message()
        .queue_url(&dlq.url)
        .receipt_handle(m.receipt_handle().unwrap_or_default())
        .send()
        .await
        .map_err(|e| {
            format!(
                "sent to {} but not deleted from {}, so the next redrive sends it again (the \
                 functions apply each event_id once): {}",
                target.name,
                dlq.name,
                sdk_error_text(&e)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_prefix_comes_from_the_table_name() {
        assert_eq!(queue_prefix("StateTable", None).unwrap(), "");
        assert_eq!(
            queue_prefix("t0a1b2c3d-StateTable", None).unwrap(),
            "t0a1b2c3d-"
        );
        assert_eq!(
            queue_prefix("sg-prod-StateTable-1X2Y3Z4W5V", None).unwrap(),
            "sg-prod-"
        );
        assert_eq!(queue_prefix("anything", Some("sg-")).unwrap(), "sg-");
        assert!(matches!(
            queue_prefix("inventory", None),
            Err(DlqError::NoQueuePrefix { .. })
        ));
        assert!(queue_prefix("x-StateTable-", None).is_err());
    }

    #[test]
    fn dead_letter_queues_are_recognised_by_name() {
        assert_eq!(
            dead_letter_logical_id("t1-StockReceivedDLQ", "t1-"),
            Some("StockReceivedDLQ")
        );
        assert_eq!(
            dead_letter_logical_id("sg-ShopifySyncDLQ-1AB2CD3EF", "sg-"),
            Some("ShopifySyncDLQ")
        );
        assert_eq!(
            dead_letter_logical_id("RuleDeliveryDLQ", ""),
            Some("RuleDeliveryDLQ")
        );
        assert_eq!(dead_letter_logical_id("t1-StockReceivedQueue", "t1-"), None);
        assert_eq!(dead_letter_logical_id("t2-StockReceivedDLQ", "t1-"), None);
        assert_eq!(dead_letter_logical_id("t1-DLQ-notes-x y", "t1-"), None);
    }

    #[test]
    fn a_queue_url_ends_with_its_name() {
        assert_eq!(
            name_of_url("https://sqs.us-east-1.amazonaws.com/123456789012/sg-StockReceivedDLQ"),
            "sg-StockReceivedDLQ"
        );
        assert_eq!(name_of_url("http://127.0.0.1:5000/123456789012/q/"), "q");
    }

    #[test]
    fn a_body_is_summarised_by_its_event() {
        let event = r#"{"detail-type": "ReservationConfirmed", "source": "web",
            "detail": {"event_id": "c-1", "reservation_id": "r-1", "order_id": "o-1"}}"#;
        assert_eq!(
            event_summary(event),
            "ReservationConfirmed c-1 reservation_id=r-1"
        );
        let stock =
            r#"{"detail-type": "StockReceived", "detail": {"event_id": "e", "sku": "TEE-1"}}"#;
        assert_eq!(event_summary(stock), "StockReceived e sku=TEE-1");
        assert_eq!(
            event_summary(r#"{"channel": "shopify", "sku": "TEE-1"}"#),
            "sku=TEE-1"
        );
        assert_eq!(event_summary(r#"{"a": 1}"#), r#"JSON: {"a": 1}"#);
        assert_eq!(
            event_summary("this is\nnot json at all, and it goes on for quite a while"),
            "not JSON: this is not json at all, and it goes on..."
        );
    }
}
