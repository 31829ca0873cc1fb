//! The event schemas are generated from the types in `stockguard_domain::wire` and checked in twice:
//! `schemas/<DetailType>.json` and the schema registry in `template.yaml`. This test fails when
//! either differs from what the types generate, and `UPDATE_SCHEMAS=1` rewrites both:
//!
//! ```text
//! UPDATE_SCHEMAS=1 cargo test -p stockguard-domain --test schemas
//! ```
//!
//! It also checks the schemas against behaviour: every example in `docs/events.md` matches its
//! schema (and every inbound one is accepted by `parse_inbound`), and for every property of an
//! inbound schema, `parse_inbound` requires exactly the ones the schema requires and reads each
//! one (a wrong value is reported on that field).
//!
//! The schemas are checked by a small validator below rather than the `jsonschema` crate, which
//! turns on features of crates the AWS SDK is built on and would rebuild it for the workspace's
//! test builds. It knows exactly the keywords the generated schemas use and fails on any other, so
//! a schema cannot carry a rule that nothing checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};
use stockguard_domain::inbound::{INBOUND_DETAIL_TYPES, parse_inbound};
use stockguard_domain::types::parse_timestamp;
use stockguard_domain::wire::events;
use stockguard_domain::wire::schema::{TEMPLATE_BEGIN, TEMPLATE_END, template_resources};

const REGENERATE: &str = "UPDATE_SCHEMAS=1 cargo test -p stockguard-domain --test schemas";

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn updating() -> bool {
    std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1")
}

#[test]
fn the_checked_in_schema_files_are_what_the_types_generate() {
    let events = events();
    let mut wrong = Vec::new();
    for event in &events {
        let name = event.file_name();
        let expected = event.detail_schema_file();
        let found = std::fs::read_to_string(repo_file(&name)).ok();
        if found.as_deref() == Some(expected.as_str()) {
            continue;
        }
        if updating() {
            std::fs::write(repo_file(&name), &expected).unwrap();
        } else {
            let what = if found.is_some() {
                "differs from"
            } else {
                "is missing; it is"
            };
            wrong.push(format!(
                "{name} {what} what shared/domain/src/wire.rs generates"
            ));
        }
    }
    let known: BTreeSet<String> = events.iter().map(|e| e.file_name()).collect();
    for entry in std::fs::read_dir(repo_file("schemas")).expect("the schemas/ directory") {
        let name = format!("schemas/{}", entry.unwrap().file_name().to_string_lossy());
        if !known.contains(&name) {
            if updating() {
                std::fs::remove_file(repo_file(&name)).unwrap();
            } else {
                wrong.push(format!("{name} is the schema of no event type"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\nRegenerate with `{REGENERATE}` and review the diff.",
        wrong.join("\n")
    );
}

#[test]
fn the_template_registry_is_what_the_types_generate() {
    let events = events();
    let template = read("template.yaml");
    let start = template
        .find(TEMPLATE_BEGIN)
        .unwrap_or_else(|| panic!("template.yaml has no line {TEMPLATE_BEGIN:?}"))
        + TEMPLATE_BEGIN.len();
    let end = start
        + template[start..]
            .find(TEMPLATE_END)
            .unwrap_or_else(|| panic!("template.yaml has no line {TEMPLATE_END:?}"));
    let expected = template_resources(&events);
    let mut template = template.clone();
    if template[start..end] != expected {
        if updating() {
            template = format!("{}{expected}{}", &template[..start], &template[end..]);
            std::fs::write(repo_file("template.yaml"), &template).unwrap();
        } else {
            panic!(
                "the event schemas in template.yaml differ from what shared/domain/src/wire.rs \
                 generates.\nRegenerate with `{REGENERATE}` and review the diff."
            );
        }
    }
    // What CloudFormation reads: each schema's `Content` is exactly the generated document.
    let doc: serde_yaml::Value = serde_yaml::from_str(&template).expect("template.yaml is YAML");
    for event in &events {
        let id = format!("{}EventSchema", event.detail_type);
        let props = &doc["Resources"][id.as_str()]["Properties"];
        assert_eq!(
            props["SchemaName"].as_str(),
            Some(event.detail_type),
            "{id}"
        );
        assert_eq!(props["Type"].as_str(), Some("OpenApi3"), "{id}");
        let content: Value = serde_json::from_str(props["Content"].as_str().expect("Content"))
            .unwrap_or_else(|e| panic!("{id}: Content is not JSON: {e}"));
        assert_eq!(content, event.registry_schema(), "{id}");
        let detail = &content["components"]["schemas"]["AWSEvent"]["properties"]["detail"];
        assert_eq!(
            detail["$ref"],
            json!(format!("#/components/schemas/{}", event.detail_type)),
            "{id}: the event's detail is its type"
        );
    }
}

#[test]
fn every_event_of_the_contract_has_a_schema() {
    let events = events();
    let inbound: Vec<&str> = events
        .iter()
        .filter(|e| e.is_inbound())
        .map(|e| e.detail_type)
        .collect();
    assert_eq!(inbound, INBOUND_DETAIL_TYPES);
    let published: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| e.source.map(|s| (e.detail_type, s)))
        .collect();
    // The published table of docs/events.md, which follows the contract.
    let docs = read("docs/events.md");
    let table = &docs[docs.find("| source | detail-type | when |").unwrap()..];
    let documented: BTreeSet<(String, String)> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let detail_type = cells[2].split('`').nth(1).unwrap().to_owned();
            (detail_type, cells[1].trim_matches('`').to_owned())
        })
        .collect();
    let generated: BTreeSet<(String, String)> = published
        .iter()
        .map(|(d, s)| ((*d).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(generated, documented);
}

/// Every ```json block of docs/events.md under its `### DetailType` heading.
fn documented_examples() -> BTreeMap<String, Value> {
    let docs = read("docs/events.md");
    let mut examples = BTreeMap::new();
    let mut heading = String::new();
    let mut lines = docs.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("### ") {
            heading = h.trim().to_owned();
        } else if line == "```json" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            let value: Value = serde_json::from_str(&block.join("\n"))
                .unwrap_or_else(|e| panic!("docs/events.md, {heading}: example is not JSON: {e}"));
            assert!(
                examples.insert(heading.clone(), value).is_none(),
                "docs/events.md, {heading}: one example per event"
            );
        }
    }
    examples
}

#[test]
fn the_documented_examples_match_their_schemas() {
    let examples = documented_examples();
    let docs = read("docs/events.md");
    for event in events() {
        let dt = event.detail_type;
        let example = examples
            .get(dt)
            .unwrap_or_else(|| panic!("docs/events.md has no example under `### {dt}`"));
        let schema = event.detail_schema();
        let errors = Validator::new(&schema).check(example);
        assert!(errors.is_empty(), "docs/events.md, {dt}: {errors:?}");
        if event.is_inbound() {
            parse_inbound(dt, example).unwrap_or_else(|e| panic!("docs/events.md, {dt}: {e}"));
        }
        let link = format!("](../{})", event.file_name());
        assert!(
            docs.contains(&link),
            "docs/events.md does not link {dt} to its schema"
        );
    }
}

/// The documented example of each inbound type with every optional property set.
fn full_inbound_examples() -> Vec<(&'static str, Value)> {
    let examples = documented_examples();
    events()
        .into_iter()
        .filter(|e| e.is_inbound())
        .map(|e| {
            let mut example = examples[e.detail_type].clone();
            example["sequence"] = json!(3);
            if e.detail_type == "OrderShipped" {
                example["lines"] = json!([{"sku": "TEE-RED-M", "quantity": 1}]);
            }
            (e.detail_type, example)
        })
        .collect()
}

#[test]
fn inbound_schemas_require_and_name_what_parse_inbound_requires_and_reads() {
    for (dt, full) in full_inbound_examples() {
        let event = events().into_iter().find(|e| e.detail_type == dt).unwrap();
        let schema = event.detail_schema();
        let validator = Validator::new(&schema);
        let properties: BTreeSet<&String> =
            schema["properties"].as_object().unwrap().keys().collect();
        let set: BTreeSet<&String> = full.as_object().unwrap().keys().collect();
        assert_eq!(properties, set, "{dt}: the example sets every property");
        assert!(validator.check(&full).is_empty(), "{dt}");
        parse_inbound(dt, &full).unwrap_or_else(|e| panic!("{dt}: {e}"));
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for property in properties {
            // Absent, and `null`, which the contract reads as absent.
            for null in [false, true] {
                let mut detail = full.clone();
                let fields = detail.as_object_mut().unwrap();
                if null {
                    fields.insert(property.clone(), Value::Null);
                } else {
                    fields.remove(property.as_str());
                }
                let parsed = parse_inbound(dt, &detail);
                let valid = validator.check(&detail).is_empty();
                if required.contains(property.as_str()) {
                    let e = parsed.expect_err(&format!("{dt} without {property}"));
                    assert_eq!(
                        (e.code, e.field.as_str()),
                        ("missing_field", property.as_str())
                    );
                    assert!(!valid, "{dt}: the schema requires {property}");
                } else {
                    parsed.unwrap_or_else(|e| panic!("{dt} without {property}: {e}"));
                    assert!(valid, "{dt}: the schema does not require {property}");
                }
            }
            // A value no field accepts is reported on that field: the parser reads it by this name.
            let mut detail = full.clone();
            detail[property.as_str()] = json!({"not": "a value"});
            let e = parse_inbound(dt, &detail).expect_err(&format!("{dt} with a bad {property}"));
            assert_eq!(e.field, *property, "{dt}");
            assert!(!validator.check(&detail).is_empty(), "{dt}: {property}");
        }
    }
}

#[test]
fn the_schema_check_rejects_what_it_should() {
    let schema = |dt: &str| {
        events()
            .into_iter()
            .find(|e| e.detail_type == dt)
            .unwrap()
            .detail_schema()
    };
    let received = schema("StockReceived");
    let ok = json!({"event_id": "e-1", "occurred_at": "2026-11-27T10:00:00Z", "sku": "A", "quantity": 1});
    assert!(Validator::new(&received).check(&ok).is_empty());
    let bad = [
        json!({"event_id": "e 1"}),
        json!({"occurred_at": "yesterday"}),
        json!({"sku": "x".repeat(65)}),
        json!({"quantity": 0}),
        json!({"quantity": 1.5}),
        json!({"quantity": "1"}),
        json!({"reference": ""}),
        json!({"sequence": -1}),
    ];
    for change in bad {
        let mut detail = ok.clone();
        for (k, v) in change.as_object().unwrap() {
            detail[k] = v.clone();
        }
        assert!(
            !Validator::new(&received).check(&detail).is_empty(),
            "{change}"
        );
    }
    let requested = schema("ReservationRequested");
    let lines = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
            .collect()
    };
    let cart = |lines: Value| {
        json!({"event_id": "e", "occurred_at": "2026-11-27T10:00:00Z",
        "reservation_id": "r", "channel": "web", "lines": lines})
    };
    assert!(
        Validator::new(&requested)
            .check(&cart(lines(25)))
            .is_empty()
    );
    assert!(!Validator::new(&requested).check(&cart(lines(0))).is_empty());
    assert!(
        !Validator::new(&requested)
            .check(&cart(lines(26)))
            .is_empty()
    );
    assert!(
        !Validator::new(&requested)
            .check(&cart(json!([{"sku": "A"}])))
            .is_empty()
    );
    let signal = schema("DemandSignal");
    let base = json!({"event_id": "e", "occurred_at": "2026-11-27T10:00:00Z", "sku": "A",
        "signal": "search_volume", "strength": 0.5});
    assert!(Validator::new(&signal).check(&base).is_empty());
    for (field, value) in [("strength", json!(0)), ("signal", json!("rumour"))] {
        let mut detail = base.clone();
        detail[field] = value;
        assert!(
            !Validator::new(&signal).check(&detail).is_empty(),
            "{field}"
        );
    }
    let adjusted = schema("StockAdjusted");
    let zero = json!({"event_id": "e", "occurred_at": "2026-11-27T10:00:00Z", "sku": "A",
        "delta": 0, "reason": "x"});
    assert!(!Validator::new(&adjusted).check(&zero).is_empty());
    let unknown = json!({"type": "string", "contentEncoding": "base64"});
    let errors = Validator::new(&unknown).check(&json!("x"));
    assert!(
        errors.iter().any(|e| e.contains("contentEncoding")),
        "{errors:?}"
    );
    // The published examples' nested types are checked through `$ref` too.
    let position = schema("InventoryPositionChanged");
    let mut example = documented_examples()["InventoryPositionChanged"].clone();
    example["cause"]
        .as_object_mut()
        .unwrap()
        .remove("detail_type");
    assert!(!Validator::new(&position).check(&example).is_empty());
}

/// Checks a value against one generated draft 2020-12 schema; `$ref`s point into its `$defs`.
struct Validator<'a> {
    root: &'a Value,
}

impl<'a> Validator<'a> {
    fn new(root: &'a Value) -> Self {
        Self { root }
    }

    /// Every violation, each with the JSON pointer of the value; empty when it matches.
    fn check(&self, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check_at(self.root, value, "", &mut errors);
        errors
    }

    fn check_at(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(schema) = schema.as_object() else {
            errors.push(format!("{at}: schema is not an object"));
            return;
        };
        macro_rules! fail {
            ($($arg:tt)*) => { errors.push(format!("{at}: {}", format!($($arg)*))) };
        }
        for (keyword, rule) in schema {
            match keyword.as_str() {
                "$schema" | "$defs" | "title" | "description" => {}
                "$ref" => {
                    let name = rule.as_str().and_then(|r| r.strip_prefix("#/$defs/"));
                    match name.and_then(|n| self.root["$defs"].get(n)) {
                        Some(target) => self.check_at(target, value, at, errors),
                        None => fail!("unresolvable $ref {rule}"),
                    }
                }
                "type" => {
                    let types: Vec<&str> = match rule {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => vec![],
                    };
                    if !types.iter().any(|t| is_type(value, t)) {
                        fail!("{value} is not of type {rule}");
                    }
                }
                "properties" => {
                    if let (Some(props), Some(obj)) = (rule.as_object(), value.as_object()) {
                        for (name, sub) in props {
                            if let Some(v) = obj.get(name) {
                                self.check_at(sub, v, &format!("{at}/{name}"), errors);
                            }
                        }
                    }
                }
                "required" => {
                    if let Some(obj) = value.as_object() {
                        for name in rule.as_array().into_iter().flatten() {
                            let name = name.as_str().unwrap_or_default();
                            if !obj.contains_key(name) {
                                fail!("`{name}` is required");
                            }
                        }
                    }
                }
                "items" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.check_at(rule, item, &format!("{at}/{i}"), errors);
                    }
                }
                "minItems" | "maxItems" | "minLength" | "maxLength" => {
                    let n = match (value.as_array(), value.as_str()) {
                        (Some(items), _) if keyword.ends_with("Items") => items.len(),
                        (_, Some(s)) if keyword.ends_with("Length") => s.chars().count(),
                        _ => continue,
                    } as u64;
                    let bound = rule.as_u64().unwrap_or_default();
                    if (keyword.starts_with("min") && n < bound)
                        || (keyword.starts_with("max") && n > bound)
                    {
                        fail!("{n} breaks {keyword} {bound}");
                    }
                }
                "minimum" | "maximum" | "exclusiveMinimum" => {
                    if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                        let broken = match keyword.as_str() {
                            "minimum" => n < bound,
                            "maximum" => n > bound,
                            _ => n <= bound,
                        };
                        if broken {
                            fail!("{value} breaks {keyword} {rule}");
                        }
                    }
                }
                "pattern" => {
                    if let Some(s) = value.as_str() {
                        match char_class_pattern(rule.as_str().unwrap_or_default()) {
                            Some(allowed) if !s.is_empty() && s.chars().all(&allowed) => {}
                            Some(_) => fail!("{s:?} does not match {rule}"),
                            None => fail!("pattern {rule} is not of the form ^[...]+$"),
                        }
                    }
                }
                "format" => match rule.as_str().unwrap_or_default() {
                    "date-time" => {
                        if value.as_str().is_some_and(|s| parse_timestamp(s).is_none()) {
                            fail!("{value} is not an RFC 3339 date-time");
                        }
                    }
                    // Annotations of the Rust integer and float widths; `type` and the bounds
                    // carry the rules.
                    "int64" | "uint64" | "uint32" | "double" => {}
                    other => fail!("unknown format {other}"),
                },
                "enum" => {
                    if !rule
                        .as_array()
                        .is_some_and(|options| options.contains(value))
                    {
                        fail!("{value} is not one of {rule}");
                    }
                }
                "const" => {
                    if rule != value {
                        fail!("{value} is not {rule}");
                    }
                }
                "not" => {
                    let mut inner = Vec::new();
                    self.check_at(rule, value, at, &mut inner);
                    if inner.is_empty() {
                        fail!("{value} matches `not` {rule}");
                    }
                }
                other => fail!("keyword `{other}` is not understood by this check"),
            }
        }
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// The one pattern shape the identifiers use, `^[CLASS]+$`, over literals and `a-z` ranges.
fn char_class_pattern(pattern: &str) -> Option<impl Fn(char) -> bool> {
    let class: Vec<char> = pattern
        .strip_prefix("^[")?
        .strip_suffix("]+$")?
        .chars()
        .collect();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < class.len() {
        if ['\\', '[', ']', '^'].contains(&class[i]) {
            return None;
        }
        if i + 2 < class.len() && class[i + 1] == '-' {
            ranges.push((class[i], class[i + 2]));
            i += 3;
        } else {
            ranges.push((class[i], class[i]));
            i += 1;
        }
    }
    Some(move |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi))
}
