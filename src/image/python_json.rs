//! JSON as Python's `json.dumps(value, indent=4)` writes it, which is how nixpkgs' stream script
//! writes an image config: keys in the order given (not sorted), four-space indents, `", "`-free
//! item separators (`","` at line ends) and `": "` after keys, empty containers as `[]` / `{}`,
//! every character outside printable ASCII escaped (`ensure_ascii`: `\uXXXX`, lowercase, with
//! surrogate pairs), floats as Python's `repr`, and no newline at the end. Also Python's `repr`
//! of a list of strings, which nixpkgs puts in each history comment.
//!
//! And JSON read as Python's `json.load` reads it into dicts, the way nixpkgs' script reads its
//! conf: keys in the order of the text, a repeated key keeping its first place and its last
//! value. So a hand-written conf's `config` is written back in its own order, not sorted.

use serde_json::Value;

/// A JSON value whose objects keep the order they were built in.
#[derive(Clone, Debug, PartialEq)]
pub enum Ordered {
    /// Any JSON value: its objects are written in `serde_json`'s (sorted) key order.
    Value(Value),
    /// An object with its keys in this order.
    Object(Vec<(String, Ordered)>),
    /// An array of ordered values.
    Array(Vec<Ordered>),
}

impl From<Value> for Ordered {
    fn from(v: Value) -> Self {
        Ordered::Value(v)
    }
}

impl From<&str> for Ordered {
    fn from(s: &str) -> Self {
        Ordered::Value(Value::String(s.to_owned()))
    }
}

impl Ordered {
    /// The same value with its objects' order forgotten.
    pub fn to_value(&self) -> Value {
        match self {
            Ordered::Value(v) => v.clone(),
            Ordered::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Ordered::Array(items) => Value::Array(items.iter().map(Ordered::to_value).collect()),
        }
    }

    /// The entries of an object, in order (a plain `Value` object's in its sorted order).
    pub fn entries(&self) -> Option<Vec<(String, Ordered)>> {
        match self {
            Ordered::Object(entries) => Some(entries.clone()),
            Ordered::Value(Value::Object(map)) => Some(
                map.iter()
                    .map(|(k, v)| (k.clone(), Ordered::Value(v.clone())))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The items of an array, in order.
    pub fn items(&self) -> Option<Vec<Ordered>> {
        match self {
            Ordered::Array(items) => Some(items.clone()),
            Ordered::Value(Value::Array(items)) => {
                Some(items.iter().cloned().map(Ordered::Value).collect())
            }
            _ => None,
        }
    }

    /// The string this is, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::Value(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Read as `json.load` reads into dicts: objects keep the text's order; a key given twice keeps
/// its first place and takes its last value.
impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
        Ok(Ordered::Value(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
        Ok(Ordered::Value(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
        Ok(Ordered::Value(n.into()))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Ordered, E> {
        Ok(Ordered::Value(
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
        Ok(Ordered::Value(Value::String(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
        Ok(Ordered::Value(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Value(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Value(Value::Null))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Ordered>()? {
            items.push(item);
        }
        Ok(Ordered::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut entries: Vec<(String, Ordered)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Ordered>()? {
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Ordered::Object(entries))
    }
}

/// `json.dumps(value, indent=4)`.
pub fn dumps_indent4(value: &Ordered) -> String {
    let mut out = String::new();
    write_ordered(&mut out, value, 0);
    out
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("    ");
    }
}

fn write_ordered(out: &mut String, value: &Ordered, depth: usize) {
    match value {
        Ordered::Value(v) => write_value(out, v, depth),
        Ordered::Object(entries) => write_object(
            out,
            entries.iter().map(|(k, v)| (k.as_str(), Item::Ordered(v))),
            entries.is_empty(),
            depth,
        ),
        Ordered::Array(items) => write_array(
            out,
            items.iter().map(Item::Ordered),
            items.is_empty(),
            depth,
        ),
    }
}

enum Item<'a> {
    Ordered(&'a Ordered),
    Value(&'a Value),
}

fn write_item(out: &mut String, item: Item<'_>, depth: usize) {
    match item {
        Item::Ordered(o) => write_ordered(out, o, depth),
        Item::Value(v) => write_value(out, v, depth),
    }
}

fn write_object<'a>(
    out: &mut String,
    entries: impl Iterator<Item = (&'a str, Item<'a>)>,
    empty: bool,
    depth: usize,
) {
    if empty {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        write_string(out, key);
        out.push_str(": ");
        write_item(out, value, depth + 1);
    }
    newline(out, depth);
    out.push('}');
}

fn write_array<'a>(
    out: &mut String,
    items: impl Iterator<Item = Item<'a>>,
    empty: bool,
    depth: usize,
) {
    if empty {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, depth + 1);
        write_item(out, item, depth + 1);
    }
    newline(out, depth);
    out.push(']');
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            write_array(out, items.iter().map(Item::Value), items.is_empty(), depth)
        }
        Value::Object(map) => write_object(
            out,
            map.iter().map(|(k, v)| (k.as_str(), Item::Value(v))),
            map.is_empty(),
            depth,
        ),
    }
}

/// A JSON string as `json.dumps` writes it with `ensure_ascii` (the default).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if let Some(escape) = super::json_short_escape(c) {
            out.push_str(escape);
            continue;
        }
        match c {
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr` of a float: the shortest digits that read back the same, in positional
/// notation for exponents from -4 to 15, else as `d.ddde+XX`.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python's `repr` of a list of strings: `['a', 'b']`, each in single quotes unless it holds a
/// single quote and no double quote.
pub fn repr_str_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| repr_str(s)).collect();
    format!("[{}]", parts.join(", "))
}

fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected strings are what CPython 3.11's `json.dumps(..., indent=4)` and `repr` print.

    #[test]
    fn objects_keep_their_order_and_nest_with_four_spaces() {
        let v = Ordered::Object(vec![
            ("b".into(), json!(1).into()),
            ("a".into(), json!({"y": [], "x": {}}).into()),
            (
                "c".into(),
                Ordered::Array(vec![json!("s").into(), json!(null).into()]),
            ),
        ]);
        assert_eq!(
            dumps_indent4(&v),
            "{\n    \"b\": 1,\n    \"a\": {\n        \"x\": {},\n        \"y\": []\n    },\n    \"c\": [\n        \"s\",\n        null\n    ]\n}"
        );
    }

    #[test]
    fn strings_are_escaped_as_ensure_ascii_does() {
        let v = Ordered::Value(json!("é \"q\" \\ \n\t\u{7f}\u{1} 🐳 /"));
        assert_eq!(
            dumps_indent4(&v),
            r#""\u00e9 \"q\" \\ \n\t\u007f\u0001 \ud83d\udc33 /""#
        );
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        for (f, want) in [
            (1.5, "1.5"),
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1.25e-5, "1.25e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn json_is_read_in_the_texts_order_as_python_dicts_read_it() {
        // Python: json.dumps(json.loads(TEXT), indent=4).
        let text =
            r#"{"z": 1, "a": {"y": [1.5, {"k": null, "b": true}], "x": "s"}, "m": [], "z": 2}"#;
        let read: Ordered = serde_json::from_str(text).unwrap();
        assert_eq!(
            dumps_indent4(&read),
            "{\n    \"z\": 2,\n    \"a\": {\n        \"y\": [\n            1.5,\n            {\n                \"k\": null,\n                \"b\": true\n            }\n        ],\n        \"x\": \"s\"\n    },\n    \"m\": []\n}"
        );
        assert_eq!(
            read.to_value(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        let keys: Vec<String> = read
            .entries()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn a_list_of_strings_reads_as_python_repr() {
        let items = vec![
            "/nix/store/a-x".to_owned(),
            "it's".to_owned(),
            "both ' and \"".to_owned(),
        ];
        assert_eq!(
            repr_str_list(&items),
            r#"['/nix/store/a-x', "it's", 'both \' and "']"#
        );
        assert_eq!(repr_str_list(&[]), "[]");
    }
}
