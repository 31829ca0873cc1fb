//! template.yaml is the single source of truth: what the emulator holds after provisioning is
//! exactly what it declares, and its IAM grants no wildcard actions.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use stockguard_local::StackSpec;
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
        11 + 4 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 1,
        "inbound, channel sync, reservations API, expiry sweeper, reconciliation, buffer recompute, \
         Shopify webhooks, Shopify partner events, compensation, Amazon notifications, Walmart and \
         eBay order pollers, the re-check of waits"
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
/// Every `.rs` file below `dir`, concatenated.
fn rust_sources(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.push_str(&rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

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
    let source = rust_sources(&workspace_root().join("shared/handlers/src"));
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
        if p["Namespace"].as_str() == Some("AWS/SQS")
            && p["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
        {
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
        // The functions' own metrics: those outside the AWS/ namespaces.
        let theirs = |ns: &serde_yaml::Value| !ns.as_str().is_some_and(|n| n.starts_with("AWS/"));
        if let Some(m) = p["MetricName"].as_str().filter(|_| theirs(&p["Namespace"])) {
            watched.push(m.to_owned());
        }
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &m["MetricStat"]["Metric"];
            if let Some(name) = metric["MetricName"]
                .as_str()
                .filter(|_| theirs(&metric["Namespace"]))
            {
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
    for w in &watched {
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
    assert_eq!(every("poll-walmart-orders").as_secs(), 60);
    assert_eq!(every("poll-ebay-orders").as_secs(), 60);
    assert_eq!(every("recheck-waits").as_secs(), 5 * 60);
}

#[test]
fn api_gateway_routes_every_documented_operation_of_the_reservations_api() {
    let t = template();
    // The reservations API's function and the Shopify webhook's serve the documented routes.
    let mut routed: Vec<String> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|r| r["Properties"]["Events"].as_mapping())
        .flat_map(|events| events.values())
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
    assert!(queues >= 17, "{queues} queues with a redrive policy");
}

type Yaml = serde_yaml::Value;

/// The value under tag `!{tag}` (`Ref`, `GetAtt`, `Sub`, `If`), if `v` is one.
fn tagged<'a>(v: &'a Yaml, tag: &str) -> Option<&'a Yaml> {
    match v {
        Yaml::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

fn is_ref(v: &Yaml, target: &str) -> bool {
    tagged(v, "Ref").and_then(Yaml::as_str) == Some(target)
}

/// `!GetAtt X.Arn` → X.
fn arn_of(v: &Yaml) -> Option<String> {
    tagged(v, "GetAtt")?
        .as_str()?
        .strip_suffix(".Arn")
        .map(str::to_owned)
}

/// `!If [C, !GetAtt X.Arn, !Ref AWS::NoValue]` → (C, X): an ARN listed only under condition C.
fn arn_if(v: &Yaml) -> Option<(String, String)> {
    let args = tagged(v, "If")?.as_sequence()?;
    match args.as_slice() {
        [c, then, otherwise] if is_ref(otherwise, "AWS::NoValue") => {
            Some((c.as_str()?.to_owned(), arn_of(then)?))
        }
        _ => None,
    }
}

fn resources_of<'a>(t: &'a Yaml, kind: &str) -> Vec<(String, &'a Yaml)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r))
        .collect()
}

fn parsed(yaml: &str) -> Yaml {
    serde_yaml::from_str(yaml).unwrap()
}

/// The dashboard's body as JSON, each `${X}` of its `!Sub` written `<X>`.
fn dashboard(t: &Yaml) -> Value {
    let (_, d) = resources_of(t, "AWS::CloudWatch::Dashboard").remove(0);
    let body = tagged(&d["Properties"]["DashboardBody"], "Sub")
        .and_then(Yaml::as_str)
        .expect("the dashboard body is one !Sub string");
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').unwrap();
        text.push_str(&rest[..start]);
        text.push_str(&format!("<{}>", &rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    serde_json::from_str(&text).expect("the dashboard body is JSON")
}

/// The state outlives the stack, a replacement, and a DeleteTable by hand; its key is the
/// operator's when they name one.
#[test]
fn the_state_table_is_retained_protected_recoverable_and_optionally_customer_keyed() {
    let t = template();
    let table = &t["Resources"]["StateTable"];
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &table["Properties"];
    assert_eq!(p["DeletionProtectionEnabled"].as_bool(), Some(true));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        t["Parameters"]["TableKmsKeyArn"]["Default"].as_str(),
        Some("")
    );
    assert_eq!(
        t["Conditions"]["HasTableKmsKey"],
        parsed(r#"!Not [!Equals [!Ref TableKmsKeyArn, ""]]"#)
    );
    let sse = &p["SSESpecification"];
    assert_eq!(
        sse["SSEEnabled"],
        parsed("!If [HasTableKmsKey, true, false]")
    );
    assert_eq!(
        sse["SSEType"],
        parsed("!If [HasTableKmsKey, KMS, !Ref AWS::NoValue]")
    );
    assert_eq!(
        sse["KMSMasterKeyId"],
        parsed("!If [HasTableKmsKey, !Ref TableKmsKeyArn, !Ref AWS::NoValue]")
    );
}

/// Every function logs JSON to a group of its own that keeps logs `LogRetentionDays`, at the
/// level `LogLevel` sets for Lambda and for the functions' tracing filter alike.
#[test]
fn every_function_logs_to_its_own_group_at_the_stacks_retention_and_level() {
    let t = template();
    let retention = &t["Parameters"]["LogRetentionDays"];
    assert_eq!(retention["Default"].as_i64(), Some(30));
    // The values CloudWatch Logs accepts for RetentionInDays.
    let valid = [
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
        2922, 3288, 3653,
    ];
    for v in retention["AllowedValues"].as_sequence().unwrap() {
        assert!(valid.contains(&v.as_i64().unwrap()), "{v:?}");
    }
    let globals = &t["Globals"]["Function"];
    let logging = &globals["LoggingConfig"];
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
    assert!(is_ref(&logging["ApplicationLogLevel"], "LogLevel"));
    assert!(["DEBUG", "INFO", "WARN"].contains(&logging["SystemLogLevel"].as_str().unwrap()));
    assert!(is_ref(
        &globals["Environment"]["Variables"]["RUST_LOG"],
        "LogLevel"
    ));
    let level = &t["Parameters"]["LogLevel"];
    assert_eq!(level["Default"].as_str(), Some("INFO"));
    for v in level["AllowedValues"].as_sequence().unwrap() {
        let v = v.as_str().unwrap();
        // What Lambda accepts as ApplicationLogLevel, and what the functions' filter reads from
        // AWS_LAMBDA_LOG_LEVEL and RUST_LOG.
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"].contains(&v),
            "{v}"
        );
        assert!(
            v.parse::<tracing_subscriber::filter::LevelFilter>().is_ok(),
            "{v}"
        );
        assert!(tracing_subscriber::EnvFilter::try_new(v).is_ok(), "{v}");
        // Lambda files the metric lines (no level, no timestamp) as INFO: a level above it
        // would drop them.
        assert!(
            v.parse::<tracing_subscriber::filter::LevelFilter>()
                .unwrap()
                >= tracing_subscriber::filter::LevelFilter::INFO,
            "{v} drops the metric lines"
        );
    }
    let groups = resources_of(&t, "AWS::Logs::LogGroup");
    let mut used = Vec::new();
    for (id, f) in resources_of(&t, "AWS::Serverless::Function") {
        let group = tagged(&f["Properties"]["LoggingConfig"]["LogGroup"], "Ref")
            .and_then(Yaml::as_str)
            .unwrap_or_else(|| panic!("{id} names no log group"));
        let (_, g) = groups
            .iter()
            .find(|(gid, _)| gid == group)
            .unwrap_or_else(|| panic!("{id}: no log group {group}"));
        assert!(
            is_ref(&g["Properties"]["RetentionInDays"], "LogRetentionDays"),
            "{group}"
        );
        let name = tagged(&g["Properties"]["LogGroupName"], "Sub")
            .and_then(Yaml::as_str)
            .unwrap();
        assert!(
            name.contains("${AWS::StackName}") && name.ends_with(&id),
            "{name}"
        );
        assert!(!used.contains(&group), "{group} is shared");
        used.push(group);
    }
    assert_eq!(
        used.len(),
        groups.len(),
        "every log group serves a function"
    );
}

/// Every alarm reaches someone: the operator's topic or the stack's own, on ALARM and on OK.
#[test]
fn every_alarm_notifies_the_given_or_created_topic_when_it_fires_and_clears() {
    let t = template();
    let actions = parsed("[!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]");
    let alarms = resources_of(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 75, "{} alarms", alarms.len());
    for (id, a) in &alarms {
        assert_eq!(a["Properties"]["AlarmActions"], actions, "{id}");
        assert_eq!(a["Properties"]["OKActions"], actions, "{id}");
    }
    assert_eq!(
        t["Conditions"]["CreateAlarmTopic"],
        parsed(r#"!Equals [!Ref AlarmTopicArn, ""]"#)
    );
    let topic = &t["Resources"]["AlarmTopic"];
    assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"));
    assert_eq!(topic["Condition"].as_str(), Some("CreateAlarmTopic"));
    let (_, sub) = resources_of(&t, "AWS::SNS::Subscription").remove(0);
    assert_eq!(sub["Condition"].as_str(), Some("SubscribeAlarmEmail"));
    assert_eq!(
        t["Conditions"]["SubscribeAlarmEmail"],
        parsed(r#"!And [!Condition CreateAlarmTopic, !Not [!Equals [!Ref AlarmEmail, ""]]]"#)
    );
    assert_eq!(sub["Properties"]["Protocol"].as_str(), Some("email"));
    assert!(is_ref(&sub["Properties"]["Endpoint"], "AlarmEmail"));
    assert!(is_ref(&sub["Properties"]["TopicArn"], "AlarmTopic"));
    for p in ["AlarmTopicArn", "AlarmEmail"] {
        assert_eq!(t["Parameters"][p]["Default"].as_str(), Some(""), "{p}");
    }
    let described = t["Parameters"]["AlarmTopicArn"]["Description"]
        .as_str()
        .unwrap();
    assert!(
        described.contains("every alarm") && !described.contains("dead-letter"),
        "{described}"
    );
}

/// The alarms an AWS engineer expects besides the pipeline's own: every function's errors and
/// throttles (the scheduled ones included), every source queue's backlog, the API's 5xx.
#[test]
fn every_function_queue_and_the_api_have_alarms_on_their_aws_metrics() {
    let t = template();
    let alarms = resources_of(&t, "AWS::CloudWatch::Alarm");
    let watching =
        |namespace: &str, metric: &str, dimension: &str, check: &dyn Fn(&Yaml) -> bool| {
            alarms.iter().any(|(_, a)| {
                let p = &a["Properties"];
                p["Namespace"].as_str() == Some(namespace)
                    && p["MetricName"].as_str() == Some(metric)
                    && p["Dimensions"].as_sequence().is_some_and(|d| {
                        d.len() == 1
                            && d[0]["Name"].as_str() == Some(dimension)
                            && check(&d[0]["Value"])
                    })
            })
        };
    let functions = resources_of(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 26);
    for (id, _) in &functions {
        for metric in ["Errors", "Throttles"] {
            assert!(
                watching("AWS/Lambda", metric, "FunctionName", &|v| is_ref(v, id)),
                "no {metric} alarm for {id}"
            );
        }
    }
    // The queues functions read (those with a redrive policy): an age alarm each, at a threshold
    // above what retries alone reach (SQS stops counting a message after its third receive).
    let threshold = &t["Parameters"]["QueueAgeAlarmSeconds"];
    let mut sources = 0;
    for (id, q) in resources_of(&t, "AWS::SQS::Queue") {
        if q["Properties"]["RedrivePolicy"].is_null() {
            continue;
        }
        sources += 1;
        let visibility = q["Properties"]["VisibilityTimeout"].as_i64().unwrap();
        assert!(
            threshold["Default"].as_i64().unwrap() > 3 * visibility,
            "QueueAgeAlarmSeconds fires on retries of {id}"
        );
        let alarm = alarms.iter().find(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"].as_str() == Some("ApproximateAgeOfOldestMessage")
                && tagged(&p["Dimensions"][0]["Value"], "GetAtt").and_then(Yaml::as_str)
                    == Some(&format!("{id}.QueueName"))
        });
        let (_, alarm) = alarm.unwrap_or_else(|| panic!("{id} has no age alarm"));
        assert!(is_ref(
            &alarm["Properties"]["Threshold"],
            "QueueAgeAlarmSeconds"
        ));
    }
    assert_eq!(
        sources, 18,
        "11 inbound, 4 channel sync, the compensation, the Amazon notification and the Shopify \
         partner event queues"
    );
    let api_5xx = alarms.iter().any(|(_, a)| {
        a["Properties"]["Metrics"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|m| {
                let metric = &m["MetricStat"]["Metric"];
                metric["Namespace"].as_str() == Some("AWS/ApiGateway")
                    && metric["MetricName"].as_str() == Some("5xx")
                    && metric["Dimensions"][0]["Name"].as_str() == Some("ApiId")
                    && is_ref(&metric["Dimensions"][0]["Value"], "ReservationsApi")
            })
    });
    assert!(api_5xx, "no alarm on the reservations API's 5xx");
}

/// One look shows everything: every alarm, and the queues, functions, API and table.
#[test]
fn the_dashboard_shows_every_alarm_and_the_aws_metrics() {
    let t = template();
    let body = dashboard(&t);
    let widgets = body["widgets"].as_array().unwrap();
    let on_dashboard: Vec<&str> = widgets
        .iter()
        .flat_map(|w| w["properties"]["alarms"].as_array().into_iter().flatten())
        .map(|a| a.as_str().unwrap())
        .collect();
    for (id, _) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        assert!(
            on_dashboard.contains(&format!("<{id}.Arn>").as_str()),
            "{id} is not on the dashboard"
        );
    }
    let metrics: Vec<&Value> = widgets
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .collect();
    let drawn = |namespace: &str, metric: &str, value: &str| {
        metrics
            .iter()
            .any(|m| m[0] == namespace && m[1] == metric && m[3].as_str() == Some(value))
    };
    for (id, q) in resources_of(&t, "AWS::SQS::Queue") {
        let metric = if id.ends_with("DLQ") {
            "ApproximateNumberOfMessagesVisible"
        } else {
            assert!(!q["Properties"]["RedrivePolicy"].is_null(), "{id}");
            "ApproximateAgeOfOldestMessage"
        };
        assert!(
            drawn("AWS/SQS", metric, &format!("<{id}.QueueName>")),
            "{id}"
        );
    }
    for (id, _) in resources_of(&t, "AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                drawn("AWS/Lambda", metric, &format!("<{id}>")),
                "{metric} of {id}"
            );
        }
    }
    for metric in ["Count", "4xx", "5xx", "Latency"] {
        assert!(
            drawn("AWS/ApiGateway", metric, "<ReservationsApi>"),
            "{metric}"
        );
    }
    for metric in [
        "ConsumedReadCapacityUnits",
        "ConsumedWriteCapacityUnits",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
    ] {
        assert!(drawn("AWS/DynamoDB", metric, "<StateTable>"), "{metric}");
    }
}

/// Two stacks in one account keep apart: metrics in a namespace per stack (the alarms and the
/// dashboard read the one the functions write), and every name a resource is given carries the
/// stack's name.
#[test]
fn names_metrics_and_schedules_are_scoped_by_stack() {
    let t = template();
    let namespace = tagged(
        &t["Globals"]["Function"]["Environment"]["Variables"]["STOCKGUARD_METRICS_NAMESPACE"],
        "Sub",
    )
    .and_then(Yaml::as_str)
    .expect("the functions are given their metrics namespace");
    assert!(namespace.contains("${AWS::StackName}"), "{namespace}");
    let metrics_source =
        std::fs::read_to_string(workspace_root().join("shared/handlers/src/metrics.rs")).unwrap();
    assert!(metrics_source.contains("\"STOCKGUARD_METRICS_NAMESPACE\""));
    let mut custom = 0;
    for (id, a) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        let p = &a["Properties"];
        let namespaces = std::iter::once(&p["Namespace"]).chain(
            p["Metrics"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|m| &m["MetricStat"]["Metric"]["Namespace"]),
        );
        for ns in namespaces.filter(|ns| !ns.is_null()) {
            if ns.as_str().is_some_and(|n| n.starts_with("AWS/")) {
                continue;
            }
            custom += 1;
            assert_eq!(
                tagged(ns, "Sub").and_then(Yaml::as_str),
                Some(namespace),
                "{id}"
            );
        }
    }
    assert!(custom >= 7, "{custom} custom-metric alarm namespaces");
    let on_dashboard = namespace.replace("${", "<").replace('}', ">");
    for w in dashboard(&t)["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let ns = m[0].as_str().unwrap();
            assert!(ns.starts_with("AWS/") || ns == on_dashboard, "{ns}");
        }
    }

    // The bus keeps the name producers are given; a second stack sets its own (or empty).
    assert_eq!(
        t["Parameters"]["EventBusName"]["Default"].as_str(),
        Some("stockguard")
    );
    assert_eq!(
        t["Resources"]["EventBus"]["Properties"]["Name"],
        parsed("!If [HasEventBusName, !Ref EventBusName, !Ref AWS::StackName]")
    );
    // Every physical name the template sets depends on the stack's name.
    let naming = [
        "Name",
        "DashboardName",
        "LogGroupName",
        "TableName",
        "QueueName",
        "FunctionName",
        "TopicName",
        "ArchiveName",
        "RoleName",
        "AlarmName",
    ];
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        for key in naming {
            let v = &r["Properties"][key];
            if !v.is_null() {
                let text = serde_yaml::to_string(v).unwrap();
                assert!(text.contains("AWS::StackName"), "{id:?}.{key} = {text}");
            }
        }
        for (name, e) in r["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if e["Type"].as_str() == Some("ScheduleV2") {
                // SAM names a schedule after its function unless told not to.
                assert_eq!(
                    e["Properties"]["OmitName"].as_bool(),
                    Some(true),
                    "{id:?}.{name:?}"
                );
            }
        }
    }
}

/// A reconciliation or buffer recompute never runs beside another of its kind.
#[test]
fn reconciliation_buffer_recompute_and_order_polls_run_one_at_a_time() {
    let t = template();
    for (id, f) in resources_of(&t, "AWS::Serverless::Function") {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        if ![
            "reconcile-channels",
            "recompute-buffers",
            "poll-walmart-orders",
            "poll-ebay-orders",
        ]
        .contains(&binary)
        {
            continue;
        }
        let p = &f["Properties"];
        assert_eq!(p["ReservedConcurrentExecutions"].as_i64(), Some(1), "{id}");
        // A run held back (or failed) is dropped, not queued behind the one running.
        assert_eq!(
            p["EventInvokeConfig"]["MaximumRetryAttempts"].as_i64(),
            Some(0),
            "{id}"
        );
        assert!(
            p["EventInvokeConfig"]["MaximumEventAgeInSeconds"]
                .as_i64()
                .unwrap()
                <= 300,
            "{id}"
        );
    }
}

/// Inbound events are archived as producers sent them, for as long as `ArchiveRetentionDays`
/// says; stockguard's own events are not.
#[tokio::test]
async fn inbound_events_are_archived_and_stockguards_own_are_not() {
    let t = template();
    let (_, archive) = resources_of(&t, "AWS::Events::Archive").remove(0);
    let p = &archive["Properties"];
    assert_eq!(arn_of(&p["SourceArn"]).as_deref(), Some("EventBus"));
    assert!(is_ref(&p["RetentionDays"], "ArchiveRetentionDays"));
    // The default covers the days an applied event_id is remembered, within which a replay
    // applies nothing twice.
    assert_eq!(
        t["Parameters"]["ArchiveRetentionDays"]["Default"].as_i64(),
        Some(stockguard_adapters::tx::RETENTION_DAYS)
    );
    let pattern: Value = serde_json::to_value(&p["EventPattern"]).unwrap();
    let stack = TestStack::new().await;
    let inbound = &stack
        .spec
        .rules
        .iter()
        .find(|r| r.logical_id == "StockReceivedRule")
        .unwrap()
        .pattern;
    assert_eq!(
        pattern["source"], inbound["source"],
        "the archive takes what the inbound rules take"
    );
    // The archive as the template declares it, on the test stack's bus in the emulator.
    let name = format!("{}inbound", stack.stack.prefix);
    stack
        .events
        .create_archive()
        .archive_name(&name)
        .event_source_arn(&stack.stack.bus_arn)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    stack
        .put_event("erp.netsuite", "StockReceived", &serde_json::json!({}))
        .await;
    stack
        .put_event("marketplace.amazon", "OrderPlaced", &serde_json::json!({}))
        .await;
    stack
        .put_event(
            "stockguard.core",
            "InventoryPositionChanged",
            &serde_json::json!({}),
        )
        .await;
    stack
        .put_event(
            "storefront.analytics",
            "DemandSignal",
            &serde_json::json!({}),
        )
        .await;
    let archived = stack
        .events
        .describe_archive()
        .archive_name(&name)
        .send()
        .await
        .unwrap()
        .event_count;
    assert_eq!(
        archived, 3,
        "the three producers' events, not stockguard's own"
    );
}

/// Each channel's sync function reads only its own channel's credentials.
#[test]
fn channel_sync_functions_read_only_their_own_channels_secret() {
    let t = template();
    let mut channels = 0;
    for (id, f) in resources_of(&t, "AWS::Serverless::Function") {
        let secrets: Vec<String> = f["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
            .filter(|s| s["Action"].as_str() == Some("secretsmanager:GetSecretValue"))
            .flat_map(|s| match &s["Resource"] {
                Yaml::Sequence(r) => r.clone(),
                r => vec![r.clone()],
            })
            .map(|r| {
                let sub = tagged(&r, "Sub").and_then(Yaml::as_str).unwrap().to_owned();
                sub.rsplit(":secret:").next().unwrap().to_owned()
            })
            .collect();
        assert!(
            !secrets.iter().any(|s| s == "stockguard/*"),
            "{id} may read every stockguard secret"
        );
        if let Some(channel) =
            f["Properties"]["Environment"]["Variables"]["STOCKGUARD_CHANNEL"].as_str()
        {
            channels += 1;
            assert_eq!(
                secrets,
                vec![format!("stockguard/channels/{channel}-*")],
                "{id}"
            );
        }
    }
    assert_eq!(channels, 4);
}

/// EventBridge may send to a queue only for stockguard's rules that target it (for the rule
/// delivery dead-letter queue: the rules that dead-letter to it).
#[test]
fn every_queue_policy_admits_only_the_rules_that_deliver_to_it() {
    let t = template();
    let rules = resources_of(&t, "AWS::Events::Rule");
    let policies = resources_of(&t, "AWS::SQS::QueuePolicy");
    assert_eq!(policies.len(), 19);
    for (id, policy) in policies {
        let p = &policy["Properties"];
        // Amazon's notification destination admits only the Selling Partner API's account.
        if id == "AmazonNotificationsQueuePolicy" {
            let statements = p["PolicyDocument"]["Statement"].as_sequence().unwrap();
            assert_eq!(statements.len(), 1);
            assert_eq!(
                statements[0]["Principal"]["AWS"].as_str(),
                Some("arn:aws:iam::437568002678:root")
            );
            continue;
        }
        let queue = tagged(&p["Queues"][0], "Ref")
            .and_then(Yaml::as_str)
            .unwrap()
            .to_owned();
        let mut expected: Vec<String> = rules
            .iter()
            .filter(|(_, r)| {
                r["Properties"]["Targets"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|target| {
                        arn_of(&target["Arn"]).as_deref() == Some(queue.as_str())
                            || arn_of(&target["DeadLetterConfig"]["Arn"]).as_deref()
                                == Some(queue.as_str())
                    })
            })
            .map(|(rid, _)| rid.clone())
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{id}");
        for statement in p["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            let sources = &statement["Condition"]["ArnEquals"]["aws:SourceArn"];
            let mut admitted: Vec<String> = match sources {
                Yaml::Sequence(s) => s
                    .iter()
                    .filter_map(|v| {
                        // A rule that exists under a condition is admitted under the same one.
                        arn_of(v).or_else(|| {
                            let (condition, rule) = arn_if(v)?;
                            assert_eq!(
                                t["Resources"][rule.as_str()]["Condition"].as_str(),
                                Some(condition.as_str()),
                                "{id}: {rule}"
                            );
                            Some(rule)
                        })
                    })
                    .collect(),
                other => arn_of(other).into_iter().collect(),
            };
            admitted.sort();
            assert_eq!(admitted, expected, "{id}");
        }
    }
}

/// What an operator needs from the stack is in its outputs.
#[test]
fn outputs_name_every_dead_letter_queue_the_api_and_the_alarm_topic() {
    let t = template();
    let outputs = t["Outputs"].as_mapping().unwrap();
    let output = |pred: &dyn Fn(&Yaml) -> bool| outputs.iter().any(|(_, o)| pred(&o["Value"]));
    for (id, _) in resources_of(&t, "AWS::SQS::Queue") {
        if id.ends_with("DLQ") {
            assert!(output(&|v| is_ref(v, &id)), "no output for {id}");
        }
    }
    assert!(output(&|v| is_ref(v, "ReservationsApi")), "API id");
    assert!(
        output(&|v| tagged(v, "Sub")
            .and_then(Yaml::as_str)
            .is_some_and(|s| s.contains(":execute-api:") && s.ends_with(":${ReservationsApi}"))),
        "API ARN"
    );
    assert_eq!(
        t["Outputs"]["AlarmTopicArn"]["Value"],
        parsed("!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]")
    );
}

/// Every parameter and output says what it is, and so does every resource whose type can.
#[test]
fn every_parameter_output_and_describable_resource_has_a_description() {
    let t = template();
    let described = |v: &Yaml| v.as_str().is_some_and(|s| s.trim().len() > 10);
    for section in ["Parameters", "Outputs"] {
        for (id, v) in t[section].as_mapping().unwrap() {
            assert!(described(&v["Description"]), "{section}.{id:?}");
        }
    }
    let mut resources = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        let p = &r["Properties"];
        let description = match r["Type"].as_str().unwrap() {
            "AWS::CloudWatch::Alarm" => &p["AlarmDescription"],
            "AWS::Serverless::Function"
            | "AWS::Events::Rule"
            | "AWS::Events::EventBus"
            | "AWS::Events::Archive"
            | "AWS::Serverless::HttpApi"
            | "AWS::EventSchemas::Registry"
            | "AWS::EventSchemas::Schema" => &p["Description"],
            _ => continue,
        };
        resources += 1;
        assert!(described(description), "{id:?}");
        for (name, e) in p["Events"].as_mapping().into_iter().flatten() {
            if e["Type"].as_str() == Some("ScheduleV2") {
                assert!(
                    described(&e["Properties"]["Description"]),
                    "{id:?}.{name:?}"
                );
            }
        }
    }
    assert!(resources > 100, "{resources}");
}

/// Shopify's EventBridge partner source is optional: the parameter names its bus, and only then
/// is there a rule on it (and the queue policy admitting that rule); the queue and function that
/// take its events are always there, watched like every other.
#[test]
fn shopify_partner_events_are_routed_only_when_the_partner_bus_is_named() {
    let t = template();
    let parameter = &t["Parameters"]["ShopifyPartnerEventBusName"];
    assert_eq!(parameter["Default"].as_str(), Some(""));
    assert!(
        parameter["AllowedPattern"]
            .as_str()
            .unwrap()
            .starts_with("^$|^aws\\.partner/shopify\\.com/"),
        "{parameter:?}"
    );
    assert_eq!(
        t["Conditions"]["HasShopifyPartnerEventBus"],
        parsed(r#"!Not [!Equals [!Ref ShopifyPartnerEventBusName, ""]]"#)
    );
    let resources = &t["Resources"];
    for id in [
        "ShopifyPartnerEventsRule",
        "ShopifyPartnerEventsQueuePolicy",
    ] {
        assert_eq!(
            resources[id]["Condition"].as_str(),
            Some("HasShopifyPartnerEventBus"),
            "{id}"
        );
    }
    for id in [
        "ShopifyPartnerEventsQueue",
        "ShopifyPartnerEventsDLQ",
        "ShopifyPartnerEventsFunction",
    ] {
        assert!(resources[id]["Condition"].is_null(), "{id} is always there");
    }
    let rule = &resources["ShopifyPartnerEventsRule"]["Properties"];
    assert!(is_ref(&rule["EventBusName"], "ShopifyPartnerEventBusName"));
    let pattern = &rule["EventPattern"];
    assert_eq!(
        pattern["detail-type"],
        parsed(&format!(
            "[{}]",
            stockguard_domain::shopify::PARTNER_DETAIL_TYPE
        ))
    );
    let topics: Vec<&str> = pattern["detail"]["metadata"]["X-Shopify-Topic"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        ["orders/create", "orders/cancelled", "refunds/create"]
    );
    for topic in topics {
        assert!(
            stockguard_domain::shopify::Topic::parse(topic).is_some(),
            "{topic} is one the mapping takes"
        );
    }

    // As deployed without the parameter, and with it.
    let by_default = StackSpec::load_default().unwrap();
    assert!(
        !by_default
            .rules
            .iter()
            .any(|r| r.logical_id == "ShopifyPartnerEventsRule")
    );
    let function = by_default
        .functions
        .iter()
        .find(|f| f.logical_id == "ShopifyPartnerEventsFunction")
        .unwrap();
    let event = function.queue_event.as_ref().unwrap();
    assert_eq!(event.queue, "ShopifyPartnerEventsQueue");
    assert!(event.report_batch_item_failures);
    assert_eq!(
        function.env_refs["STOCKGUARD_DLQ_URL"],
        "ShopifyPartnerEventsDLQ"
    );
    let bus = "aws.partner/shopify.com/1830279/stockguard";
    let named = StackSpec::load_default_with(&[("ShopifyPartnerEventBusName", bus)]).unwrap();
    let rule = named
        .rules
        .iter()
        .find(|r| r.logical_id == "ShopifyPartnerEventsRule")
        .expect("the rule, once the bus is named");
    assert_eq!(rule.event_bus.as_deref(), Some(bus));
    assert_eq!(rule.targets.len(), 1);
    assert_eq!(rule.targets[0].queue, "ShopifyPartnerEventsQueue");
    assert_eq!(
        rule.targets[0].dead_letter_queue.as_deref(),
        Some("RuleDeliveryDLQ")
    );
    assert_eq!(named.rules.len(), by_default.rules.len() + 1);
}
