//! TP-SCTS / TP-DT timestamps and TP-VP validity periods (TS 23.040
//! §9.2.3.11, §9.2.3.12).
//!
//! A timestamp is seven octets of swapped BCD: year, month, day, hour,
//! minute, second, and the offset from UTC in quarter hours whose bit 3 (the
//! high bit of the tens digit, which sits in the low nibble) is the sign.
//! The year has two digits; like POSIX `%y`, 69..=99 are read as 1969..=1999
//! and 00..=68 as 2000..=2068, so the widely published 1999 example decodes
//! to 1999.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::reader::Reader;
use crate::Error;

/// A service-centre timestamp with its UTC offset, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp(OffsetDateTime);

/// Largest offset a TP-SCTS can carry: 79 quarter hours.
const MAX_QUARTERS: i32 = 79;

impl Timestamp {
    /// Wraps a date-time that the 7-octet format can carry: year 1969..=2068,
    /// an offset that is a whole number of quarter hours within ±19:45.
    /// Sub-second precision is dropped.
    pub fn new(dt: OffsetDateTime) -> Result<Self, Error> {
        let year = dt.year();
        if !(1969..=2068).contains(&year) {
            return Err(Error::Parameter {
                name: "timestamp",
                reason: "year must be within 1969..=2068",
            });
        }
        let offset = dt.offset().whole_seconds();
        if offset % 900 != 0 || (offset / 900).abs() > MAX_QUARTERS {
            return Err(Error::Parameter {
                name: "timestamp",
                reason: "UTC offset must be whole quarter hours within ±19:45",
            });
        }
        let dt = dt.replace_nanosecond(0).unwrap_or(dt);
        Ok(Self(dt))
    }

    /// The date-time with the offset the PDU carried.
    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// RFC 3339 text with the PDU's own offset, e.g. `1999-03-29T15:16:59+02:00`.
    pub fn to_rfc3339(&self) -> String {
        // Formatting cannot fail for a year within 1969..=2068 and an offset
        // without seconds; fall back to the Debug form just in case.
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| format!("{:?}", self.0))
    }

    /// Writes the seven octets.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let dt = self.0;
        let year = (dt.year() % 100) as u8;
        for v in [
            year,
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
        ] {
            out.push(swap_bcd(v));
        }
        let secs = dt.offset().whole_seconds();
        let quarters = (secs.abs() / 900) as u8;
        let mut tz = swap_bcd(quarters);
        if secs < 0 {
            tz |= 0x08;
        }
        out.push(tz);
    }

    /// Reads the seven octets of the field named `field`.
    pub(crate) fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, Error> {
        let offset = r.offset();
        let b: [u8; 7] = r.array(field)?;
        let mut v = [0u8; 6];
        for (i, (slot, raw)) in v.iter_mut().zip(b).enumerate() {
            *slot = unswap_bcd(raw).ok_or_else(|| {
                Error::malformed(field, offset + i, "semi-octet is not a decimal digit")
            })?;
        }
        let [yy, mo, dd, hh, mi, ss] = v;
        let tz = b[6];
        let tens = tz & 0x07;
        let units = tz >> 4;
        if units > 9 {
            return Err(Error::malformed(
                field,
                offset + 6,
                "time zone semi-octet is not a decimal digit",
            ));
        }
        let quarters = i32::from(tens * 10 + units);
        let sign = if tz & 0x08 != 0 { -1 } else { 1 };
        let year = if yy >= 69 { 1900 } else { 2000 } + i32::from(yy);
        let bad = |why| Error::malformed(field, offset, why);
        let month = Month::try_from(mo).map_err(|_| bad("month out of range"))?;
        let date =
            Date::from_calendar_date(year, month, dd).map_err(|_| bad("day out of range"))?;
        let time = Time::from_hms(hh, mi, ss).map_err(|_| bad("time of day out of range"))?;
        let utc_offset = UtcOffset::from_whole_seconds(sign * quarters * 900)
            .map_err(|_| bad("time zone out of range"))?;
        Ok(Self(
            PrimitiveDateTime::new(date, time).assume_offset(utc_offset),
        ))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Two decimal digits (0..=99) to a swapped BCD octet.
const fn swap_bcd(v: u8) -> u8 {
    let v = v % 100;
    (v % 10) << 4 | (v / 10)
}

/// A swapped BCD octet to its value, or `None` if a nibble is above 9.
const fn unswap_bcd(b: u8) -> Option<u8> {
    let tens = b & 0x0F;
    let units = b >> 4;
    if tens > 9 || units > 9 {
        None
    } else {
        Some(tens * 10 + units)
    }
}

/// TP-VP: how long the service centre keeps trying (TS 23.040 §9.2.3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidityPeriod {
    /// Relative format (TP-VPF 10): one octet, see [`relative_duration`].
    Relative(u8),
    /// Absolute format (TP-VPF 11): a timestamp.
    Absolute(Timestamp),
    /// Enhanced format (TP-VPF 01): seven octets, see
    /// [`ValidityPeriod::duration`] for what is understood.
    Enhanced([u8; 7]),
}

/// The duration of a relative validity value: 0..=143 → (v+1)×5 min,
/// 144..=167 → 12 h + (v−143)×30 min, 168..=196 → (v−166) days,
/// 197..=255 → (v−192) weeks.
pub const fn relative_duration(v: u8) -> Duration {
    let minutes: u64 = match v {
        0..=143 => (v as u64 + 1) * 5,
        144..=167 => 12 * 60 + (v as u64 - 143) * 30,
        168..=196 => (v as u64 - 166) * 24 * 60,
        _ => (v as u64 - 192) * 7 * 24 * 60,
    };
    Duration::from_secs(minutes * 60)
}

impl ValidityPeriod {
    /// The smallest relative value whose duration is at least `d` (capped at
    /// 63 weeks, the largest the format can say).
    pub fn relative_at_least(d: Duration) -> Self {
        let v = (0..=255u8)
            .find(|&v| relative_duration(v) >= d)
            .unwrap_or(255);
        Self::Relative(v)
    }

    /// TP-VPF bits (4..3 of the first octet) for this format.
    pub(crate) const fn vpf(&self) -> u8 {
        match self {
            Self::Relative(_) => 0b10,
            Self::Absolute(_) => 0b11,
            Self::Enhanced(_) => 0b01,
        }
    }

    /// The relative duration, when the format states one: relative values,
    /// and enhanced formats 001 (relative octet), 010 (seconds) and 011
    /// (HH MM SS semi-octets). `None` for absolute and unknown formats.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Self::Relative(v) => Some(relative_duration(*v)),
            Self::Absolute(_) => None,
            Self::Enhanced(b) => {
                let functionality = b[0];
                match functionality & 0x07 {
                    0b001 => Some(relative_duration(b[1])),
                    0b010 => Some(Duration::from_secs(u64::from(b[1]))),
                    0b011 => {
                        let h = unswap_bcd(b[1])?;
                        let m = unswap_bcd(b[2])?;
                        let s = unswap_bcd(b[3])?;
                        Some(Duration::from_secs(
                            u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(s),
                        ))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Writes the field (1 or 7 octets).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Relative(v) => out.push(*v),
            Self::Absolute(t) => t.encode(out),
            Self::Enhanced(b) => out.extend_from_slice(b),
        }
    }

    /// Reads the field for TP-VPF `vpf` (0 = absent).
    pub(crate) fn decode(r: &mut Reader<'_>, vpf: u8) -> Result<Option<Self>, Error> {
        Ok(match vpf & 0x03 {
            0b00 => None,
            0b10 => Some(Self::Relative(r.u8("TP-VP")?)),
            0b11 => Some(Self::Absolute(Timestamp::decode(r, "TP-VP")?)),
            _ => Some(Self::Enhanced(r.array("TP-VP")?)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ts(hex: &str) -> Result<Timestamp, Error> {
        let b = hex::decode(hex).unwrap();
        Timestamp::decode(&mut Reader::new(&b), "TP-SCTS")
    }

    #[test]
    fn published_example_and_offsets() {
        assert_eq!(
            ts("99309251619580").unwrap().to_rfc3339(),
            "1999-03-29T15:16:59+02:00"
        );
        // 0x8A: tens 2 with sign bit, units 8 -> -28 quarters = -07:00.
        assert_eq!(
            ts("3130523210658A").unwrap().to_rfc3339(),
            "2013-03-25T23:01:56-07:00"
        );
        assert_eq!(
            ts("70402132522400").unwrap().to_rfc3339(),
            "2007-04-12T23:25:42Z"
        );
        // -03:30 = 14 quarters -> tens 1 | sign, units 4 -> 0x49.
        let t = ts("62107012000049").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-07T21:00:00-03:30");
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(hex::encode_upper(out), "62107012000049");
    }

    #[test]
    fn rejects_invalid_fields() {
        assert_eq!(
            ts("9930925161A580").unwrap_err(),
            Error::malformed("TP-SCTS", 5, "semi-octet is not a decimal digit")
        );
        assert!(ts("99319251619580").is_err()); // month 13
        assert!(ts("99202351619580").is_err()); // 32 March
        assert!(ts("993092516195A0").is_err());
        assert_eq!(ts("9930925161"), Err(Error::truncated("TP-SCTS", 0)));
    }

    #[test]
    fn relative_validity() {
        assert_eq!(relative_duration(0), Duration::from_secs(300));
        assert_eq!(relative_duration(143), Duration::from_secs(12 * 3600));
        assert_eq!(
            relative_duration(144),
            Duration::from_secs(12 * 3600 + 1800)
        );
        assert_eq!(relative_duration(167), Duration::from_secs(24 * 3600));
        assert_eq!(relative_duration(168), Duration::from_secs(2 * 86400));
        assert_eq!(relative_duration(196), Duration::from_secs(30 * 86400));
        assert_eq!(relative_duration(197), Duration::from_secs(5 * 7 * 86400));
        assert_eq!(relative_duration(255), Duration::from_secs(63 * 7 * 86400));
        assert_eq!(
            ValidityPeriod::relative_at_least(Duration::from_secs(86400)),
            ValidityPeriod::Relative(167)
        );
        let e = ValidityPeriod::Enhanced([0x03, 0x10, 0x30, 0x00, 0, 0, 0]);
        assert_eq!(e.duration(), Some(Duration::from_secs(3600 + 3 * 60)));
    }
}
