//! The config blob nix2container's `nix:` transport hands skopeo, byte for byte: Go's
//! `json.Marshal` of an image-spec `v1.Image` filled from the image JSON. Matching it gives the
//! image the ID `copyToRegistry` gives it.
//!
//! What Go's encoder does with that struct:
//! - keys in the struct's order: `created` (left out when the JSON has none), `architecture`,
//!   `os` (`linux`), `config`, `rootfs` (`type` `layers` and the `diff_ids`), `history` (one per
//!   layer, in order; left out when there are no layers);
//! - `config` keeps only image-spec's `ImageConfig` fields, matched case-insensitively as Go reads
//!   them and written under their own names in the struct's order, each left out when empty;
//!   a history entry likewise keeps `created`, `created_by`, `author`, `comment`, `empty_layer`;
//! - maps' keys sorted bytewise; times as `RFC3339Nano` (fraction without trailing zeros, `Z`
//!   for a zero offset); strings escaped as Go escapes them (`<`, `>`, `&`, U+2028, U+2029 as
//!   `\u` sequences, control characters as `\n`, `\r`, `\t`, `\b`, `\f` or `\u00xx`);
//! - no spaces, no trailing newline.

use serde_json::{Map, Value};

use super::Nix2ContainerError;

/// image-spec's `ImageConfig` fields, in the struct's order, with what each holds.
const IMAGE_CONFIG: &[(&str, Shape)] = &[
    ("User", Shape::Str),
    ("ExposedPorts", Shape::Set),
    ("Env", Shape::List),
    ("Entrypoint", Shape::List),
    ("Cmd", Shape::List),
    ("Volumes", Shape::Set),
    ("WorkingDir", Shape::Str),
    ("Labels", Shape::Map),
    ("StopSignal", Shape::Str),
    ("ArgsEscaped", Shape::Bool),
];

/// image-spec's `History` fields, in the struct's order.
const HISTORY: &[(&str, Shape)] = &[
    ("created", Shape::Time),
    ("created_by", Shape::Str),
    ("author", Shape::Str),
    ("comment", Shape::Str),
    ("empty_layer", Shape::Bool),
];

#[derive(Clone, Copy)]
enum Shape {
    Str,
    Bool,
    Time,
    List,
    /// `map[string]struct{}`
    Set,
    /// `map[string]string`
    Map,
}

/// The config blob's bytes.
pub(super) fn config_bytes(
    image_config: &Value,
    arch: &str,
    created: Option<&str>,
    layers: &[(String, Value)],
) -> Result<Vec<u8>, Nix2ContainerError> {
    let mut out = String::from("{");
    if let Some(created) = created {
        out.push_str("\"created\":");
        out.push_str(&go_time(created, "created")?);
        out.push(',');
    }
    out.push_str("\"architecture\":");
    out.push_str(&go_string(arch));
    out.push_str(",\"os\":\"linux\",\"config\":");
    out.push_str(&go_struct(image_config, IMAGE_CONFIG, "image-config")?);
    out.push_str(",\"rootfs\":{\"type\":");
    if layers.is_empty() {
        out.push_str("\"\",\"diff_ids\":null}");
    } else {
        out.push_str("\"layers\",\"diff_ids\":[");
        let ids: Vec<String> = layers.iter().map(|(id, _)| go_string(id)).collect();
        out.push_str(&ids.join(","));
        out.push_str("]},\"history\":[");
        let history: Vec<String> = layers
            .iter()
            .map(|(_, h)| go_struct(h, HISTORY, "History"))
            .collect::<Result<_, _>>()?;
        out.push_str(&history.join(","));
        out.push(']');
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// One struct, its fields found as Go finds them (exact name, else any case), in its order.
fn go_struct(
    value: &Value,
    fields: &[(&str, Shape)],
    what: &str,
) -> Result<String, Nix2ContainerError> {
    let empty = Map::new();
    let object = match value {
        Value::Object(o) => o,
        Value::Null => &empty,
        _ => return Err(shape(what, "an object")),
    };
    let mut parts = Vec::new();
    for (name, field_shape) in fields {
        // Go takes any key that matches; one spelt in two cases is a JSON nixpush reads as
        // the later of the two in byte order.
        let found = object
            .iter()
            .rfind(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        let Some(v) = found else { continue };
        let what = format!("{what}.{name}");
        if let Some(written) = go_field(v, *field_shape, &what)? {
            parts.push(format!("{}:{written}", go_string(name)));
        }
    }
    Ok(format!("{{{}}}", parts.join(",")))
}

/// A field's value as Go writes it, or `None` when `omitempty` leaves it out.
fn go_field(v: &Value, s: Shape, what: &str) -> Result<Option<String>, Nix2ContainerError> {
    if v.is_null() {
        return Ok(None);
    }
    let written = match s {
        Shape::Str => {
            let s = v.as_str().ok_or_else(|| shape(what, "a string"))?;
            (!s.is_empty()).then(|| go_string(s))
        }
        Shape::Bool => {
            let b = v.as_bool().ok_or_else(|| shape(what, "a boolean"))?;
            b.then(|| "true".to_owned())
        }
        Shape::Time => {
            let s = v.as_str().ok_or_else(|| shape(what, "a time"))?;
            Some(go_time(s, what)?)
        }
        Shape::List => {
            let items = v
                .as_array()
                .ok_or_else(|| shape(what, "a list of strings"))?;
            let items: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map(go_string))
                .collect::<Option<_>>()
                .ok_or_else(|| shape(what, "a list of strings"))?;
            (!items.is_empty()).then(|| format!("[{}]", items.join(",")))
        }
        Shape::Set | Shape::Map => {
            let map = v.as_object().ok_or_else(|| shape(what, "an object"))?;
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            entries.dedup_by(|a, b| a.0 == b.0);
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| match s {
                    Shape::Set => Ok(format!("{}:{{}}", go_string(k))),
                    _ => v
                        .as_str()
                        .map(|v| format!("{}:{}", go_string(k), go_string(v)))
                        .ok_or_else(|| shape(what, "an object of strings")),
                })
                .collect::<Result<_, _>>()?;
            (!entries.is_empty()).then(|| format!("{{{}}}", entries.join(",")))
        }
    };
    Ok(written)
}

fn shape(what: &str, expected: &str) -> Nix2ContainerError {
    Nix2ContainerError::Shape(format!("{what} is not {expected}"))
}

/// A time as Go's `time.Time` marshals it (`RFC3339Nano`).
fn go_time(s: &str, what: &str) -> Result<String, Nix2ContainerError> {
    if !crate::time::is_rfc3339(s) || s.len() < 20 {
        return Err(shape(what, "an RFC 3339 time"));
    }
    let (seconds, rest) = s.split_at(19);
    let (fraction, offset) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (r[..end].trim_end_matches('0'), &r[end..])
        }
        None => ("", rest),
    };
    let offset = match offset {
        "Z" | "z" | "+00:00" | "-00:00" => "Z",
        o => o,
    };
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Ok(go_string(&format!(
        "{}T{}{fraction}{offset}",
        &seconds[..10],
        &seconds[11..]
    )))
}

/// A string as Go's `encoding/json` writes it.
pub(super) fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if let Some(escape) = crate::image::json_short_escape(c) {
            out.push_str(escape);
            continue;
        }
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(
            go_string("a<b>&\"\\\n\u{1}\u{2028}é"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028é\""
        );
    }

    #[test]
    fn times_are_written_as_go_writes_them() {
        for (input, want) in [
            ("1970-01-01T00:00:01Z", "1970-01-01T00:00:01Z"),
            ("2024-05-01T12:00:00.500000Z", "2024-05-01T12:00:00.5Z"),
            ("2024-05-01T12:00:00.000+00:00", "2024-05-01T12:00:00Z"),
            ("2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00+02:00"),
        ] {
            assert_eq!(go_time(input, "t").unwrap(), format!("\"{want}\""));
        }
        assert!(go_time("yesterday", "t").is_err());
    }

    #[test]
    fn config_fields_are_matched_in_any_case_and_written_in_the_structs_order() {
        let config = json!({"cmd": ["b"], "Entrypoint": ["a"], "healthcheck": {}, "env": [], "Labels": {"z": "1", "a": "2"}});
        let bytes = config_bytes(&config, "amd64", None, &[]).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["a"],"Cmd":["b"],"Labels":{"a":"2","z":"1"}},"rootfs":{"type":"","diff_ids":null}}"#
        );
    }
}
