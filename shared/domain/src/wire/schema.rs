//! The JSON Schemas of the events, generated from their types in two forms:
//!
//! - `schemas/<DetailType>.json`: the `detail` as JSON Schema draft 2020-12, for integrators and
//!   their validators;
//! - the `Content` of each `AWS::EventSchemas::Schema` in `template.yaml`: an OpenAPI 3.0 document
//!   describing the whole EventBridge event with that `detail`. The registry takes `OpenApi3` or
//!   `JSONSchemaDraft4`; OpenAPI 3 is the form EventBridge's own schemas and schema discovery use and
//!   the one it generates code bindings from, and its schema objects are the draft-04 dialect, so
//!   2020-12 keywords are rewritten for it (see [`DraftFourBounds`]).
//!
//! The checked-in copies are compared with these by `cargo test -p stockguard-domain --test
//! schemas`, which rewrites them with `UPDATE_SCHEMAS=1`.

use schemars::Schema;
use schemars::generate::{Contract, SchemaSettings};
use schemars::transform::{Transform, transform_subschemas};
use serde_json::{Map, Value, json};

use super::EventDetail;

/// One detail-type and how to generate its schemas.
#[derive(Clone, Copy)]
pub struct EventType {
    pub detail_type: &'static str,
    /// `None` for inbound events.
    pub source: Option<&'static str>,
    root_schema: fn(SchemaSettings) -> Schema,
    subschema: fn(SchemaSettings) -> (Schema, Map<String, Value>),
}

impl EventType {
    pub fn of<T: EventDetail>() -> Self {
        Self {
            detail_type: T::DETAIL_TYPE,
            source: T::SOURCE,
            root_schema: |s| s.into_generator().into_root_schema_for::<T>(),
            subschema: |s| {
                let mut generator = s.into_generator();
                let reference = generator.subschema_for::<T>();
                (reference, generator.take_definitions(true))
            },
        }
    }

    pub fn is_inbound(&self) -> bool {
        self.source.is_none()
    }

    /// Inbound schemas describe what stockguard accepts; published ones what it emits.
    fn contract(&self) -> Contract {
        if self.is_inbound() {
            Contract::Deserialize
        } else {
            Contract::Serialize
        }
    }

    /// The checked-in file's path from the repository root.
    pub fn file_name(&self) -> String {
        format!("schemas/{}.json", self.detail_type)
    }

    /// The `detail` as JSON Schema draft 2020-12.
    pub fn detail_schema(&self) -> Value {
        let settings = SchemaSettings::draft2020_12()
            .with(|s| s.contract = self.contract())
            .with_transform(UnwrapDescriptions);
        (self.root_schema)(settings).to_value()
    }

    /// The checked-in file's text: the 2020-12 schema, pretty-printed, with a final newline.
    pub fn detail_schema_file(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.detail_schema()).expect("a schema");
        text.push('\n');
        text
    }

    /// The OpenAPI 3.0 document of the whole EventBridge event, in the form the schema registry
    /// shows and generates code bindings from: `AWSEvent` with the `detail` as a component.
    pub fn registry_schema(&self) -> Value {
        let settings = SchemaSettings::openapi3()
            .with(|s| s.contract = self.contract())
            .with_transform(UnwrapDescriptions)
            .with_transform(DraftFourBounds);
        let (detail, mut components) = (self.subschema)(settings);
        let mut event = json!({
            "type": "object",
            "required": ["detail-type", "resources", "detail", "id", "source", "time", "region",
                         "version", "account"],
            "x-amazon-events-detail-type": self.detail_type,
            "properties": {
                "detail": detail.to_value(),
                "account": {"type": "string"},
                "detail-type": {"type": "string"},
                "id": {"type": "string"},
                "region": {"type": "string"},
                "resources": {"type": "array", "items": {"type": "string"}},
                "source": {"type": "string"},
                "time": {"type": "string", "format": "date-time"},
                "version": {"type": "string"},
            },
        });
        // Inbound events come from each producer's own source, so only published ones name it.
        if let Some(source) = self.source {
            event["x-amazon-events-source"] = source.into();
        }
        assert!(
            components.insert("AWSEvent".into(), event).is_none(),
            "a type named AWSEvent would hide the event envelope"
        );
        json!({
            "openapi": "3.0.0",
            "info": {"version": "1.0.0", "title": self.detail_type},
            "paths": {},
            "components": {"schemas": components},
        })
    }
}

/// Joins the lines of a doc comment that only wrap the source text; paragraph breaks stay.
#[derive(Clone)]
pub struct UnwrapDescriptions;

impl Transform for UnwrapDescriptions {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(Value::String(text)) = schema.get_mut("description") {
            *text = text
                .split("\n\n")
                .map(|paragraph| paragraph.replace('\n', " "))
                .collect::<Vec<_>>()
                .join("\n\n");
        }
        transform_subschemas(self, schema);
    }
}

/// Rewrites the 2020-12 numeric `exclusiveMinimum`/`exclusiveMaximum` into the draft-04 form that
/// OpenAPI 3.0 uses (`minimum` plus `exclusiveMinimum: true`); schemars' OpenAPI settings leave
/// them as they are.
#[derive(Clone)]
pub struct DraftFourBounds;

impl Transform for DraftFourBounds {
    fn transform(&mut self, schema: &mut Schema) {
        for (exclusive, inclusive) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if let Some(bound) = schema.get(exclusive).filter(|b| b.is_number()).cloned() {
                schema.insert(inclusive.into(), bound);
                schema.insert(exclusive.into(), true.into());
            }
        }
        transform_subschemas(self, schema);
    }
}

/// The lines in `template.yaml` between [`TEMPLATE_BEGIN`] and [`TEMPLATE_END`].
pub const TEMPLATE_BEGIN: &str =
    "  # BEGIN event schemas: generated from shared/domain/src/wire.rs; do not edit by hand.\n";
pub const TEMPLATE_END: &str = "  # END event schemas\n";

/// The schema registry's resources for `template.yaml`, one schema per detail-type.
pub fn template_resources(events: &[EventType]) -> String {
    let mut out = String::from(
        "  # Regenerate with `UPDATE_SCHEMAS=1 cargo test -p stockguard-domain --test schemas`.\n\
         \x20 EventSchemaRegistry:\n\
         \x20   Type: AWS::EventSchemas::Registry\n\
         \x20   Properties:\n\
         \x20     RegistryName: !Sub \"${AWS::StackName}-events\"\n\
         \x20     Description: The detail of every event stockguard consumes and publishes on its bus.\n",
    );
    for event in events {
        let description = match event.source {
            None => format!(
                "Inbound {}, from any source outside stockguard.",
                event.detail_type
            ),
            Some(source) => format!(
                "{} published by stockguard with source {source}.",
                event.detail_type
            ),
        };
        let content = serde_json::to_string(&event.registry_schema()).expect("a schema");
        out.push_str(&format!(
            "  {dt}EventSchema:\n\
             \x20   Type: AWS::EventSchemas::Schema\n\
             \x20   Properties:\n\
             \x20     RegistryName: !GetAtt EventSchemaRegistry.RegistryName\n\
             \x20     SchemaName: {dt}\n\
             \x20     Type: OpenApi3\n\
             \x20     Description: {description}\n\
             \x20     Content: |-\n\
             \x20       {content}\n",
            dt = event.detail_type,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::events;

    /// The registry's limit on a schema's `Content`.
    const MAX_CONTENT_CHARS: usize = 100_000;

    #[test]
    fn registry_form_has_no_2020_12_keywords() {
        for event in events() {
            let text = serde_json::to_string(&event.registry_schema()).unwrap();
            assert!(text.len() < MAX_CONTENT_CHARS, "{}", event.detail_type);
            for keyword in ["\"$defs\"", "\"$schema\"", "\"const\"", "\"prefixItems\""] {
                assert!(!text.contains(keyword), "{}: {keyword}", event.detail_type);
            }
            assert!(
                !text.contains("\"type\":["),
                "{}: type arrays",
                event.detail_type
            );
        }
    }

    #[test]
    fn exclusive_bounds_take_the_draft_four_form() {
        let demand = events()
            .into_iter()
            .find(|e| e.detail_type == "DemandSignal")
            .unwrap();
        let doc = demand.registry_schema();
        let strength = &doc["components"]["schemas"]["DemandSignal"]["properties"]["strength"];
        assert_eq!(strength["minimum"], json!(0));
        assert_eq!(strength["exclusiveMinimum"], json!(true));
        let file = demand.detail_schema();
        assert_eq!(file["properties"]["strength"]["exclusiveMinimum"], json!(0));
    }
}
