//! The schema side of `check`: a document's `spec` read into the operator's own type
//! (serde's errors turned into findings at the offending value), and the fields the
//! type does not know, found by comparing the input with what the type writes back.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Problems, problem};

/// Deserialise `spec` into the operator's type; report unknown fields.
pub(super) fn spec_of<T: DeserializeOwned + serde::Serialize>(
    value: &Value,
    out: &mut Problems,
) -> Option<T> {
    let Some(spec) = value.get("spec") else {
        problem(out, &[], "spec: Required value");
        return None;
    };
    match serde_json::from_value::<T>(spec.clone()) {
        Ok(t) => {
            if let Ok(back) = serde_json::to_value(&t) {
                unknown_fields(spec, &back, &mut vec!["spec".to_string()], out);
            }
            Some(t)
        }
        Err(e) => {
            let msg = e.to_string();
            let message = match msg
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                Some(field) => {
                    format!("spec: {field}: Required value (a field under spec is missing)")
                }
                None => format!("spec: {msg}"),
            };
            // point at the offending value when serde quotes it
            let quoted = msg
                .split(['"', '`'])
                .nth(1)
                .filter(|q| !q.is_empty() && !msg.starts_with("missing field"));
            match quoted {
                Some(q) => problem(out, &["spec", &format!("={q}")], message),
                None => problem(out, &["spec"], message),
            }
            None
        }
    }
}

/// Fields present in `input` that the type dropped when it was read.
fn unknown_fields(input: &Value, known: &Value, path: &mut Vec<String>, out: &mut Problems) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                path.push(key.clone());
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, path, out),
                    None if is_empty(v) => {}
                    None => {
                        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
                        out.push((
                            path.clone(),
                            format!("unknown field \"{}\"", segs.join(".")),
                        ));
                    }
                }
                path.pop();
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                path.push(n.to_string());
                unknown_fields(iv, kv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_the_type_dropped_are_unknown_unless_empty() {
        let input = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [], "f": [{"g": 1, "h": 2}]});
        let known = json!({"a": 1, "b": {"c": 2}, "f": [{"g": 1}]});
        let mut out = Problems::new();
        unknown_fields(&input, &known, &mut vec!["spec".into()], &mut out);
        let messages: Vec<&str> = out.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            ["unknown field \"spec.b.d\"", "unknown field \"spec.f.0.h\""]
        );
        assert_eq!(out[1].0, ["spec", "f", "0", "h"]);
    }
}
