//! JSON schemas (OpenAPI 3.0's dialect) of each kind's record, create input and update
//! patch, read from its [`Declaration`]: every declared field with its type, its rule's
//! constraints (`maxLength`, `pattern`, `format`, ranges, enums, `maxItems`), `nullable`,
//! `required`, and `additionalProperties: false` where unknown fields are refused.

use serde_json::{Map, Value as Json, json};

use super::field::nullable;
use super::{Declaration, FieldDef};

/// Named property schemas, in JSON order.
type Properties = Vec<(&'static str, Json)>;

/// The bookkeeping fields every record starts and ends with, in JSON order.
fn bookkeeping(soft_delete: bool) -> (Properties, Properties) {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    let head = vec![("id", uuid.clone()), ("workspace_id", uuid)];
    let mut tail = vec![
        ("created_at", time.clone()),
        ("updated_at", time.clone()),
        (
            "version",
            json!({
                "type": "integer",
                "format": "int64",
                "minimum": 1,
                "description": "Starts at 1, grows by one on every update; the ETag.",
            }),
        ),
    ];
    if soft_delete {
        let mut deleted = time;
        deleted["nullable"] = Json::Bool(true);
        deleted["description"] = json!("When the record was moved to the trash; null while live.");
        tail.push(("deleted_at", deleted));
    }
    (head, tail)
}

fn object(properties: Map<String, Json>, required: Vec<String>, closed: bool) -> Json {
    let mut o = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    if closed {
        o["additionalProperties"] = Json::Bool(false);
    }
    o
}

/// Removes `pattern` (and leaves `format`) at every level of a schema: masked values
/// (`+1 ••• ••• 0100`) keep their type and length but not their pattern.
fn without_patterns(schema: &mut Json) {
    if let Json::Object(m) = schema {
        m.remove("pattern");
        for v in m.values_mut() {
            without_patterns(v);
        }
    }
}

fn append(schema: &mut Json, text: &str) {
    let d = schema
        .get("description")
        .and_then(Json::as_str)
        .map(|d| format!("{d} {text}"))
        .unwrap_or_else(|| text.to_owned());
    schema["description"] = Json::String(d);
}

impl FieldDef {
    /// The field's schema in a record as reads return it: [`FieldDef::schema`], without
    /// patterns where the value may come back masked.
    pub fn record_schema(&self) -> Json {
        let mut s = self.schema();
        if let Some(class) = self.mask {
            without_patterns(&mut s);
            let class = serde_json::to_value(class).unwrap_or_default();
            append(
                &mut s,
                &format!(
                    "Masked for `read_only` users when the workspace masks `{}`.",
                    class.as_str().unwrap_or_default()
                ),
            );
        }
        s
    }

    /// The field's schema in a create input: [`FieldDef::schema`], nullable where the core
    /// fills in a default.
    pub fn input_schema(&self) -> Json {
        let mut s = self.schema();
        if self.access.defaulted() {
            nullable(&mut s);
            append(&mut s, "Null or left out: the default.");
        }
        s
    }

    /// The field's schema in an update patch: [`FieldDef::schema`], always nullable — `null`
    /// clears an optional field and keeps any other.
    pub fn patch_schema(&self) -> Json {
        let mut s = self.schema();
        let optional = s.get("nullable") == Some(&Json::Bool(true));
        nullable(&mut s);
        append(
            &mut s,
            if optional {
                "Null clears it; left out keeps it."
            } else {
                "Null or left out keeps it."
            },
        );
        s
    }
}

impl Declaration {
    /// The schema of a record as reads return it: the bookkeeping fields and every declared
    /// field, all present.
    pub fn record_schema(&self) -> Json {
        let (head, tail) = bookkeeping(self.soft_delete);
        let mut props = Map::new();
        let mut required = Vec::new();
        for (name, s) in head {
            props.insert(name.into(), s);
            required.push(name.to_owned());
        }
        for f in self.fields {
            props.insert(f.name.into(), f.record_schema());
            required.push(f.name.to_owned());
        }
        for (name, s) in tail {
            props.insert(name.into(), s);
            required.push(name.to_owned());
        }
        object(props, required, false)
    }

    /// The schema of the create input, if the kind has one: the fields a host gives, those
    /// the validator requires marked `required`, nothing else allowed.
    pub fn input_schema(&self) -> Option<Json> {
        self.input?;
        let mut props = Map::new();
        let mut required = Vec::new();
        for f in self.fields.iter().filter(|f| f.access.in_input()) {
            props.insert(f.name.into(), f.input_schema());
            if f.required_in_input() {
                required.push(f.name.to_owned());
            }
        }
        Some(object(props, required, true))
    }

    /// The schema of the update patch, if the kind has one: every field optional, nothing
    /// else allowed.
    pub fn patch_schema(&self) -> Option<Json> {
        self.patch?;
        let props: Map<String, Json> = self
            .fields
            .iter()
            .filter(|f| f.access.in_patch())
            .map(|f| (f.name.to_owned(), f.patch_schema()))
            .collect();
        Some(object(props, Vec::new(), true))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;

    use crate::kind::EntityKind;
    use crate::model::{Access, Rule};

    /// Every declared field appears in its kind's schemas with its rule's limits: the record
    /// always, the input and the patch where the field belongs to them.
    #[test]
    fn every_declared_field_is_in_its_schemas_with_its_limits() {
        for kind in EntityKind::ALL {
            let d = kind.declaration();
            let record = d.record_schema();
            let input = d.input_schema();
            let patch = d.patch_schema();
            for f in d.fields {
                let mut places = vec![("record", &record)];
                if let Some(input) = input.as_ref().filter(|_| f.access.in_input()) {
                    places.push(("input", input));
                }
                if let Some(patch) = patch.as_ref().filter(|_| f.access.in_patch()) {
                    places.push(("patch", patch));
                }
                for (place, schema) in places {
                    let s = &schema["properties"][f.name];
                    assert!(s.is_object(), "{kind} {place}: {} missing", f.name);
                    check_limits(&f.rule, s, &format!("{kind} {place} {}", f.name));
                }
                // The input and patch schemas list exactly the fields the access allows.
                let allowed = [
                    (input.as_ref(), f.access.in_input()),
                    (patch.as_ref(), f.access.in_patch()),
                ];
                for (schema, allows) in allowed {
                    if let Some(schema) = schema {
                        let listed = schema["properties"].get(f.name).is_some();
                        assert_eq!(listed, allows, "{kind}: {}", f.name);
                    }
                }
                if let Some(input) = &input {
                    let required = input["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|n| n == f.name));
                    assert_eq!(required, f.required_in_input(), "{kind}: {}", f.name);
                }
            }
            for schema in [input.as_ref(), patch.as_ref()].into_iter().flatten() {
                assert_eq!(schema["additionalProperties"], false, "{kind}");
            }
            let required = record["required"].as_array().unwrap();
            assert_eq!(
                required.len(),
                record["properties"].as_object().unwrap().len(),
                "{kind}: every record field is always present"
            );
        }
    }

    fn check_limits(rule: &Rule, s: &Json, at: &str) {
        match *rule {
            Rule::Any => {}
            Rule::Text { max, required } => {
                assert_eq!(s["maxLength"], max, "{at}");
                if required {
                    assert_eq!(s["minLength"], 1, "{at}");
                }
            }
            Rule::Url => {
                assert_eq!(s["format"], "uri", "{at}");
                assert_eq!(s["maxLength"], crate::validate::limits::URL, "{at}");
            }
            Rule::Email => {
                assert_eq!(s["format"], "idn-email", "{at}");
                assert_eq!(s["maxLength"], crate::validate::limits::EMAIL, "{at}");
            }
            Rule::Phone => assert_eq!(s["maxLength"], crate::validate::limits::PHONE, "{at}"),
            Rule::Color | Rule::Format { .. } => assert!(s["pattern"].is_string(), "{at}"),
            Rule::Range { min, max } => {
                assert_eq!(s["minimum"], min, "{at}");
                assert_eq!(s["maximum"], max, "{at}");
            }
            Rule::Among(values) => {
                // A nullable enum lists `null` too (OpenAPI 3.0.3).
                let mut expected = serde_json::json!(values);
                if s["nullable"] == true
                    && let Some(list) = expected.as_array_mut()
                {
                    list.push(Json::Null);
                }
                assert_eq!(s["enum"], expected, "{at}");
            }
            Rule::Choice { .. } => assert_eq!(s["type"], "string", "{at}"),
            Rule::Items { max, each } => {
                assert_eq!(s["maxItems"], max, "{at}");
                check_limits(each, &s["items"], &format!("{at}[]"));
            }
        }
    }

    /// A rule a field's type cannot honour would be checked by nobody.
    #[test]
    fn every_rule_fits_its_field() {
        for kind in EntityKind::ALL {
            for f in kind.declaration().fields {
                assert!(
                    f.rule.fits(&(f.type_schema)()),
                    "{kind}: {} has a rule its type cannot take",
                    f.name
                );
                if f.access == Access::PatchCustom {
                    assert!(kind.declaration().patch.is_some(), "{kind}: {}", f.name);
                }
            }
        }
    }
}
