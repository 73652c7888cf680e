//! The human-readable form of an inspection: one labelled line per fact, a line per layer with
//! its store paths below it, sizes in binary units.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ImageSummary, IndexSummary, Inspection};
use crate::image::read::SUMMARY_KEYS;

/// Width of the label column.
const LABEL: usize = 12;

pub(super) fn render(inspection: &Inspection) -> String {
    let mut out = String::new();
    match (&inspection.index, &inspection.image) {
        (Some(index), image) => {
            field(&mut out, "reference", &inspection.reference);
            field(&mut out, "media type", &inspection.media_type);
            render_index(&mut out, index);
            if let Some(image) = image {
                out.push('\n');
                render_image(&mut out, image);
            }
        }
        (None, Some(image)) => render_image(&mut out, image),
        (None, None) => field(&mut out, "reference", &inspection.reference),
    }
    if !inspection.referrers.is_empty() {
        field(
            &mut out,
            "referrers",
            &inspection.referrers.len().to_string(),
        );
        for r in &inspection.referrers {
            let _ = writeln!(
                out,
                "  {}  {}  {:>9}",
                r.artifact_type,
                r.digest,
                human_size(r.size)
            );
        }
    }
    out
}

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{label:<LABEL$}{value}");
}

fn annotations(out: &mut String, indent: &str, annotations: &BTreeMap<String, String>) {
    for (k, v) in annotations {
        let _ = writeln!(out, "{indent}{k}: {v}");
    }
}

fn render_index(out: &mut String, index: &IndexSummary) {
    field(out, "manifests", &index.manifests.len().to_string());
    let width = index.manifests.len().to_string().len();
    let platforms: Vec<String> = index
        .manifests
        .iter()
        .map(|m| {
            m.platform
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string)
        })
        .collect();
    let pwidth = platforms.iter().map(String::len).max().unwrap_or(0);
    for (i, (m, platform)) in index.manifests.iter().zip(&platforms).enumerate() {
        let _ = writeln!(
            out,
            "  {:>width$}  {platform:<pwidth$}  {}  {:>9}  {}",
            i + 1,
            m.digest,
            human_size(m.size),
            m.media_type
        );
        annotations(out, &" ".repeat(width + 4), &m.annotations);
    }
    if !index.annotations.is_empty() {
        out.push_str("annotations\n");
        annotations(out, "  ", &index.annotations);
    }
}

fn render_image(out: &mut String, image: &ImageSummary) {
    field(out, "reference", &image.reference);
    field(out, "media type", &image.media_type);
    if let Some(p) = &image.platform {
        field(out, "platform", &p.to_string());
    }
    if let Some(c) = &image.created {
        field(out, "created", c);
    }
    field(out, "config", &image.config_digest.to_string());
    let kwidth = image.config.keys().map(String::len).max().unwrap_or(0);
    for key in SUMMARY_KEYS {
        let Some(value) = image.config.get(key) else {
            continue;
        };
        for (i, line) in config_lines(key, value).iter().enumerate() {
            let label = if i == 0 { key } else { "" };
            let _ = writeln!(out, "  {label:<kwidth$}  {line}");
        }
    }
    if !image.annotations.is_empty() {
        out.push_str("annotations\n");
        annotations(out, "  ", &image.annotations);
    }
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    field(
        out,
        "layers",
        &format!("{}, {} in all", image.layers.len(), human_size(total)),
    );
    let width = image.layers.len().to_string().len();
    let indent = " ".repeat(width + 4);
    for (i, layer) in image.layers.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>width$}  {}  {:>9}  {}",
            i + 1,
            layer.digest,
            human_size(layer.size),
            layer.media_type
        );
        match &layer.store_paths {
            Some(paths) if paths.is_empty() => {
                let _ = writeln!(out, "{indent}(no store path)");
            }
            Some(paths) => {
                for p in paths {
                    let _ = writeln!(out, "{indent}{p}");
                }
            }
            None => {}
        }
        if let Some(member) = &layer.base_image_member {
            let _ = writeln!(out, "{indent}(base image: {member})");
        }
        annotations(out, &indent, &layer.annotations);
    }
}

/// A config value as lines: `Env` and `Labels` one entry a line, `ExposedPorts` its ports,
/// commands as the JSON arrays they are, text as it is.
fn config_lines(key: &str, value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    match (key, value) {
        (_, Value::String(s)) => vec![s.clone()],
        ("Env", Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        ("Labels", Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(v) => format!("{k}={v}"),
                None => format!("{k}={v}"),
            })
            .collect(),
        ("ExposedPorts", Value::Object(map)) => {
            vec![map.keys().cloned().collect::<Vec<_>>().join(", ")]
        }
        (_, other) => vec![other.to_string()],
    }
}

/// `512 B`, `12.3 KiB`, `1.0 MiB`: binary units, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(12_900_000), "12.3 MiB");
        assert_eq!(human_size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn config_values_one_fact_a_line() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            config_lines("Entrypoint", &v(r#"["/bin/app","--serve"]"#)),
            [r#"["/bin/app","--serve"]"#]
        );
        assert_eq!(config_lines("Env", &v(r#"["A=1","B=2"]"#)), ["A=1", "B=2"]);
        assert_eq!(
            config_lines("ExposedPorts", &v(r#"{"80/tcp":{},"53/udp":{}}"#)),
            ["53/udp, 80/tcp"]
        );
        assert_eq!(config_lines("Labels", &v(r#"{"a":"b"}"#)), ["a=b"]);
        assert_eq!(config_lines("User", &v(r#""app""#)), ["app"]);
    }
}
