//! Serde helpers that put a [`Date`] on the wire as an ISO 8601 calendar date (`"2030-01-15"`).
//!
//! The workspace enables `time/serde` without `serde-human-readable`, so `time::Date`'s own
//! serde form is the `[year, ordinal]` tuple (`[2030, 15]`). Model fields use these helpers
//! instead, through `#[serde(with = "crate::clock::iso_date")]` (or the [`option`] and
//! [`nullable`] submodules):
//!
//! - **Serializing** to a human-readable format (JSON: API output, stored records, cursors)
//!   writes the ISO string. Non-human-readable formats keep `time`'s compact tuple.
//! - **Deserializing** from a human-readable format accepts the ISO string and, for records
//!   stored before dates were ISO, the legacy `[year, ordinal]` tuple. Strings must be exactly
//!   `YYYY-MM-DD` with a real calendar day: `"2030-02-30"`, `"2030-1-5"` or `"tomorrow"` are
//!   errors.
//!
//! ```
//! use crm_core::clock::{Date, iso_date};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Due {
//!     #[serde(with = "iso_date")]
//!     day: Date,
//! }
//!
//! let due: Due = serde_json::from_str(r#"{"day":"2030-01-15"}"#).unwrap();
//! assert_eq!(serde_json::to_string(&due).unwrap(), r#"{"day":"2030-01-15"}"#);
//! let legacy: Due = serde_json::from_str(r#"{"day":[2030,15]}"#).unwrap();
//! assert_eq!(legacy.day, due.day);
//! assert!(serde_json::from_str::<Due>(r#"{"day":"2030-02-30"}"#).is_err());
//! ```

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::Date;

/// `YYYY-MM-DD` (years beyond 9999 or before 0 get a sign, as ISO 8601's expanded form).
const FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Formats a date as an ISO 8601 calendar date, `YYYY-MM-DD`.
pub fn format(date: Date) -> String {
    // Formatting a `Date` with date-only components cannot fail; fall back to `Display`
    // (the same shape) rather than panic.
    date.format(FORMAT).unwrap_or_else(|_| date.to_string())
}

/// Parses an ISO 8601 calendar date, `YYYY-MM-DD`; `None` if malformed or not a real day.
///
/// Only the form [`format()`] produces is accepted: a leading `-` for years before 0 is, a
/// redundant `+` is not.
pub fn parse(s: &str) -> Option<Date> {
    if s.starts_with('+') {
        return None;
    }
    Date::parse(s, FORMAT).ok()
}

/// Serializes a [`Date`]: the ISO string for human-readable formats, `time`'s tuple otherwise.
///
/// # Errors
/// Only the serializer's own errors.
pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&format(*date))
    } else {
        date.serialize(serializer)
    }
}

/// Deserializes a [`Date`] from an ISO string or the legacy `[year, ordinal]` tuple.
///
/// # Errors
/// When the input is neither a valid `YYYY-MM-DD` date nor a valid `[year, ordinal]` pair.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(DateVisitor)
    } else {
        Date::deserialize(deserializer)
    }
}

/// Accepts `"YYYY-MM-DD"` or `[year, ordinal]`.
struct DateVisitor;

impl<'de> Visitor<'de> for DateVisitor {
    type Value = Date;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 date (YYYY-MM-DD)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Date, E> {
        parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Date, A::Error> {
        let year: i32 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"a [year, ordinal] pair"))?;
        let ordinal: u16 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &"a [year, ordinal] pair"))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &"a [year, ordinal] pair"));
        }
        Date::from_ordinal_date(year, ordinal).map_err(de::Error::custom)
    }
}

/// A [`Date`] (de)serialized through this module, for use inside `Option`s.
struct IsoDate(Date);

impl Serialize for IsoDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(IsoDate)
    }
}

/// The same for `Option<Date>` fields: `None` is `null`.
///
/// Use `#[serde(default, with = "crate::clock::iso_date::option")]` if the field may be
/// absent (container-level `#[serde(default)]` also covers it).
pub mod option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Date, IsoDate};

    /// Serializes `Some(date)` as the date, `None` as `null`.
    ///
    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
        date.map(IsoDate).serialize(serializer)
    }

    /// Deserializes `null` as `None`, anything else as a date (ISO string or legacy tuple).
    ///
    /// # Errors
    /// When a non-null value is not a valid date.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Date>, D::Error> {
        Ok(Option::<IsoDate>::deserialize(deserializer)?.map(|d| d.0))
    }
}

/// The same for patch fields, `Option<Option<Date>>`: absent keeps, `null` clears.
///
/// A present field deserializes to `Some(..)`: `null` to `Some(None)`, a date to
/// `Some(Some(date))`. An absent field is never passed to the deserializer, so the field
/// needs `#[serde(default)]` (or a container-level `default`) to become `None`. Serializing
/// writes `null` for both `None` and `Some(None)`, as the derived form of
/// `Option<Option<_>>` does.
pub mod nullable {
    use serde::{Deserializer, Serializer};

    use super::Date;

    /// Serializes `Some(Some(date))` as the date, anything else as `null`.
    ///
    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(
        date: &Option<Option<Date>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::option::serialize(&date.flatten(), serializer)
    }

    /// Deserializes a present field: `null` as `Some(None)`, a date as `Some(Some(date))`.
    ///
    /// # Errors
    /// When a non-null value is not a valid date.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<Date>>, D::Error> {
        super::option::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::macros::date;

    use super::Date;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        #[serde(with = "super")]
        d: Date,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Opt {
        #[serde(default, with = "super::option")]
        d: Option<Date>,
    }

    #[derive(Debug, PartialEq, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Patch {
        #[serde(with = "super::nullable")]
        d: Option<Option<Date>>,
    }

    fn plain(json: &str) -> serde_json::Result<Date> {
        serde_json::from_str::<Plain>(json).map(|p| p.d)
    }

    #[test]
    fn serializes_as_iso_calendar_date() {
        let p = Plain {
            d: date!(2030 - 01 - 15),
        };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"d":"2030-01-15"}"#);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"d": "2030-01-15"})
        );
        assert_eq!(super::format(date!(0987 - 12 - 31)), "0987-12-31");
    }

    #[test]
    fn accepts_iso_and_legacy_tuple() {
        assert_eq!(
            plain(r#"{"d":"2030-01-15"}"#).unwrap(),
            date!(2030 - 01 - 15)
        );
        assert_eq!(plain(r#"{"d":[2030,15]}"#).unwrap(), date!(2030 - 01 - 15));
        assert_eq!(plain(r#"{"d":[2024,366]}"#).unwrap(), date!(2024 - 12 - 31));
        // Also through `serde_json::Value` (what a JSONB column or a request body may go through).
        let v = serde_json::json!({"d": [2030, 15]});
        assert_eq!(
            serde_json::from_value::<Plain>(v).unwrap().d,
            date!(2030 - 01 - 15)
        );
    }

    #[test]
    fn rejects_invalid_dates() {
        for bad in [
            r#"{"d":"2030-02-30"}"#,
            r#"{"d":"tomorrow"}"#,
            r#"{"d":"2030-1-5"}"#,
            r#"{"d":"2030-01-15T00:00:00Z"}"#,
            r#"{"d":" 2030-01-15"}"#,
            r#"{"d":"20300115"}"#,
            r#"{"d":"+2030-01-15"}"#,
            r#"{"d":"02030-01-15"}"#,
            r#"{"d":""}"#,
            r#"{"d":20300115}"#,
            r#"{"d":[2023,366]}"#,
            r#"{"d":[2030]}"#,
            r#"{"d":[2030,15,1]}"#,
            r#"{"d":null}"#,
        ] {
            assert!(plain(bad).is_err(), "{bad} should be rejected");
        }
        let err = plain(r#"{"d":"tomorrow"}"#).unwrap_err().to_string();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
    }

    #[test]
    fn round_trips_extreme_dates() {
        for d in [
            Date::MIN,
            Date::MAX,
            date!(0000 - 01 - 01),
            date!(9999 - 12 - 31),
        ] {
            let json = serde_json::to_string(&Plain { d }).unwrap();
            assert_eq!(plain(&json).unwrap(), d, "{json}");
        }
    }

    #[test]
    fn option_maps_null_to_none() {
        let some = Opt {
            d: Some(date!(2030 - 01 - 15)),
        };
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            r#"{"d":"2030-01-15"}"#
        );
        assert_eq!(
            serde_json::to_string(&Opt { d: None }).unwrap(),
            r#"{"d":null}"#
        );
        assert_eq!(
            serde_json::from_str::<Opt>(r#"{"d":"2030-01-15"}"#).unwrap(),
            some
        );
        assert_eq!(
            serde_json::from_str::<Opt>(r#"{"d":[2030,15]}"#).unwrap(),
            some
        );
        assert_eq!(
            serde_json::from_str::<Opt>(r#"{"d":null}"#).unwrap().d,
            None
        );
        assert_eq!(serde_json::from_str::<Opt>("{}").unwrap().d, None);
        assert!(serde_json::from_str::<Opt>(r#"{"d":"2030-13-01"}"#).is_err());
    }

    #[test]
    fn nullable_keeps_absent_and_null_apart() {
        let p = |json: &str| serde_json::from_str::<Patch>(json).map(|p| p.d);
        assert_eq!(p("{}").unwrap(), None);
        assert_eq!(p(r#"{"d":null}"#).unwrap(), Some(None));
        assert_eq!(
            p(r#"{"d":"2030-01-15"}"#).unwrap(),
            Some(Some(date!(2030 - 01 - 15)))
        );
        assert_eq!(
            p(r#"{"d":[2030,15]}"#).unwrap(),
            Some(Some(date!(2030 - 01 - 15)))
        );
        assert!(p(r#"{"d":"2030-02-30"}"#).is_err());
        let set = Patch {
            d: Some(Some(date!(2030 - 01 - 15))),
        };
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"{"d":"2030-01-15"}"#
        );
        assert_eq!(
            serde_json::to_string(&Patch { d: Some(None) }).unwrap(),
            r#"{"d":null}"#
        );
    }
}
