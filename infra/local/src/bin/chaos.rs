//! `make chaos`: the whole local stack under a mixed load with faults at every layer, for a
//! bounded time, then one expiry sweep and two reconciliations, then every invariant checked
//! against the load generator's ledger. Prints one table; exits 1 on any violation, 2 when the
//! run itself could not be carried out.
//!
//! Options: `--seed N` (or STOCKGUARD_CHAOS_SEED), `--seconds N` of load (default 90),
//! `--kills N` runtime kills (default 2), `--drop P`, `--duplicate P`, and
//! `--inject double-apply|lose-event` to plant a violation and watch the checker fail the run.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use stockguard_local::chaos::check::{Verdict, check};
use stockguard_local::chaos::ledger::FaultKind;
use stockguard_local::chaos::run::{
    AMAZON_PROCESSING_ENV, ChaosOptions, ChaosRun, Inject, ORDER_GRACE_ENV, run,
};

const DEFAULT_SEED: u64 = 15_001;
const SEED_ENV: &str = "STOCKGUARD_CHAOS_SEED";

fn main() -> ExitCode {
    // Reconciliation leaves an Amazon listing alone while a push may still be processing (5
    // minutes by default); the fake Amazon here processes in half a second. Set before any
    // thread exists.
    // Orders reach us within two polls here (5 s apart, a minute in AWS): reconciliation holds
    // back pushing a channel up for as long.
    for (name, value) in [AMAZON_PROCESSING_ENV, ORDER_GRACE_ENV] {
        if std::env::var_os(name).is_none() {
            // SAFETY: no other thread runs yet.
            unsafe { std::env::set_var(name, value) };
        }
    }
    let options = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stockguard-chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(chaos(&options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos run failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<ChaosOptions> {
    let seed = match std::env::var(SEED_ENV) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .with_context(|| format!("{SEED_ENV} is not a number: {raw}"))?,
        _ => DEFAULT_SEED,
    };
    let mut o = ChaosOptions {
        seed,
        load: Duration::from_secs(90),
        drop: 0.06,
        duplicate: 0.12,
        kills: 2,
        inject: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => o.seed = value()?.parse().context("--seed")?,
            "--seconds" => o.load = Duration::from_secs(value()?.parse().context("--seconds")?),
            "--kills" => o.kills = value()?.parse().context("--kills")?,
            "--drop" => o.drop = value()?.parse().context("--drop")?,
            "--duplicate" => o.duplicate = value()?.parse().context("--duplicate")?,
            "--inject" => {
                o.inject = Some(match value()?.as_str() {
                    "double-apply" => Inject::DoubleApply,
                    "lose-event" => Inject::LoseEvent,
                    other => bail!("--inject takes double-apply or lose-event, not {other}"),
                })
            }
            other => bail!("unknown option {other} (see the top of src/bin/chaos.rs)"),
        }
    }
    for (name, p) in [("--drop", o.drop), ("--duplicate", o.duplicate)] {
        if !(0.0..1.0).contains(&p) {
            bail!("{name} is a share between 0 and 1, not {p}");
        }
    }
    Ok(o)
}

async fn chaos(options: &ChaosOptions) -> Result<bool> {
    std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL is not set: run `make chaos`")?;
    let started = Instant::now();
    println!(
        "stockguard chaos run: seed {} ({SEED_ENV} or --seed overrides it), {} s of load\n",
        options.seed,
        options.load.as_secs()
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let outcome = run(&config, options).await?;
    let verdict = check(&outcome.ledger.expectations(), &outcome.observed);
    print_table(options, &outcome, &verdict, started.elapsed());
    Ok(verdict.passed())
}

fn row(what: &str, value: impl std::fmt::Display) {
    println!("| {what:<52} | {value:>24} |");
}

fn print_table(options: &ChaosOptions, run: &ChaosRun, v: &Verdict, took: Duration) {
    let l = &run.ledger;
    let q = run.queue;
    let share = |n: u64| {
        if q.received == 0 {
            "0".to_owned()
        } else {
            format!("{n} ({:.1} %)", 100.0 * n as f64 / q.received as f64)
        }
    };
    println!();
    println!(
        "seed {}, load {:.0} s, quiet + sweep + reconciliations {:.0} s, whole run {:.0} s",
        options.seed,
        run.load_took.as_secs_f64(),
        run.drained_after.as_secs_f64(),
        took.as_secs_f64()
    );
    println!("| {:<52} | {:>24} |", "what", "count");
    println!("|{:-<54}|{:->26}|", "", "");
    row(
        "**events sent** (bus events, API calls, orders)",
        l.sent.values().sum::<u64>(),
    );
    for (what, n) in &l.sent {
        row(&format!("  {what}"), n);
    }
    row(
        "**checkouts** (holds asked for, by how they ended)",
        l.checkouts.values().sum::<u64>(),
    );
    for (how, n) in &l.checkouts {
        row(&format!("  {how}"), n);
    }
    row("**faults injected**", "");
    row("  queue: deliveries received by the pollers", q.received);
    let fault = |kind: FaultKind| format!("  {}", kind.label());
    row(&fault(FaultKind::QueueDrop), share(q.dropped));
    row(
        "    of them a message's last delivery",
        run.observed.lost_on_last_delivery.len(),
    );
    row(&fault(FaultKind::QueueDuplicate), share(q.duplicated));
    row(&fault(FaultKind::QueueReorder), q.reordered_batches);
    row(
        &fault(FaultKind::RuntimeKill),
        format!(
            "{} (in flight: {})",
            run.in_flight_at_kills.len(),
            run.in_flight_at_kills
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for (kind, n) in &l.faults {
        if !matches!(kind, FaultKind::RuntimeKill) {
            row(&fault(*kind), n);
        }
    }
    row(&fault(FaultKind::ShopifyWebhookRedelivery), "10 % + 10 %");
    row(&fault(FaultKind::AmazonNotificationRedelivery), "10 %");
    for (what, n) in &run.channel_requests_faulted {
        row(&format!("    channel requests {what}"), n);
    }
    row("**checks**", "");
    row(
        "accepted (events, holds, confirmations, orders)",
        v.accepted,
    );
    row("lost", v.lost.len());
    row("applied twice", v.applied_twice.len());
    row(
        "positions equal to the ledger",
        format!(
            "{}/{}",
            v.positions_checked - v.positions_wrong.len(),
            v.positions_checked
        ),
    );
    row("over-reserved", v.over_reserved.len());
    row(
        "channels converged",
        format!(
            "{}/{}",
            v.channels_checked - v.channels_diverged.len(),
            v.channels_checked
        ),
    );
    row(
        "DLQ explained",
        format!(
            "{}/{}",
            v.dead_letters - v.dead_letters_unexplained.len(),
            v.dead_letters
        ),
    );
    row(
        "poison messages missing from the DLQs",
        v.dead_letters_missing.len(),
    );
    row("wrong answers (API, webhooks)", v.answers_wrong.len());
    println!("\nreconciliations:\n    {}", run.reconcile);
    let violations = v.violations();
    if violations.is_empty() {
        println!("\nPASS: every invariant held");
    } else {
        println!("\nFAIL: {} violations", violations.len());
        for line in violations.iter().take(40) {
            println!("  - {line}");
        }
    }
}
