//! The reservations API against its published description, `docs/openapi.yaml`: every route the
//! handler's `route` function serves is documented and every documented operation is served; and
//! every answer the real handler gives, the successes and each error status that can be provoked
//! locally, has a documented status and a body that matches the documented schema.
//!
//! The schemas are checked by a small validator below rather than the `jsonschema` crate: its
//! releases (0.28 to 0.61 checked) turn on features of crates the AWS SDK is built on (`idna`, and
//! from 0.40 `hashbrown`), so adding it would rebuild the SDK for test builds apart from the demo's
//! on every developer's machine. The validator understands
//! exactly the keywords the document uses and fails on any other, so the document cannot use a
//! rule that nothing checks; `the_schema_check_rejects_what_it_should` shows it failing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::channel_store::{ChannelSettings, SyncRecord};
use stockguard_domain::buffer::BufferMode;
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::{ChannelName, Sku, shopify};
use stockguard_fake_channels::shopify_signature;
use stockguard_handlers::http_api::{MAX_API_BODY_BYTES, SHOPIFY_WEBHOOK_PATH};
use stockguard_local::fake_wiring::{
    SHOPIFY_WEBHOOK_SECRET, SHOPIFY_WEBHOOK_SECRET_NAME, stack_secret_name,
};
use stockguard_tests::{TestStack, now_rfc3339, raw_http, unique};

/// The methods an OpenAPI path item can document, as they appear in it.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Statuses that only API Gateway produces (403) or that need a failing AWS service (500, 503):
/// documented, not provoked here.
const NOT_PROVOKED_LOCALLY: [&str; 3] = ["403", "500", "503"];

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn openapi() -> Value {
    let path = repo_file("docs/openapi.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc: Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML this test can read: {e}", path.display()));
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true),
        "docs/openapi.yaml must be an OpenAPI 3.1 document"
    );
    doc
}

/// A path with every parameter written `{}`, so `/v1/reservations/{id}` and the handler's
/// `["v1", "reservations", id]` compare equal.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// (METHOD, path shape) of every arm of `route` in `shared/handlers/src/http_api.rs` that names a
/// method, read from the source so that a route added there without documentation fails here,
/// and the Shopify webhook.
fn handler_routes() -> BTreeSet<(String, String)> {
    let path = repo_file("shared/handlers/src/http_api.rs");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let start = source
        .find("pub async fn route(")
        .expect("http_api.rs has no `pub async fn route(`");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").expect("the end of `route`")];
    let mut routes = BTreeSet::new();
    for line in body.lines().map(str::trim) {
        // An arm such as `("POST", ["v1", "reservations", id, "confirm"]) => confirm(...)`.
        let Some(rest) = line.strip_prefix("(\"") else {
            continue;
        };
        let (method, rest) = rest
            .split_once('"')
            .unwrap_or_else(|| panic!("cannot read the route arm `{line}`"));
        let segments = rest
            .trim_start_matches(',')
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(inner, _)| inner)
            .unwrap_or_else(|| panic!("cannot read the path of the route arm `{line}`"));
        let segments: Vec<String> = segments
            .split(',')
            .map(str::trim)
            .map(
                |seg| match seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(literal) => literal.to_owned(),
                    None => "{}".to_owned(),
                },
            )
            .collect();
        routes.insert((method.to_owned(), format!("/{}", segments.join("/"))));
    }
    assert!(
        routes.contains(&("POST".to_owned(), "/v1/reservations".to_owned())),
        "reading `route` found {routes:?}, not even POST /v1/reservations: has its shape changed?"
    );
    // Served by its own function behind the same API.
    routes.insert(("POST".to_owned(), SHOPIFY_WEBHOOK_PATH.to_owned()));
    routes
}

/// (METHOD, path shape) of every documented operation.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("`paths`") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), shape(path)));
            }
        }
    }
    routes
}

// ---- The schema check ----

/// Checks JSON values against the schemas of one OpenAPI 3.1 document (JSON Schema 2020-12), for
/// the keywords that document uses; `$ref`s point into the document.
struct Schemas<'a> {
    doc: &'a Value,
}

impl<'a> Schemas<'a> {
    fn target(&self, reference: &Value) -> &'a Value {
        let pointer = reference
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .unwrap_or_else(|| panic!("only `#/...` references are supported, not {reference}"));
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} points at nothing in the document"))
    }

    /// Every way `value` breaks `schema`, each with where (`body.lines[0].sku`).
    fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, at, &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let rules = schema
            .as_object()
            .unwrap_or_else(|| panic!("the schema for {at} is not an object: {schema}"));
        let mut fail = |what: String| errors.push(format!("{at}: {what}"));
        let number = |rule: &Value, keyword: &str| {
            rule.as_f64()
                .unwrap_or_else(|| panic!("`{keyword}` at {at} is not a number"))
        };
        let mut nested = Vec::new();
        for (keyword, rule) in rules {
            match keyword.as_str() {
                "$ref" => nested.push((self.target(rule), value, at.to_owned())),
                "type" => {
                    let allowed: Vec<&str> = match rule {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("`type` at {at} is neither a string nor a list"),
                    };
                    if !allowed.iter().any(|t| is_type(value, t)) {
                        fail(format!("{value} is not of type {allowed:?}"));
                    }
                }
                "const" => {
                    if value != rule {
                        fail(format!("{value} is not {rule}"));
                    }
                }
                "enum" => {
                    let options = rule.as_array().expect("`enum` is a list");
                    if !options.contains(value) {
                        fail(format!("{value} is not one of {rule}"));
                    }
                }
                "properties" => {
                    let declared = rule.as_object().expect("`properties` is an object");
                    if let Some(object) = value.as_object() {
                        for (name, sub) in declared {
                            if let Some(v) = object.get(name) {
                                nested.push((sub, v, format!("{at}.{name}")));
                            }
                        }
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for name in rule.as_array().expect("`required` is a list") {
                            let name = name.as_str().expect("a required name");
                            if !object.contains_key(name) {
                                fail(format!("required property `{name}` is missing"));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let declared = rules.get("properties").and_then(Value::as_object);
                    if let Some(object) = value.as_object() {
                        for (name, v) in object {
                            if declared.is_some_and(|d| d.contains_key(name)) {
                                continue;
                            }
                            match rule {
                                Value::Bool(true) => {}
                                Value::Bool(false) => {
                                    fail(format!("property `{name}` is not documented"))
                                }
                                sub => nested.push((sub, v, format!("{at}.{name}"))),
                            }
                        }
                    }
                }
                "propertyNames" => {
                    if let Some(object) = value.as_object() {
                        for name in object.keys() {
                            let mut found = self.errors(
                                rule,
                                &Value::String(name.clone()),
                                &format!("{at} (property name {name:?})"),
                            );
                            errors_append(&mut fail, &mut found);
                        }
                    }
                }
                "items" => {
                    if let Some(items) = value.as_array() {
                        for (i, item) in items.iter().enumerate() {
                            nested.push((rule, item, format!("{at}[{i}]")));
                        }
                    }
                }
                "minItems" | "maxItems" => {
                    if let Some(items) = value.as_array() {
                        let bound = rule.as_u64().expect("an item count") as usize;
                        let ok = if keyword == "minItems" {
                            items.len() >= bound
                        } else {
                            items.len() <= bound
                        };
                        if !ok {
                            fail(format!("{} items break `{keyword}: {bound}`", items.len()));
                        }
                    }
                }
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                    if let Some(n) = value.as_f64() {
                        let bound = number(rule, keyword);
                        let ok = match keyword.as_str() {
                            "minimum" => n >= bound,
                            "maximum" => n <= bound,
                            "exclusiveMinimum" => n > bound,
                            _ => n < bound,
                        };
                        if !ok {
                            fail(format!("{value} breaks `{keyword}: {rule}`"));
                        }
                    }
                }
                "pattern" => {
                    let pattern = rule.as_str().expect("`pattern` is a string");
                    if let Some(s) = value.as_str()
                        && !CharClassPattern::parse(pattern).matches(s)
                    {
                        fail(format!("{s:?} does not match {pattern}"));
                    }
                }
                "format" => match rule.as_str() {
                    Some("date-time") => {
                        if let Some(s) = value.as_str()
                            && chrono::DateTime::parse_from_rfc3339(s).is_err()
                        {
                            fail(format!("{s:?} is not an RFC 3339 date-time"));
                        }
                    }
                    other => panic!("format {other:?} at {at} is not understood by this check"),
                },
                "oneOf" => {
                    let options = rule.as_array().expect("`oneOf` is a list");
                    let results: Vec<Vec<String>> = options
                        .iter()
                        .map(|option| self.errors(option, value, at))
                        .collect();
                    let matching = results.iter().filter(|e| e.is_empty()).count();
                    if matching != 1 {
                        fail(format!(
                            "{value} matches {matching} of the `oneOf` schemas, not exactly one: {results:?}"
                        ));
                    }
                }
                // Annotations: no rule for the value.
                "description" | "title" | "examples" | "default" | "deprecated" => {}
                other => panic!(
                    "keyword `{other}` at {at} is not understood by this check: teach it here or \
                     leave it out of docs/openapi.yaml"
                ),
            }
        }
        for (sub, v, where_) in nested {
            self.check(sub, v, &where_, errors);
        }
    }
}

fn errors_append(fail: &mut impl FnMut(String), found: &mut Vec<String>) {
    for e in found.drain(..) {
        fail(e);
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("type {other:?} is not a JSON Schema type"),
    }
}

/// The one regular-expression shape the document uses: `^[CLASS]{min,max}$` (or `+`, `*`) over a
/// character class of literals, ranges and `\` escapes.
struct CharClassPattern {
    ranges: Vec<(char, char)>,
    min: usize,
    max: usize,
}

impl CharClassPattern {
    fn parse(pattern: &str) -> Self {
        let unsupported = || -> ! {
            panic!("pattern {pattern:?} is not of the form ^[class]{{min,max}}$ this check reads")
        };
        let Some(rest) = pattern.strip_prefix("^[") else {
            unsupported()
        };
        let Some(rest) = rest.strip_suffix('$') else {
            unsupported()
        };
        let mut chars: Vec<char> = Vec::new();
        let mut escaped: Vec<bool> = Vec::new();
        let mut iter = rest.chars();
        let mut quantifier = None;
        while let Some(c) = iter.next() {
            match c {
                '\\' => {
                    chars.push(iter.next().unwrap_or_else(|| unsupported()));
                    escaped.push(true);
                }
                ']' => {
                    quantifier = Some(iter.as_str().to_owned());
                    break;
                }
                c => {
                    chars.push(c);
                    escaped.push(false);
                }
            }
        }
        let Some(quantifier) = quantifier else {
            unsupported()
        };
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let is_range = i + 2 < chars.len() && chars[i + 1] == '-' && !escaped[i + 1];
            if is_range {
                ranges.push((chars[i], chars[i + 2]));
                i += 3;
            } else {
                ranges.push((chars[i], chars[i]));
                i += 1;
            }
        }
        let (min, max) = match quantifier.as_str() {
            "+" => (1, usize::MAX),
            "*" => (0, usize::MAX),
            q => {
                let Some((lo, hi)) = q
                    .strip_prefix('{')
                    .and_then(|q| q.strip_suffix('}'))
                    .and_then(|q| q.split_once(','))
                else {
                    unsupported()
                };
                let lo = lo.parse().unwrap_or_else(|_| unsupported());
                let hi = hi.parse().unwrap_or_else(|_| unsupported());
                (lo, hi)
            }
        };
        Self { ranges, min, max }
    }

    fn matches(&self, s: &str) -> bool {
        let n = s.chars().count();
        n >= self.min
            && n <= self.max
            && s.chars()
                .all(|c| self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi))
    }
}

// ---- Talking to the handler ----

/// A documented status and schema for each answer, and which (method, path, status) were seen.
struct Api<'a> {
    client: reqwest::Client,
    base: String,
    doc: &'a Value,
    schemas: Schemas<'a>,
    seen: Mutex<BTreeSet<(String, String, String)>>,
}

impl<'a> Api<'a> {
    fn new(doc: &'a Value, base: String) -> Self {
        Self {
            client: reqwest::Client::new(),
            base,
            doc,
            schemas: Schemas { doc },
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    fn operation(&self, method: &str, template: &str) -> &'a Value {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        op
    }

    /// Follows a `$ref` of a response, parameter or request body to what it names.
    fn resolved(&self, item: &'a Value) -> &'a Value {
        match item.get("$ref") {
            Some(r) => self.schemas.target(r),
            None => item,
        }
    }

    fn json_schema(&self, holder: &'a Value, what: &str) -> &'a Value {
        let schema = &self.resolved(holder)["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{what} documents no application/json schema"
        );
        schema
    }

    /// The documented request body must accept what a working client sends.
    fn assert_documented_request(&self, method: &str, template: &str, body: &Value) {
        let holder = &self.operation(method, template)["requestBody"];
        let schema = self.json_schema(holder, &format!("{method} {template} requestBody"));
        let errors = self.schemas.errors(schema, body, "request");
        assert!(
            errors.is_empty(),
            "{method} {template}: the documented request schema refuses a request the handler \
             accepts: {errors:#?}"
        );
    }

    async fn send(
        &self,
        method: &str,
        url_path: &str,
        body: Option<Vec<u8>>,
    ) -> (String, Option<String>, String) {
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method_value, format!("{}{url_path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status().as_u16().to_string();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("an answer body");
        (status, content_type, text)
    }

    /// Calls a documented operation; checks the status is documented for it and the body matches
    /// that status's schema. Returns the status and body.
    async fn call(
        &self,
        method: &str,
        template: &str,
        url_path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let (status, content_type, text) = self.send(method, url_path, body).await;
        self.check_answer(method, template, url_path, status, content_type, text)
    }

    /// Sends a documented operation a body over `limit`, by its declared length only (a client
    /// writing the whole body may meet the closed connection before the answer).
    async fn call_oversized(
        &self,
        method: &str,
        template: &str,
        url_path: &str,
        limit: usize,
    ) -> (u16, Value) {
        let head = format!(
            "{method} {url_path} HTTP/1.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            limit + 1
        );
        let answer = raw_http(&format!("{}{url_path}", self.base), &head, b"").await;
        let status = answer.status.to_string();
        self.check_answer(
            method,
            template,
            url_path,
            status,
            answer.content_type,
            answer.body,
        )
    }

    /// Checks an answer's status is documented for the operation and its body matches that
    /// status's schema, and records the status as seen.
    fn check_answer(
        &self,
        method: &str,
        template: &str,
        url_path: &str,
        status: String,
        content_type: Option<String>,
        text: String,
    ) -> (u16, Value) {
        let call = format!("{method} {url_path} ({method} {template})");
        let responses = &self.operation(method, template)["responses"];
        let documented = responses.get(&status).unwrap_or_else(|| {
            let listed: Vec<&String> = responses.as_object().map(|r| r.keys().collect()).unwrap();
            panic!(
                "{call} answered {status}, which is not documented (documented: {listed:?}): {text}"
            )
        });
        let value = self.parse_json(&call, &status, content_type.as_deref(), &text);
        let schema = self.json_schema(documented, &format!("{call} {status}"));
        let errors = self.schemas.errors(schema, &value, "body");
        assert!(
            errors.is_empty(),
            "{call} answered {status} with a body that breaks the documented schema: \
             {errors:#?}\nbody: {value}"
        );
        self.seen.lock().unwrap().insert((
            method.to_lowercase(),
            template.to_owned(),
            status.clone(),
        ));
        (status.parse().unwrap(), value)
    }

    async fn call_json(
        &self,
        method: &str,
        template: &str,
        url_path: &str,
        body: &Value,
    ) -> (u16, Value) {
        self.call(
            method,
            template,
            url_path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Sends a request outside every documented operation; the answer must be `status` with the
    /// body of `components.responses.<response>`.
    async fn call_undocumented(&self, method: &str, url_path: &str, status: &str, response: &str) {
        let (got, content_type, text) = self.send(method, url_path, None).await;
        let call = format!("{method} {url_path}");
        assert_eq!(got, status, "{call}: {text}");
        let value = self.parse_json(&call, &got, content_type.as_deref(), &text);
        let holder = &self.doc["components"]["responses"][response];
        let schema = self.json_schema(holder, &format!("components.responses.{response}"));
        let errors = self.schemas.errors(schema, &value, "body");
        assert!(
            errors.is_empty(),
            "{call} answered {got} with a body that breaks components.responses.{response}: \
             {errors:#?}\nbody: {value}"
        );
    }

    fn parse_json(
        &self,
        call: &str,
        status: &str,
        content_type: Option<&str>,
        text: &str,
    ) -> Value {
        assert_eq!(
            content_type,
            Some("application/json"),
            "{call} answered {status} without a JSON content type"
        );
        serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("{call} answered {status} with a body that is not JSON ({e}): {text}")
        })
    }

    /// Every documented (operation, status), except those only AWS produces, was answered.
    fn assert_every_documented_status_seen(&self) {
        let seen = self.seen.lock().unwrap();
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                for status in op["responses"].as_object().unwrap().keys() {
                    if NOT_PROVOKED_LOCALLY.contains(&status.as_str()) {
                        continue;
                    }
                    if !seen.contains(&(method.to_owned(), path.clone(), status.clone())) {
                        missing.push(format!("{} {path} {status}", method.to_uppercase()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "documented answers this test never provoked (add a request that does): {missing:?}"
        );
    }
}

fn channel(name: &str, mode: BufferMode, units: i64) -> ChannelSettings {
    ChannelSettings {
        name: ChannelName::parse(name).unwrap(),
        kind: name.parse().unwrap(),
        enabled: true,
        // Nothing is mapped on these channels, so nothing is ever pushed to this address.
        endpoint: "http://127.0.0.1:9".to_owned(),
        credentials: format!("stockguard/channels/{name}"),
        buffer_mode: mode,
        buffer: BufferPolicy {
            units,
            percent: 0.0,
        },
        dynamic: Default::default(),
        maximum: None,
        seller_id: None,
        marketplace_id: None,
    }
}

// ---- The tests ----

#[test]
fn every_route_the_handler_serves_is_documented_and_only_those() {
    let doc = openapi();
    let served = handler_routes();
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served by `route` but not in docs/openapi.yaml: {undocumented:?}; \
         in docs/openapi.yaml but not served: {not_served:?}"
    );
}

#[test]
fn the_documented_examples_match_their_schemas() {
    let doc = openapi();
    let schemas = Schemas { doc: &doc };
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (i, example) in schema["examples"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let errors = schemas.errors(schema, example, &format!("{name}.examples[{i}]"));
            assert!(errors.is_empty(), "{errors:#?}");
        }
    }
}

#[test]
fn the_schema_check_rejects_what_it_should() {
    let doc = json!({"components": {"schemas": {
        "Id": {"type": "string", "pattern": "^[a-z0-9_-]{1,4}$"},
        "Thing": {
            "type": "object", "required": ["id", "n"], "additionalProperties": false,
            "properties": {
                "id": {"$ref": "#/components/schemas/Id"},
                "n": {"type": "integer", "minimum": 1, "maximum": 3},
                "at": {"type": "string", "format": "date-time"},
                "kind": {"enum": ["a", "b"]},
                "status": {"const": "held"},
                "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "map": {"type": "object", "propertyNames": {"$ref": "#/components/schemas/Id"},
                        "additionalProperties": {"type": "integer"}}
            }
        },
        "Either": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 10}]}
    }}});
    let schemas = Schemas { doc: &doc };
    let thing = &doc["components"]["schemas"]["Thing"];
    let good = json!({"id": "ab-1", "n": 2, "at": "2026-11-27T10:00:00.000Z", "kind": "a",
        "status": "held", "tags": ["x"], "map": {"x_1": 3}});
    assert_eq!(schemas.errors(thing, &good, "v"), Vec::<String>::new());
    let with = |field: &str, value: Value| {
        let mut v = good.clone();
        v[field] = value;
        v
    };
    let without = |field: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        v
    };
    for (bad, why) in [
        (with("id", json!("AB")), "pattern"),
        (with("id", json!("abcde")), "pattern length"),
        (with("id", json!(7)), "type through $ref"),
        (with("n", json!(4)), "maximum"),
        (with("n", json!(1.5)), "integer"),
        (with("at", json!("yesterday")), "date-time"),
        (with("kind", json!("c")), "enum"),
        (with("status", json!("confirmed")), "const"),
        (with("tags", json!([])), "minItems"),
        (with("tags", json!([1])), "items"),
        (with("map", json!({"X": 1})), "propertyNames"),
        (
            with("map", json!({"x": "1"})),
            "additionalProperties schema",
        ),
        (with("extra", json!(1)), "additionalProperties false"),
        (without("n"), "required"),
        (json!([]), "type object"),
    ] {
        assert!(
            !schemas.errors(thing, &bad, "v").is_empty(),
            "the check accepted a value that breaks `{why}`: {bad}"
        );
    }
    let either = &doc["components"]["schemas"]["Either"];
    assert!(schemas.errors(either, &json!(5), "v").is_empty());
    assert!(
        !schemas.errors(either, &json!(12), "v").is_empty(),
        "matches both"
    );
    assert!(
        !schemas.errors(either, &json!("x"), "v").is_empty(),
        "matches none"
    );
    let unknown = std::panic::catch_unwind(|| {
        Schemas { doc: &doc }.errors(&json!({"anyOf": []}), &json!(1), "v")
    });
    assert!(
        unknown.is_err(),
        "an unknown keyword must fail, not pass unchecked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_of_the_api_is_documented() {
    let doc = openapi();
    let stack = TestStack::new().await;
    let (_runtime, base) = stack.start_runtime_with_api().await;
    let api = Api::new(&doc, base);
    let store = &stack.deps.store;

    for (sku, quantity) in [("OA-1", 10), ("OA-EXP", 1)] {
        stack
            .apply("StockReceived", json!({"event_id": unique("oa-rcv"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": quantity}))
            .await;
    }
    // One dynamic and one static channel, and an acknowledged quantity, so that `channels`,
    // `buffers` and both buffer modes appear in the answers.
    store
        .put_channel(&channel("shopify", BufferMode::Dynamic, 0))
        .await
        .unwrap();
    store
        .put_channel(&channel("walmart", BufferMode::Static, 1))
        .await
        .unwrap();
    let oa1 = Sku::parse("OA-1").unwrap();
    let record = SyncRecord {
        version: 1,
        buffer_revision: 0,
        quantity: 10,
        acknowledged_at: chrono::Utc::now().timestamp_millis(),
    };
    store
        .record_acknowledged(&ChannelName::parse("shopify").unwrap(), &oa1, record)
        .await
        .unwrap();

    // POST /v1/reservations
    let reserve = "/v1/reservations";
    let cart = json!({"reservation_id": "oa-r1", "channel": "storefront", "ttl_seconds": 600,
        "lines": [{"sku": "OA-1", "quantity": 2}]});
    api.assert_documented_request("POST", reserve, &cart);
    let (status, first) = api.call_json("POST", reserve, reserve, &cart).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = api.call_json("POST", reserve, reserve, &cart).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "a repeat answers the first answer"
    );
    let other = json!({"reservation_id": "oa-r1", "channel": "storefront",
        "lines": [{"sku": "OA-1", "quantity": 3}]});
    let (status, body) = api.call_json("POST", reserve, reserve, &other).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let greedy = json!({"reservation_id": "oa-greedy", "channel": "storefront",
        "lines": [{"sku": "OA-1", "quantity": 1000}]});
    let (status, body) = api.call_json("POST", reserve, reserve, &greedy).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("insufficient_stock"))
    );
    let (status, body) = api
        .call_oversized("POST", reserve, reserve, MAX_API_BODY_BYTES)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let zero = json!({"reservation_id": "oa-zero", "channel": "storefront",
        "lines": [{"sku": "OA-1", "quantity": 0}]});
    let (status, body) = api.call_json("POST", reserve, reserve, &zero).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("lines[0].quantity"))
    );
    let (status, _) = api
        .call("POST", reserve, reserve, Some(b"{not json".to_vec()))
        .await;
    assert_eq!(status, 400);
    let (status, body) = api
        .call_json("POST", reserve, reserve, &json!([1, 2]))
        .await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("wrong_type")));

    // POST /v1/reservations/{id}/confirm
    let confirm = "/v1/reservations/{id}/confirm";
    let order = json!({"order_id": "oa-o1"});
    api.assert_documented_request("POST", confirm, &order);
    let path = "/v1/reservations/oa-r1/confirm";
    let (status, body) = api.call_json("POST", confirm, path, &order).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("confirmed")));
    let (status, _) = api.call_json("POST", confirm, path, &order).await;
    assert_eq!(status, 200, "confirming again with the same order");
    let (status, body) = api
        .call_json("POST", confirm, path, &json!({"order_id": "oa-o2"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_confirmed"))
    );
    let (status, body) = api
        .call_oversized("POST", confirm, path, MAX_API_BODY_BYTES)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let r2 = json!({"reservation_id": "oa-r2", "channel": "storefront",
        "lines": [{"sku": "OA-1", "quantity": 1}]});
    assert_eq!(api.call_json("POST", reserve, reserve, &r2).await.0, 201);
    let r2_confirm = "/v1/reservations/oa-r2/confirm";
    let (status, body) = api.call_json("POST", confirm, r2_confirm, &order).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("order_id_in_use"))
    );
    let (status, _) = api
        .call_json(
            "POST",
            confirm,
            "/v1/reservations/oa-nobody/confirm",
            &order,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .call_json("POST", confirm, "/v1/reservations/bad!id/confirm", &order)
        .await;
    assert_eq!(status, 400);
    let (status, body) = api.call_json("POST", confirm, r2_confirm, &json!({})).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("missing_field"))
    );
    let (status, _) = api
        .call("POST", confirm, r2_confirm, Some(b"nope".to_vec()))
        .await;
    assert_eq!(status, 400);
    // Lapsed, and another checkout took its unit: refused.
    let lapsing = json!({"reservation_id": "oa-lapse", "channel": "storefront", "ttl_seconds": 1,
        "lines": [{"sku": "OA-EXP", "quantity": 1}]});
    assert_eq!(
        api.call_json("POST", reserve, reserve, &lapsing).await.0,
        201
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let taker = json!({"reservation_id": "oa-taker", "channel": "storefront",
        "lines": [{"sku": "OA-EXP", "quantity": 1}]});
    assert_eq!(api.call_json("POST", reserve, reserve, &taker).await.0, 201);
    let (status, body) = api
        .call_json(
            "POST",
            confirm,
            "/v1/reservations/oa-lapse/confirm",
            &json!({"order_id": "oa-o3"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reservation_expired"))
    );

    // DELETE /v1/reservations/{id}
    let release = "/v1/reservations/{id}";
    let (status, body) = api
        .call("DELETE", release, "/v1/reservations/oa-r2", None)
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("released")));
    let (status, _) = api
        .call("DELETE", release, "/v1/reservations/oa-r2", None)
        .await;
    assert_eq!(status, 200, "releasing again");
    let (status, body) = api
        .call("DELETE", release, "/v1/reservations/oa-r1", None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("reservation_confirmed"))
    );
    let (status, _) = api
        .call("DELETE", release, "/v1/reservations/oa-nobody", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .call("DELETE", release, "/v1/reservations/bad!id", None)
        .await;
    assert_eq!(status, 400);

    // GET /v1/availability/{sku} and GET /v1/buffers/{sku}
    let availability = "/v1/availability/{sku}";
    let (status, body) = api
        .call("GET", availability, "/v1/availability/OA-1", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channels"]["shopify"], 10, "{body}");
    assert!(body["buffers"]["walmart"].is_i64(), "{body}");
    assert_eq!(
        api.call("GET", availability, "/v1/availability/OA-NEVER", None)
            .await
            .0,
        404
    );
    assert_eq!(
        api.call("GET", availability, "/v1/availability/bad!sku", None)
            .await
            .0,
        400
    );
    let buffers = "/v1/buffers/{sku}";
    let (status, body) = api.call("GET", buffers, "/v1/buffers/OA-1", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["channels"]["shopify"]["mode"].as_str(),
            body["channels"]["walmart"]["mode"].as_str()
        ),
        (Some("dynamic"), Some("static")),
        "{body}"
    );
    assert_eq!(
        api.call("GET", buffers, "/v1/buffers/OA-NEVER", None)
            .await
            .0,
        404
    );
    assert_eq!(
        api.call("GET", buffers, "/v1/buffers/bad!sku", None)
            .await
            .0,
        400
    );

    // POST /v1/webhooks/shopify, signed as Shopify signs it.
    aws_sdk_secretsmanager::Client::new(&stack.config)
        .create_secret()
        .name(stack_secret_name(
            SHOPIFY_WEBHOOK_SECRET_NAME,
            &stack.stack.prefix,
        ))
        .secret_string(SHOPIFY_WEBHOOK_SECRET)
        .send()
        .await
        .expect("the webhook secret");
    let webhook = SHOPIFY_WEBHOOK_PATH;
    let order = json!({"id": 4401, "created_at": now_rfc3339(),
        "line_items": [{"id": 1, "variant_id": 11, "sku": "OA-1", "quantity": 1}]});
    api.assert_documented_request("POST", webhook, &order);
    let post = |topic: &'static str, body: Vec<u8>, signature: Option<String>| {
        let client = &api.client;
        let url = format!("{}{webhook}", api.base);
        async move {
            let mut request = client
                .post(url)
                .header("content-type", "application/json")
                .header("X-Shopify-Topic", topic)
                .header("X-Shopify-Webhook-Id", "oa-webhook")
                .header("X-Shopify-Shop-Domain", "oa.myshopify.com");
            if let Some(s) = signature {
                request = request.header("X-Shopify-Hmac-Sha256", s);
            }
            let response = request.body(body).send().await.expect("an HTTP answer");
            let status = response.status().as_u16().to_string();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (status, content_type, response.text().await.expect("a body"))
        }
    };
    let signed = |topic, body: &Value| {
        let bytes = body.to_string().into_bytes();
        let signature = shopify_signature(SHOPIFY_WEBHOOK_SECRET, &bytes);
        post(topic, bytes, Some(signature))
    };
    let check = |(status, content_type, text)| {
        api.check_answer("POST", webhook, webhook, status, content_type, text)
    };
    let (status, body) = check(signed("orders/create", &order).await);
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let (status, body) = check(signed("products/update", &json!({"id": 1})).await);
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
    let (status, body) = check(signed("orders/create", &json!({"id": "no lines"})).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_payload"))
    );
    let (status, body) = check(post("orders/create", order.to_string().into_bytes(), None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, body) = api
        .call_oversized("POST", webhook, webhook, shopify::MAX_BODY_BYTES)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Methods not documented on a documented path, and a path not documented at all.
    for (template, item) in doc["paths"].as_object().unwrap() {
        let concrete = template.replace("{id}", "oa-r1").replace("{sku}", "OA-1");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                api.call_undocumented(&method.to_uppercase(), &concrete, "405", "MethodNotAllowed")
                    .await;
            }
        }
    }
    api.call_undocumented("GET", "/v1/nothing-here", "404", "NotFound")
        .await;

    api.assert_every_documented_status_seen();
}
