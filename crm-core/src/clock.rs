//! Time: the [`Timestamp`] type and the injectable [`Clock`].
//!
//! Every "now" in the core comes from the `Clock` given to [`crate::Crm`], so tests can move
//! time ([`ManualClock`]) instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub mod iso_date;

/// A calendar date without time (due dates, closing dates), ISO `YYYY-MM-DD` on the wire.
///
/// `time::Date`'s own serde form is a `[year, ordinal]` tuple; fields of this type go through
/// [`iso_date`] (`#[serde(with = "crate::clock::iso_date")]`, or its `option` / `nullable`
/// submodules) to get the ISO string.
pub type Date = time::Date;

/// An instant in UTC with microsecond precision; RFC 3339 on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current system time.
    pub fn now_utc() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((nanos / 1000) as i64)
    }

    /// This instant plus `d` (saturating).
    pub fn plus(self, d: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    /// As a `time::OffsetDateTime`.
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> Date {
        self.to_offset_date_time().date()
    }

    /// Parses an RFC 3339 timestamp.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        if let Some(micros) = parse_fast_rfc3339(s) {
            return Some(Timestamp(micros));
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1000)
            .ok()
            .map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_offset_date_time().format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every record carries two or three timestamps, and lists encode a hundred records
        // per answer: the fast path writes the bytes `time` would, without an allocation.
        let mut buf = [0u8; RFC3339_MAX];
        match fast_rfc3339(self.0, &mut buf) {
            Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

/// Longest fast-path form: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
const RFC3339_MAX: usize = 27;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes `micros` as `time`'s RFC 3339 form in UTC (fraction without trailing zeros,
/// none when whole) into `out`; `None` outside the years 0000-9999.
fn fast_rfc3339(micros: i64, out: &mut [u8; RFC3339_MAX]) -> Option<usize> {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    if !(0..10_000).contains(&y) {
        return None;
    }
    let tod = secs.rem_euclid(86_400);
    let put = |out: &mut [u8; RFC3339_MAX], at: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(out, 0, 4, y);
    out[4] = b'-';
    put(out, 5, 2, m);
    out[7] = b'-';
    put(out, 8, 2, d);
    out[10] = b'T';
    put(out, 11, 2, tod / 3600);
    out[13] = b':';
    put(out, 14, 2, tod / 60 % 60);
    out[16] = b':';
    put(out, 17, 2, tod % 60);
    let mut n = 19;
    if frac != 0 {
        let mut digits = 6;
        let mut f = frac;
        while f % 10 == 0 {
            f /= 10;
            digits -= 1;
        }
        out[n] = b'.';
        put(out, n + 1, digits, f);
        n += 1 + digits;
    }
    out[n] = b'Z';
    Some(n + 1)
}

/// Parses the form [`fast_rfc3339`] writes (`YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z`, a valid date
/// and time); `None` for anything else, which the full RFC 3339 parser then reads.
fn parse_fast_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > month_days[(m - 1) as usize]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let mut frac = 0;
    let rest = &b[19..];
    let zone = match rest.first() {
        Some(b'.') => {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=6).contains(&digits) {
                return None;
            }
            frac = num(20, 20 + digits)? * 10i64.pow(6 - digits as u32);
            &rest[1 + digits..]
        }
        _ => rest,
    };
    if zone != b"Z" {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000 + frac)
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.as_micros())))
    }

    /// A manual clock starting at the current system time.
    pub fn starting_now() -> Self {
        ManualClock::new(Timestamp::now_utc())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.0.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_micros(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_json() {
        let t = Timestamp::from_micros(1_763_895_000_123_456);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-11-23T10:50:00.123456Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::EPOCH);
        assert_eq!(c.now(), Timestamp::EPOCH);
        c.advance(std::time::Duration::from_secs(2));
        assert_eq!(c.now().as_micros(), 2_000_000);
    }
}

#[cfg(test)]
mod rfc3339_tests {
    use super::*;

    /// The fast paths agree with `time`'s RFC 3339 formatting and parsing.
    #[test]
    fn fast_rfc3339_matches_the_time_crate() {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut samples = vec![
            0,
            -1,
            1,
            999_999,
            -1_000_000,
            951_782_400_000_000,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            -62_167_219_200_000_000, // 0000-01-01
            1_767_600_000_000_000,
            1_767_600_000_120_000,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years 0000 to 9999, and microsecond fractions with and without trailing zeros.
            let span = 253_402_300_800_000_000_i64 + 62_167_219_200_000_000;
            let v = (x % span as u64) as i64 - 62_167_219_200_000_000;
            samples.push(v);
            samples.push(v - v % 1000);
            samples.push(v - v % 1_000_000);
        }
        for micros in samples {
            let t = Timestamp(micros);
            let want = t
                .to_offset_date_time()
                .format(&Rfc3339)
                .expect("years 0-9999 format");
            let mut buf = [0u8; RFC3339_MAX];
            let n = fast_rfc3339(micros, &mut buf).expect("in range");
            assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), want, "{micros}");
            assert_eq!(parse_fast_rfc3339(&want), Some(micros), "{want}");
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{want}\""));
        }
        // Out of the fast path's range: the full formatter's answer.
        let far = Timestamp(-62_167_219_200_000_001);
        assert_eq!(serde_json::to_string(&far).unwrap(), format!("\"{far}\""));
    }

    #[test]
    fn other_rfc3339_forms_go_to_the_full_parser() {
        for s in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567Z",
            "2026-01-01t00:00:00z",
            "2026-01-01T00:00:00+02:00",
            "+2026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_fast_rfc3339(s), None, "{s}");
            let full = OffsetDateTime::parse(s, &Rfc3339)
                .ok()
                .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1000).ok());
            assert_eq!(
                Timestamp::parse_rfc3339(s).map(Timestamp::as_micros),
                full,
                "{s}"
            );
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-01-01T00:00:00+02:00").map(Timestamp::as_micros),
            Some(1_767_218_400_000_000)
        );
    }
}
