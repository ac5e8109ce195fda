//! Millisecond timestamps with a fast RFC 3339 path.
//!
//! Replay must process hundreds of thousands of events per second, and
//! general-purpose RFC 3339 parsing is a noticeable share of that budget. The
//! trace writer always emits `YYYY-MM-DDTHH:MM:SS.sssZ`, so that exact shape is
//! parsed by hand; anything else (offsets, other precisions) falls back to the
//! `time` crate, so every valid RFC 3339 string is still accepted.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

/// A UTC instant with millisecond precision, stored as milliseconds since the
/// Unix epoch. Cheap to copy and compare; this is the trace's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Builds a timestamp from Unix milliseconds.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time (for live use; replay never calls this).
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// Parses an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Some(ms) = parse_fast(s.as_bytes()) {
            return Ok(Timestamp(ms));
        }
        let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| Error::Timestamp(s.to_owned()))?;
        Ok(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Seconds between `earlier` and `self` (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// Hour of day in UTC shifted by `offset_hours` (0..24).
    pub fn hour_of_day(self, offset_hours: i8) -> u8 {
        let hours = (self.0.div_euclid(3_600_000)) + i64::from(offset_hours);
        hours.rem_euclid(24) as u8
    }

    /// This instant plus `ms` milliseconds.
    pub const fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0 + ms)
    }
}

impl fmt::Display for Timestamp {
    /// Formats as `YYYY-MM-DDTHH:MM:SS.sssZ`, the trace format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let h = ms_of_day / 3_600_000;
        let mi = (ms_of_day / 60_000) % 60;
        let s = (ms_of_day / 1000) % 60;
        let ms = ms_of_day % 1000;
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(dt: OffsetDateTime) -> Self {
        Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`; `None` for anything else.
fn parse_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || !(b[b.len() - 1] == b'Z' || b[b.len() - 1] == b'z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let frac_ms = match b.len() {
        20 => 0,
        n if b[19] == b'.' && n > 21 && n <= 30 => {
            let digits = &b[20..n - 1];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut ms = 0i64;
            for i in 0..3 {
                ms = ms * 10 + digits.get(i).map_or(0, |c| i64::from(c - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(days * 86_400_000 + (h * 3600 + mi * 60 + s) * 1000 + frac_ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_matches_time_crate() {
        for s in [
            "2026-03-01T12:00:00.000Z",
            "2026-03-01T12:00:04Z",
            "1999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.5Z",
            "1970-01-01T00:00:00.000000001Z",
        ] {
            let fast = parse_fast(s.as_bytes()).unwrap();
            let slow = OffsetDateTime::parse(s, &Rfc3339).unwrap();
            assert_eq!(
                fast,
                (slow.unix_timestamp_nanos() / 1_000_000) as i64,
                "{s}"
            );
        }
    }

    #[test]
    fn offsets_fall_back_and_round_trip() {
        let t = Timestamp::parse("2026-03-01T14:00:00.250+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-03-01T12:00:00.250Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse("2026-02-30T00:00:00Z").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2026-03-01 12:00:00").is_err());
    }

    #[test]
    fn hour_of_day_with_offset() {
        let t = Timestamp::parse("2026-03-01T02:30:00Z").unwrap();
        assert_eq!(t.hour_of_day(0), 2);
        assert_eq!(t.hour_of_day(-5), 21);
    }
}
