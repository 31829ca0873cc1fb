//! Reads `template.yaml`, the single source of truth for resources: the local runtime and the
//! tests provision exactly what it declares, never a second hand-written copy.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value as Json;
use serde_yaml::Value;

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    /// (attribute name, key type HASH/RANGE)
    pub key_schema: Vec<(String, String)>,
    /// (attribute name, type S/N/B)
    pub attributes: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub indexes: Vec<IndexSpec>,
}

/// A global secondary index.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    /// ALL, KEYS_ONLY or INCLUDE.
    pub projection: String,
    /// With INCLUDE: the attributes projected besides the keys.
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<i64>,
    pub retention_seconds: Option<i64>,
    /// (dead-letter queue logical id, maxReceiveCount)
    pub redrive: Option<(String, i64)>,
}

#[derive(Debug, Clone)]
pub struct RuleTarget {
    pub id: String,
    pub queue: String,
    pub dead_letter_queue: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub logical_id: String,
    /// The bus the rule is on when it is not the stack's own: the name a parameter gives (a
    /// partner event bus, which the stack does not create).
    pub event_bus: Option<String>,
    pub pattern: Json,
    pub targets: Vec<RuleTarget>,
}

#[derive(Debug, Clone)]
pub struct QueueEventSpec {
    pub queue: String,
    pub batch_size: i32,
    pub batching_window_seconds: i64,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency` (a number or `!Ref` a parameter); `None` when unset.
    pub maximum_concurrency: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub queue_event: Option<QueueEventSpec>,
    /// Environment variables that name a resource: variable → logical id (`!Ref`).
    pub env_refs: BTreeMap<String, String>,
    /// Environment variables with a literal value.
    pub env_values: BTreeMap<String, String>,
    /// How often a `ScheduleV2` event invokes it, from `rate(N minute[s]|second[s]|hour[s])`.
    pub schedule: Option<std::time::Duration>,
    /// `MemorySize` (the function's or Globals'), which Lambda bills per GB-second.
    pub memory_mb: u32,
    /// `Timeout` (the function's or Globals'): each invocation's deadline is this far away.
    pub timeout: std::time::Duration,
}

/// The stack name the local runtime stands in for `AWS::StackName` (its one stack).
pub const LOCAL_STACK_NAME: &str = "stockguard";

#[derive(Debug, Clone)]
pub struct StackSpec {
    /// Every parameter's default, and the pseudo parameter `AWS::StackName` as
    /// [`LOCAL_STACK_NAME`].
    pub parameters: BTreeMap<String, String>,
    pub table: TableSpec,
    pub bus_logical_id: String,
    /// The parameter (or pseudo parameter) whose value names the bus, the template's conditions
    /// evaluated on the defaults.
    pub bus_name_parameter: String,
    pub queues: Vec<QueueSpec>,
    pub rules: Vec<RuleSpec>,
    pub functions: Vec<FunctionSpec>,
}

impl StackSpec {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// The template at the workspace root (`template.yaml`).
    pub fn load_default() -> Result<Self> {
        Self::load(&workspace_root().join("template.yaml"))
    }

    /// The template at the workspace root with some parameters given values, as a deployment
    /// passes them.
    pub fn load_default_with(parameters: &[(&str, &str)]) -> Result<Self> {
        let path = workspace_root().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse_with(&text, parameters)
    }

    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with(text, &[])
    }

    /// Parses the template with `given` parameter values over the defaults; the template's
    /// conditions are evaluated on them, and a resource whose condition is false is left out.
    pub fn parse_with(text: &str, given: &[(&str, &str)]) -> Result<Self> {
        let doc: Value = serde_yaml::from_str(text).context("template.yaml is not valid YAML")?;
        let mut parameters = BTreeMap::new();
        if let Some(params) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (k, v) in params {
                let name = k.as_str().unwrap_or_default().to_owned();
                let default = match v.get("Default") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                parameters.insert(name, default);
            }
        }
        for (name, value) in given {
            if !parameters.contains_key(*name) {
                bail!("the template has no parameter {name}");
            }
            parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        parameters.insert("AWS::StackName".to_owned(), LOCAL_STACK_NAME.to_owned());
        let conditions = doc
            .get("Conditions")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let globals = doc.get("Globals").and_then(|g| g.get("Function"));
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| anyhow!("template has no Resources"))?;
        let mut table = None;
        let mut bus = None;
        let mut queues = Vec::new();
        let mut rules = Vec::new();
        let mut functions = Vec::new();
        for (id, res) in resources {
            let id = id.as_str().unwrap_or_default().to_owned();
            if let Some(name) = res.get("Condition").and_then(Value::as_str)
                && !condition(name, &conditions, &parameters, 0)
                    .with_context(|| format!("{id}: its condition"))?
            {
                continue;
            }
            let props = res.get("Properties").cloned().unwrap_or(Value::Null);
            match res.get("Type").and_then(Value::as_str).unwrap_or_default() {
                "AWS::DynamoDB::Table" => table = Some(parse_table(&id, &props)?),
                "AWS::Events::EventBus" => {
                    let name = props
                        .get("Name")
                        .ok_or_else(|| anyhow!("{id}: no Name"))
                        .and_then(|n| named_by(n, &conditions, &parameters))
                        .with_context(|| {
                            format!("{id}: Name must be !Ref a parameter, or !If between them")
                        })?;
                    bus = Some((id, name));
                }
                "AWS::SQS::Queue" => queues.push(parse_queue(&id, &props, &parameters)?),
                "AWS::Events::Rule" => rules.push(parse_rule(&id, &props, &parameters)?),
                "AWS::Serverless::Function" => {
                    functions.push(parse_function(&id, res, &props, globals, &parameters)?)
                }
                _ => {}
            }
        }
        let table = table.ok_or_else(|| anyhow!("template declares no DynamoDB table"))?;
        let (bus_logical_id, bus_name_parameter) =
            bus.ok_or_else(|| anyhow!("template declares no event bus"))?;
        Ok(Self {
            parameters,
            table,
            bus_logical_id,
            bus_name_parameter,
            queues,
            rules,
            functions,
        })
    }

    pub fn queue(&self, logical_id: &str) -> Option<&QueueSpec> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    /// The detail-types that rules deliver to `queue`.
    pub fn detail_types_into(&self, queue: &str) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.targets.iter().any(|t| t.queue == queue))
            .flat_map(|r| {
                r.pattern["detail-type"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// The workspace root, found from this crate's manifest directory at build time or the current
/// directory's ancestors at run time.
pub fn workspace_root() -> std::path::PathBuf {
    let from_build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if from_build.join("template.yaml").exists() {
        return from_build.canonicalize().unwrap_or(from_build);
    }
    let mut dir = std::env::current_dir().unwrap_or_default();
    while !dir.join("template.yaml").exists() {
        if !dir.pop() {
            break;
        }
    }
    dir
}

fn tag_of(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// `!Ref X` → X.
pub fn ref_target(v: &Value) -> Option<String> {
    match tag_of(v) {
        Some((tag, Value::String(s))) if tag == "Ref" => Some(s.clone()),
        _ => v.get("Ref").and_then(Value::as_str).map(str::to_owned),
    }
}

/// `!GetAtt X.Arn` → X.
pub fn arn_target(v: &Value) -> Option<String> {
    match tag_of(v) {
        Some((tag, Value::String(s))) if tag == "GetAtt" => {
            s.strip_suffix(".Arn").map(str::to_owned)
        }
        _ => None,
    }
}

/// The parameter a value takes: `!Ref P`, or `!If [Condition, a, b]` of such values with the
/// condition evaluated on the defaults.
fn named_by(
    v: &Value,
    conditions: &serde_yaml::Mapping,
    parameters: &BTreeMap<String, String>,
) -> Result<String> {
    if let Some(target) = ref_target(v) {
        return if parameters.contains_key(&target) {
            Ok(target)
        } else {
            Err(anyhow!("!Ref {target} is not a parameter"))
        };
    }
    match intrinsic(v) {
        Some((f, Value::Sequence(args))) if f == "If" && args.len() == 3 => {
            let name = args[0]
                .as_str()
                .ok_or_else(|| anyhow!("!If names no condition"))?;
            let branch = if condition(name, conditions, parameters, 0)? {
                &args[1]
            } else {
                &args[2]
            };
            named_by(branch, conditions, parameters)
        }
        _ => Err(anyhow!("unsupported value {v:?}")),
    }
}

/// An intrinsic function as (name without `!` or `Fn::`, argument), in short or long form.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            let name = k.strip_prefix("Fn::").or((k == "Condition").then_some(k))?;
            Some((name.to_owned(), arg))
        }
        _ => tag_of(v),
    }
}

/// Evaluates the template condition `name` on the parameters' defaults.
fn condition(
    name: &str,
    conditions: &serde_yaml::Mapping,
    parameters: &BTreeMap<String, String>,
    depth: usize,
) -> Result<bool> {
    if depth > 16 {
        bail!("condition {name} refers to itself");
    }
    let body = conditions
        .get(name)
        .ok_or_else(|| anyhow!("no condition {name}"))?;
    evaluate(body, conditions, parameters, depth + 1)
        .with_context(|| format!("evaluating condition {name}"))
}

fn evaluate(
    v: &Value,
    conditions: &serde_yaml::Mapping,
    parameters: &BTreeMap<String, String>,
    depth: usize,
) -> Result<bool> {
    let Some((function, arg)) = intrinsic(v) else {
        bail!("unsupported condition {v:?}");
    };
    let args = arg.as_sequence().map(Vec::as_slice).unwrap_or_default();
    match (function.as_str(), args) {
        ("Equals", [a, b]) => Ok(scalar(a, parameters)? == scalar(b, parameters)?),
        ("Not", [c]) => Ok(!evaluate(c, conditions, parameters, depth)?),
        ("And", all) => all.iter().try_fold(true, |acc, c| {
            Ok(acc && evaluate(c, conditions, parameters, depth)?)
        }),
        ("Or", any) => any.iter().try_fold(false, |acc, c| {
            Ok(acc || evaluate(c, conditions, parameters, depth)?)
        }),
        ("Condition", _) => match arg.as_str() {
            Some(name) => condition(name, conditions, parameters, depth),
            None => bail!("!Condition names no condition"),
        },
        _ => bail!("unsupported condition {v:?}"),
    }
}

/// A literal, or `!Ref` of a parameter (its default), as text.
fn scalar(v: &Value, parameters: &BTreeMap<String, String>) -> Result<String> {
    if let Some(target) = ref_target(v) {
        return parameters
            .get(&target)
            .cloned()
            .ok_or_else(|| anyhow!("!Ref {target} is not a parameter"));
    }
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("unsupported value {other:?}"),
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_table(id: &str, props: &Value) -> Result<TableSpec> {
    let pairs = |list: &str, a: &str, b: &str| key_pairs(props, list, a, b);
    let indexes = props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|gsi| IndexSpec {
            name: gsi
                .get("IndexName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            key_schema: key_pairs(gsi, "KeySchema", "AttributeName", "KeyType"),
            projection: gsi
                .get("Projection")
                .and_then(|p| p.get("ProjectionType"))
                .and_then(Value::as_str)
                .unwrap_or("ALL")
                .to_owned(),
            non_key_attributes: gsi
                .get("Projection")
                .and_then(|p| p.get("NonKeyAttributes"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    let ttl = props.get("TimeToLiveSpecification");
    let ttl_attribute = ttl
        .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
        .and_then(|t| t.get("AttributeName"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let key_schema = pairs("KeySchema", "AttributeName", "KeyType");
    if key_schema.is_empty() {
        bail!("{id}: no KeySchema");
    }
    Ok(TableSpec {
        logical_id: id.to_owned(),
        key_schema,
        attributes: pairs("AttributeDefinitions", "AttributeName", "AttributeType"),
        ttl_attribute,
        indexes,
    })
}

/// `[{a: .., b: ..}, ..]` under `list` as pairs.
fn key_pairs(v: &Value, list: &str, a: &str, b: &str) -> Vec<(String, String)> {
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    v.get(list)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|e| (text(e, a), text(e, b)))
        .collect()
}

fn parse_queue(
    id: &str,
    props: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<QueueSpec> {
    let redrive = match props.get("RedrivePolicy") {
        None => None,
        Some(r) => {
            let dlq = r
                .get("deadLetterTargetArn")
                .and_then(arn_target)
                .ok_or_else(|| anyhow!("{id}: deadLetterTargetArn must be !GetAtt Q.Arn"))?;
            let max = int_or_parameter(r.get("maxReceiveCount"), parameters)
                .ok_or_else(|| anyhow!("{id}: maxReceiveCount missing"))?;
            Some((dlq, max))
        }
    };
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        visibility_timeout: int(props.get("VisibilityTimeout")),
        retention_seconds: int(props.get("MessageRetentionPeriod")),
        redrive,
    })
}

fn parse_rule(id: &str, props: &Value, parameters: &BTreeMap<String, String>) -> Result<RuleSpec> {
    // `!Ref` the stack's bus (a resource), or `!Ref` a parameter naming another bus.
    let event_bus = props
        .get("EventBusName")
        .and_then(ref_target)
        .and_then(|target| parameters.get(&target).cloned());
    let pattern: Json = serde_json::to_value(
        props
            .get("EventPattern")
            .ok_or_else(|| anyhow!("{id}: no EventPattern"))?,
    )
    .with_context(|| format!("{id}: EventPattern is not plain data"))?;
    let mut targets = Vec::new();
    for t in props
        .get("Targets")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let queue = t
            .get("Arn")
            .and_then(arn_target)
            .ok_or_else(|| anyhow!("{id}: target Arn must be !GetAtt Q.Arn"))?;
        targets.push(RuleTarget {
            id: t
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or("target")
                .to_owned(),
            queue,
            dead_letter_queue: t
                .get("DeadLetterConfig")
                .and_then(|d| d.get("Arn"))
                .and_then(arn_target),
        });
    }
    Ok(RuleSpec {
        logical_id: id.to_owned(),
        event_bus,
        pattern,
        targets,
    })
}

fn parse_function(
    id: &str,
    res: &Value,
    props: &Value,
    globals: Option<&Value>,
    parameters: &BTreeMap<String, String>,
) -> Result<FunctionSpec> {
    let globals_env = globals
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"));
    // Lambda's default when neither the function nor Globals sets it.
    let memory_mb = int(props.get("MemorySize"))
        .or_else(|| int(globals.and_then(|g| g.get("MemorySize"))))
        .unwrap_or(128) as u32;
    // Lambda's default, 3 seconds, when neither sets it.
    let timeout = int(props.get("Timeout"))
        .or_else(|| int(globals.and_then(|g| g.get("Timeout"))))
        .map_or(std::time::Duration::from_secs(3), |s| {
            std::time::Duration::from_secs(s.max(1) as u64)
        });
    let binary = res
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{id}: Metadata.BuildProperties.Binary is required"))?
        .to_owned();
    let mut env_refs = BTreeMap::new();
    let mut env_values = BTreeMap::new();
    let own_env = props.get("Environment").and_then(|e| e.get("Variables"));
    for vars in [globals_env, own_env].into_iter().flatten() {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            match (k.as_str(), ref_target(v), v.as_str()) {
                (Some(k), Some(target), _) => {
                    env_refs.insert(k.to_owned(), target);
                }
                (Some(k), None, Some(value)) => {
                    env_values.insert(k.to_owned(), value.to_owned());
                }
                _ => {}
            }
        }
    }
    let mut queue_event = None;
    let mut schedule = None;
    for (_, ev) in props
        .get("Events")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        if ev.get("Type").and_then(Value::as_str) == Some("ScheduleV2") {
            let expr = ev
                .get("Properties")
                .and_then(|p| p.get("ScheduleExpression"))
                .map(|v| substitute(v, parameters))
                .unwrap_or_default();
            schedule = Some(
                parse_rate(&expr).ok_or_else(|| anyhow!("{id}: unsupported schedule {expr:?}"))?,
            );
            continue;
        }
        if ev.get("Type").and_then(Value::as_str) != Some("SQS") {
            continue;
        }
        let p = ev.get("Properties").cloned().unwrap_or(Value::Null);
        let queue = p
            .get("Queue")
            .and_then(arn_target)
            .ok_or_else(|| anyhow!("{id}: SQS event Queue must be !GetAtt Q.Arn"))?;
        let responses = p
            .get("FunctionResponseTypes")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        queue_event = Some(QueueEventSpec {
            queue,
            batch_size: int(p.get("BatchSize")).unwrap_or(10) as i32,
            batching_window_seconds: int(p.get("MaximumBatchingWindowInSeconds")).unwrap_or(0),
            report_batch_item_failures: responses
                .iter()
                .any(|r| r.as_str() == Some("ReportBatchItemFailures")),
            maximum_concurrency: p
                .get("ScalingConfig")
                .and_then(|s| s.get("MaximumConcurrency"))
                .and_then(|v| int_or_parameter(Some(v), parameters))
                .map(|n| n.max(1) as usize),
        });
    }
    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        binary,
        queue_event,
        env_refs,
        env_values,
        schedule,
        memory_mb,
        timeout,
    })
}

/// A number, or `!Ref` of a parameter (its default).
fn int_or_parameter(v: Option<&Value>, parameters: &BTreeMap<String, String>) -> Option<i64> {
    match ref_target(v?) {
        Some(param) => parameters.get(&param).and_then(|d| d.parse().ok()),
        None => int(v),
    }
}

/// A plain string, or `!Sub` with `${Parameter}`s replaced by their defaults.
fn substitute(v: &Value, parameters: &BTreeMap<String, String>) -> String {
    let raw = match tag_of(v) {
        Some((tag, Value::String(s))) if tag == "Sub" => s.clone(),
        _ => v.as_str().unwrap_or_default().to_owned(),
    };
    parameters
        .iter()
        .fold(raw, |acc, (k, val)| acc.replace(&format!("${{{k}}}"), val))
}

/// `rate(5 minutes)` → 300 s.
fn parse_rate(expr: &str) -> Option<std::time::Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projects_template() {
        let spec = StackSpec::load_default().unwrap();
        // The bus keeps the name producers are given unless EventBusName says otherwise.
        assert_eq!(spec.parameters["EventBusName"], "stockguard");
        assert_eq!(spec.bus_name_parameter, "EventBusName");
        assert_eq!(spec.parameters[&spec.bus_name_parameter], "stockguard");
        assert_eq!(spec.table.ttl_attribute.as_deref(), Some("ttl"));
        assert_eq!(
            parse_rate("rate(1 minute)"),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(
            parse_rate("rate(15 minutes)"),
            Some(std::time::Duration::from_secs(900))
        );
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        for dt in stockguard_domain::inbound::INBOUND_DETAIL_TYPES {
            let f = spec
                .functions
                .iter()
                .find(|f| f.logical_id == format!("{dt}Function"))
                .expect(dt);
            let q = f.queue_event.as_ref().expect("queue event");
            assert!(
                q.report_batch_item_failures,
                "{dt}: ReportBatchItemFailures"
            );
            assert_eq!(spec.detail_types_into(&q.queue), vec![dt.to_owned()]);
            let queue = spec.queue(&q.queue).unwrap();
            assert!(queue.redrive.is_some(), "{dt}: queue has a redrive policy");
            assert_eq!(
                f.env_refs["STOCKGUARD_DLQ_URL"],
                queue.redrive.as_ref().unwrap().0
            );
        }
    }

    const MINIMAL: &str = r#"
Parameters:
  BusName: { Type: String, Default: "" }
  Budget: { Type: Number, Default: 4 }
Conditions:
  HasBusName: !Not [!Equals [!Ref BusName, ""]]
  Both: !And [!Condition HasBusName, !Equals [!Ref Budget, 4]]
  Either: { "Fn::Or": [{ Condition: HasBusName }, { "Fn::Equals": [{ Ref: Budget }, "4"] }] }
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    Properties:
      KeySchema: [{ AttributeName: pk, KeyType: HASH }]
      AttributeDefinitions: [{ AttributeName: pk, AttributeType: S }]
      SSESpecification: { SSEEnabled: !If [HasBusName, true, false] }
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !If [HasBusName, !Ref BusName, !Ref AWS::StackName]
  Archive:
    Type: AWS::Events::Archive
    Properties: { SourceArn: !GetAtt Bus.Arn, EventPattern: { source: [x] } }
  Topic: { Type: AWS::SNS::Topic, Condition: HasBusName }
  Logs: { Type: AWS::Logs::LogGroup, Properties: { RetentionInDays: 30 } }
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: { MetricName: Errors, Namespace: AWS/Lambda, Threshold: 0 }
  Registry:
    Type: AWS::EventSchemas::Registry
    Properties: { RegistryName: !Sub "${AWS::StackName}-events" }
  Schema:
    Type: AWS::EventSchemas::Schema
    Properties: { RegistryName: !GetAtt Registry.RegistryName, Type: OpenApi3, Content: "{}" }
  Dlq: { Type: AWS::SQS::Queue }
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: { deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: !Ref Budget }
"#;

    #[test]
    fn evaluates_conditions_on_the_defaults_and_ignores_what_it_does_not_emulate() {
        let spec = StackSpec::parse(MINIMAL).unwrap();
        assert_eq!(spec.bus_name_parameter, "AWS::StackName");
        assert_eq!(spec.parameters["AWS::StackName"], LOCAL_STACK_NAME);
        assert_eq!(
            spec.queues.len(),
            2,
            "the archive, topic, log group, alarm and schema registry are skipped"
        );
        assert!(spec.rules.is_empty(), "an archive is not a rule");
        assert_eq!(
            spec.queue("Queue").unwrap().redrive,
            Some(("Dlq".into(), 4))
        );

        let named = StackSpec::parse(&MINIMAL.replace(r#"Default: """#, "Default: shop")).unwrap();
        assert_eq!(named.bus_name_parameter, "BusName");

        let doc: Value = serde_yaml::from_str(MINIMAL).unwrap();
        let conditions = doc["Conditions"].as_mapping().unwrap();
        let mut parameters = BTreeMap::from([("BusName".to_owned(), String::new())]);
        parameters.insert("Budget".into(), "4".into());
        assert!(!condition("HasBusName", conditions, &parameters, 0).unwrap());
        assert!(!condition("Both", conditions, &parameters, 0).unwrap());
        assert!(condition("Either", conditions, &parameters, 0).unwrap());
        parameters.insert("BusName".into(), "shop".into());
        assert!(condition("Both", conditions, &parameters, 0).unwrap());
        assert!(condition("Missing", conditions, &parameters, 0).is_err());

        let unsupported = MINIMAL.replace(
            "!If [HasBusName, !Ref BusName, !Ref AWS::StackName]",
            "!Sub x",
        );
        assert!(StackSpec::parse(&unsupported).is_err());
    }

    #[test]
    fn a_conditional_resource_is_there_only_when_the_given_parameters_make_it_so() {
        let text = MINIMAL
            .replace(
                "Conditions:\n",
                "  PartnerBus: { Type: String, Default: \"\" }\nConditions:\n  HasPartner: !Not [!Equals [!Ref PartnerBus, \"\"]]\n",
            )
            .replace(
                "Resources:\n",
                r#"Resources:
  PartnerRule:
    Type: AWS::Events::Rule
    Condition: HasPartner
    Properties:
      EventBusName: !Ref PartnerBus
      EventPattern: { detail-type: [shopifyWebhook] }
      Targets: [{ Id: queue, Arn: !GetAtt Queue.Arn }]
  OwnRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: { detail-type: [X] }
      Targets: [{ Id: queue, Arn: !GetAtt Queue.Arn }]
"#,
            );
        let by_default = StackSpec::parse(&text).unwrap();
        let ids: Vec<&str> = by_default
            .rules
            .iter()
            .map(|r| r.logical_id.as_str())
            .collect();
        assert_eq!(ids, ["OwnRule"]);
        assert_eq!(by_default.rules[0].event_bus, None, "on the stack's bus");

        let partner = "aws.partner/shopify.com/1/src";
        let given = StackSpec::parse_with(&text, &[("PartnerBus", partner)]).unwrap();
        let rule = given
            .rules
            .iter()
            .find(|r| r.logical_id == "PartnerRule")
            .expect("the rule its condition now admits");
        assert_eq!(rule.event_bus.as_deref(), Some(partner));
        assert_eq!(given.parameters["PartnerBus"], partner);
        assert!(StackSpec::parse_with(&text, &[("Nope", "x")]).is_err());
    }
}
