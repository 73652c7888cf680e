//! Timestamps (image configs, zstd:chunked tables of contents): RFC 3339 parsing and
//! formatting, without a date library for three functions.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_now() -> String {
    format_unix(unix_now())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
pub fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)` with fields in range: what `--created` takes.
pub fn is_rfc3339(s: &str) -> bool {
    matches!(parse(s), Some((_, true)))
}

/// Seconds since the epoch of an RFC 3339 time, fractions dropped. A time without an offset
/// (`2024-05-01T12:00:00`, which older nixpkgs confs may hold) is taken as UTC.
pub fn parse_unix(s: &str) -> Option<i64> {
    parse(s).map(|(secs, _)| secs)
}

/// The time, and whether it carried an explicit offset.
fn parse(s: &str) -> Option<(i64, bool)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !((1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && sec < 61) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let (offset, explicit) = match rest {
        "" => (0, false),
        "Z" | "z" => (0, true),
        _ => {
            let r = rest.as_bytes();
            if r.len() != 6 || !matches!(r[0], b'+' | b'-') || r[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok().filter(|h| *h < 24)?;
            let om: i64 = rest[4..6].parse().ok().filter(|m| *m < 60)?;
            let sign = if r[0] == b'-' { -1 } else { 1 };
            (sign * (oh * 3600 + om * 60), true)
        }
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, explicit))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix(1), "1970-01-01T00:00:01Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56 UTC.
        assert_eq!(format_unix(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(format_unix(4_102_444_800), "2100-01-01T00:00:00Z");
        assert!(is_rfc3339(&rfc3339_now()));
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for secs in [0, 1, 951_827_696, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_unix(&format_unix(secs)), Some(secs));
        }
        assert_eq!(parse_unix("1970-01-01T00:00:01+00:00"), Some(1));
        assert_eq!(parse_unix("1970-01-01T02:00:01+02:00"), Some(1));
        assert_eq!(parse_unix("1969-12-31T23:00:01-01:00"), Some(1));
        assert_eq!(parse_unix("2001-02-03T04:05:06.789Z"), Some(981_173_106));
        assert_eq!(parse_unix("2001-02-03T04:05:06"), Some(981_173_106));
    }

    #[test]
    fn checks_rfc3339() {
        for good in [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.123Z",
            "2024-05-01T12:00:00+02:00",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00+0200",
            "now",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
