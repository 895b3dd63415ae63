//! How the message browser shows bytes: UTF-8 text, pretty-printed JSON
//! or hex, chosen per record (`auto`) or forced by the operator.

/// Shown at most this many bytes of one key, value or header; the rest is
/// cut with a note (a page of 100 records stays small).
pub const MAX_SHOWN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    Utf8,
    Json,
    Hex,
}

impl Format {
    pub fn parse(s: &str) -> Format {
        match s {
            "utf8" => Format::Utf8,
            "json" => Format::Json,
            "hex" => Format::Hex,
            _ => Format::Auto,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Utf8 => "utf8",
            Format::Json => "json",
            Format::Hex => "hex",
        }
    }
}

/// The text shown for `bytes` and the format actually used ("json",
/// "utf8" or "hex": a forced format that does not fit falls back, and the
/// label says so).
pub fn show(bytes: &[u8], format: Format) -> (String, &'static str) {
    let (shown, cut) = if bytes.len() > MAX_SHOWN_BYTES {
        (&bytes[..MAX_SHOWN_BYTES], bytes.len() - MAX_SHOWN_BYTES)
    } else {
        (bytes, 0)
    };
    let (mut text, used) = match format {
        Format::Hex => (hex(shown), "hex"),
        Format::Utf8 => match std::str::from_utf8(shown) {
            Ok(s) => (s.to_string(), "utf8"),
            Err(_) => (hex(shown), "hex"),
        },
        Format::Json | Format::Auto => match pretty_json(shown) {
            Some(j) if cut == 0 => (j, "json"),
            _ => match std::str::from_utf8(shown) {
                Ok(s) => (s.to_string(), "utf8"),
                Err(_) => (hex(shown), "hex"),
            },
        },
    };
    if cut > 0 {
        text.push_str(&format!("\n… {cut} more bytes not shown"));
    }
    (text, used)
}

/// Objects and arrays only: a bare number or string is shown as text.
fn pretty_json(bytes: &[u8]) -> Option<String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::to_string_pretty(&v).ok()
}

/// Lower-case hex, 32 bytes a line, bytes separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(if i % 32 == 0 { '\n' } else { ' ' });
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Percent-encodes a path segment or query value (everything but RFC
/// 3986's unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Bytes with a binary unit (KiB, MiB, ...), one decimal.
pub fn bytes_h(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
pub fn timestamp_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A time typed by the operator: milliseconds since the epoch, or
/// `YYYY-MM-DD[ T]HH:MM[:SS]` in UTC (what a `datetime-local` field sends).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.trim_end_matches('Z').split(':');
    let h = t.next()?.parse::<i64>().ok()?;
    let min = t.next()?.parse::<i64>().ok()?;
    let sec = match t.next() {
        Some(s) => s.parse::<f64>().ok()?,
        None => 0.0,
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec >= 61.0 {
        return None;
    }
    let days = days_from_civil(y, m, day);
    Some((days * 86_400 + h * 3600 + min * 60) * 1000 + (sec * 1000.0) as i64)
}

// Howard Hinnant's civil-calendar algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            show(br#"{"a":1}"#, Format::Auto),
            ("{\n  \"a\": 1\n}".to_string(), "json")
        );
        assert_eq!(show(b"42", Format::Auto), ("42".to_string(), "utf8"));
        assert_eq!(
            show(b"h\xffi", Format::Auto),
            ("68 ff 69".to_string(), "hex")
        );
        assert_eq!(show(b"hi", Format::Hex), ("68 69".to_string(), "hex"));
        assert_eq!(show(b"{x", Format::Json), ("{x".to_string(), "utf8"));
        let big = vec![b'a'; MAX_SHOWN_BYTES + 3];
        assert!(show(&big, Format::Utf8)
            .0
            .ends_with("3 more bytes not shown"));
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(timestamp_utc(0), "1970-01-01 00:00:00.000");
        let t = parse_time("2026-12-06T01:02:03").unwrap();
        assert_eq!(timestamp_utc(t), "2026-12-06 01:02:03.000");
        assert_eq!(parse_time("2024-02-29 23:59"), Some(1_709_251_140_000));
        assert_eq!(parse_time("1234"), Some(1234));
        assert_eq!(parse_time("2024-13-01T00:00"), None);
        assert_eq!(parse_time("nonsense"), None);
    }

    #[test]
    fn encoding_and_units() {
        assert_eq!(url_encode("a b/c.d"), "a%20b%2Fc.d");
        assert_eq!(bytes_h(512.0), "512 B");
        assert_eq!(bytes_h(1536.0), "1.5 KiB");
    }
}
