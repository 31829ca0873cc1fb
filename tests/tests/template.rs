//! template.yaml is the single source of truth: what the emulator holds after provisioning is
//! exactly what it declares, and its IAM grants no wildcard actions.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use stockguard_local::template::workspace_root;
use stockguard_tests::TestStack;

fn template() -> serde_yaml::Value {
    let path = workspace_root().join("template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every `Action` in the template, wherever it appears.
fn actions(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                if k.as_str() == Some("Action") {
                    match v {
                        serde_yaml::Value::String(s) => out.push(s.clone()),
                        serde_yaml::Value::Sequence(seq) => {
                            out.extend(seq.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                        }
                        other => panic!("unexpected Action form {other:?}"),
                    }
                } else {
                    actions(v, out);
                }
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|v| actions(v, out)),
        serde_yaml::Value::Tagged(t) => actions(&t.value, out),
        _ => {}
    }
}

#[test]
fn iam_grants_no_wildcard_actions() {
    let mut found = Vec::new();
    actions(&template(), &mut found);
    assert!(
        found.len() > 20,
        "the template's policies were found: {found:?}"
    );
    let wild: Vec<&String> = found.iter().filter(|a| a.contains('*')).collect();
    assert!(wild.is_empty(), "wildcard actions: {wild:?}");
}

#[test]
fn every_function_is_an_arm64_rust_function_with_active_tracing() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["Tracing"].as_str(), Some("Active"));
    let mut functions = 0;
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() == Some("AWS::Serverless::Function") {
            functions += 1;
            assert_eq!(
                res["Metadata"]["BuildMethod"].as_str(),
                Some("makefile"),
                "{id:?}"
            );
            let binary = res["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id:?} names no binary"));
            assert!(
                workspace_root()
                    .join(format!("functions/{binary}/Cargo.toml"))
                    .exists(),
                "{id:?}: {binary} is not a package under functions/"
            );
        }
    }
    assert_eq!(
        functions,
        11 + 4 + 1 + 1 + 1 + 1,
        "inbound, channel sync, reservations API, expiry sweeper, reconciliation, buffer recompute"
    );
}

/// `sam build` runs `make build-<LogicalId>` for each function; the Makefile must package the binary
/// that the template names for it (checked with `make -n`, which prints without building).
#[test]
fn sam_builds_each_function_from_the_binary_the_template_names() {
    let t = template();
    for (id, res) in t["Resources"].as_mapping().unwrap() {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let out = std::process::Command::new("make")
            .args(["-n", "--no-print-directory", &format!("build-{id}")])
            .env("ARTIFACTS_DIR", "/nonexistent/artifacts")
            .current_dir(workspace_root())
            .output()
            .expect("running make");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "make -n build-{id}: {printed}");
        assert!(
            printed.contains(&format!("bin=\"{binary}\"")),
            "build-{id} does not package {binary}: {printed}"
        );
    }
}

#[tokio::test]
async fn the_emulator_holds_exactly_the_rules_queues_and_redrive_policies_of_the_template() {
    let stack = TestStack::new().await;
    let events = &stack.events;
    for rule in &stack.spec.rules {
        let name = &stack.stack.rules[&rule.logical_id];
        let described = events
            .describe_rule()
            .name(name)
            .event_bus_name(&stack.stack.bus)
            .send()
            .await
            .unwrap();
        let pattern: Value = serde_json::from_str(described.event_pattern().unwrap()).unwrap();
        assert_eq!(pattern, rule.pattern, "{}", rule.logical_id);
        let targets = events
            .list_targets_by_rule()
            .rule(name)
            .event_bus_name(&stack.stack.bus)
            .send()
            .await
            .unwrap();
        let targets = targets.targets();
        assert_eq!(targets.len(), rule.targets.len(), "{}", rule.logical_id);
        for (t, spec) in targets.iter().zip(&rule.targets) {
            assert_eq!(
                t.arn(),
                stack.stack.queues[&spec.queue].arn,
                "{}",
                rule.logical_id
            );
            let dlq = t
                .dead_letter_config()
                .and_then(|d| d.arn())
                .map(str::to_owned);
            assert_eq!(
                dlq,
                spec.dead_letter_queue
                    .as_ref()
                    .map(|q| stack.stack.queues[q].arn.clone()),
                "{}",
                rule.logical_id
            );
        }
    }
    assert_eq!(stack.spec.queues.len(), stack.stack.queues.len());
    for q in &stack.spec.queues {
        let attrs = stack
            .sqs
            .get_queue_attributes()
            .queue_url(&stack.stack.queues[&q.logical_id].url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        if let Some(v) = q.visibility_timeout {
            assert_eq!(
                attrs.get(&QueueAttributeName::VisibilityTimeout),
                Some(&v.to_string()),
                "{}",
                q.logical_id
            );
        }
        let redrive: Option<Value> = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .map(|r| serde_json::from_str(r).unwrap());
        match &q.redrive {
            None => assert!(
                redrive.is_none(),
                "{} has no redrive in the template",
                q.logical_id
            ),
            Some((dlq, max)) => {
                let r =
                    redrive.unwrap_or_else(|| panic!("{} lacks its redrive policy", q.logical_id));
                assert_eq!(
                    r["deadLetterTargetArn"], stack.stack.queues[dlq].arn,
                    "{}",
                    q.logical_id
                );
                assert_eq!(
                    r["maxReceiveCount"].to_string().trim_matches('"'),
                    max.to_string(),
                    "{}",
                    q.logical_id
                );
            }
        }
    }
}

/// Every metric an alarm watches is one the functions emit (names as in their EMF lines), and
/// every dead-letter queue has an alarm.
#[test]
fn alarms_watch_emitted_metrics_and_every_dead_letter_queue() {
    let t = template();
    let emitted = [
        "PushLatency",
        "PushesDelivered",
        "PushesFailed",
        "Throttled",
        "DriftPercent",
        "DriftUnits",
        "DriftSkus",
        "ReservationsCreated",
        "ReservationsRejected",
        "ReservationsConfirmed",
        "ReservationsExpired",
        "OversellsDetected",
    ];
    let source = ["channel_sync.rs", "reconcile.rs", "effect.rs"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(workspace_root().join("shared/handlers/src").join(f)).unwrap()
        })
        .collect::<String>();
    for name in emitted {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "{name} is emitted by a function"
        );
    }
    let resources = t["Resources"].as_mapping().unwrap();
    let mut watched = Vec::new();
    let mut dlq_alarms = Vec::new();
    for (_, res) in resources {
        if res["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let p = &res["Properties"];
        if p["Namespace"].as_str() == Some("AWS/SQS") {
            let dim = &p["Dimensions"][0]["Value"];
            let serde_yaml::Value::Tagged(tag) = dim else {
                panic!("DLQ alarm dimension must be !GetAtt")
            };
            dlq_alarms.push(
                tag.value
                    .as_str()
                    .unwrap()
                    .trim_end_matches(".QueueName")
                    .to_owned(),
            );
        }
        if let Some(m) = p["MetricName"].as_str() {
            watched.push(m.to_owned());
        }
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            if let Some(name) = m["MetricStat"]["Metric"]["MetricName"].as_str() {
                watched.push(name.to_owned());
            }
        }
    }
    for name in [
        "PushLatency",
        "PushesDelivered",
        "PushesFailed",
        "DriftPercent",
        "ReservationsExpired",
        "ReservationsCreated",
        "OversellsDetected",
    ] {
        assert!(watched.iter().any(|w| w == name), "an alarm watches {name}");
    }
    for w in watched
        .iter()
        .filter(|w| *w != "ApproximateNumberOfMessagesVisible")
    {
        assert!(
            emitted.contains(&w.as_str()),
            "alarm on {w}, which nothing emits"
        );
    }
    for (id, res) in resources {
        let id = id.as_str().unwrap();
        if res["Type"].as_str() == Some("AWS::SQS::Queue") && id.ends_with("DLQ") {
            assert!(
                dlq_alarms.iter().any(|d| d == id),
                "{id} has no depth alarm"
            );
        }
    }
}

#[test]
fn schedules_run_at_the_intervals_the_design_sets() {
    let spec = stockguard_local::StackSpec::load_default().unwrap();
    let every = |binary: &str| {
        spec.functions
            .iter()
            .find(|f| f.binary == binary)
            .and_then(|f| f.schedule)
            .unwrap_or_else(|| panic!("{binary} has no schedule"))
    };
    assert_eq!(every("expire-reservations").as_secs(), 60);
    assert_eq!(every("reconcile-channels").as_secs(), 15 * 60);
    assert_eq!(every("recompute-buffers").as_secs(), 5 * 60);
}

#[test]
fn api_gateway_routes_every_documented_operation_of_the_reservations_api() {
    let t = template();
    let events = &t["Resources"]["ReservationsApiFunction"]["Properties"]["Events"];
    let mut routed: Vec<String> = events
        .as_mapping()
        .unwrap()
        .values()
        .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        .map(|e| {
            let p = &e["Properties"];
            format!(
                "{} {}",
                p["Method"].as_str().unwrap(),
                p["Path"].as_str().unwrap()
            )
        })
        .collect();
    routed.sort();
    let openapi: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(workspace_root().join("docs/openapi.yaml")).unwrap(),
    )
    .unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, ops) in openapi["paths"].as_mapping().unwrap() {
        for (method, _) in ops.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["get", "post", "put", "delete", "patch"].contains(&method) {
                documented.push(format!(
                    "{} {}",
                    method.to_uppercase(),
                    path.as_str().unwrap()
                ));
            }
        }
    }
    documented.sort();
    assert_eq!(routed, documented);
}

/// The functions dead-letter a message with its reason on its last delivery: their retry budget
/// and every queue's `maxReceiveCount` are the same parameter, so SQS never moves a message to a
/// dead-letter queue (without a reason) before the function's budget is spent.
#[test]
fn every_queue_redrives_after_the_functions_own_retry_budget() {
    let t = template();
    let is_budget = |v: &serde_yaml::Value| {
        matches!(v, serde_yaml::Value::Tagged(tag)
            if tag.tag == "!Ref" && tag.value.as_str() == Some("RetryBudget"))
    };
    assert!(is_budget(
        &t["Globals"]["Function"]["Environment"]["Variables"]["STOCKGUARD_RETRY_BUDGET"]
    ));
    let mut queues = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        let redrive = &r["Properties"]["RedrivePolicy"];
        if r["Type"].as_str() == Some("AWS::SQS::Queue") && !redrive.is_null() {
            queues += 1;
            assert!(is_budget(&redrive["maxReceiveCount"]), "{id:?}");
        }
    }
    assert!(queues >= 15, "{queues} queues with a redrive policy");
}
