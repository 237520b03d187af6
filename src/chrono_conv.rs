//! Conversions between the wire's temporal types and `chrono`'s (feature `chrono`).
//!
//! The wire counts from 2000-01-01; a value out of `chrono`'s range, or a typed
//! null, converts to `None` rather than to a wrong date.

use crate::types::{Date, Time, Timespan, Timestamp};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("2000-01-01 is a valid date")
}

impl Date {
    /// The calendar date, or `None` for the null date or one `chrono` cannot hold.
    pub fn to_naive(self) -> Option<NaiveDate> {
        if self.is_null() {
            return None;
        }
        epoch().checked_add_signed(Duration::days(i64::from(self.0)))
    }

    /// The wire date of a calendar date, `None` when it does not fit 32 bits of days.
    pub fn from_naive(d: NaiveDate) -> Option<Date> {
        let days = d.signed_duration_since(epoch()).num_days();
        i32::try_from(days)
            .ok()
            .filter(|&d| d != i32::MIN)
            .map(Date)
    }
}

impl Time {
    /// The time of day, or `None` for the null time or one outside a day.
    pub fn to_naive(self) -> Option<NaiveTime> {
        let ms = u32::try_from(self.0).ok()?;
        NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000)
    }

    /// The wire time of a time of day (sub-millisecond digits are dropped).
    pub fn from_naive(t: NaiveTime) -> Time {
        let ms = t.num_seconds_from_midnight() * 1000 + t.nanosecond().min(999_999_999) / 1_000_000;
        Time(ms as i32)
    }
}

impl Timestamp {
    /// The date and time, or `None` for the null timestamp.
    pub fn to_naive(self) -> Option<NaiveDateTime> {
        if self.is_null() {
            return None;
        }
        let days = self.0.div_euclid(NANOS_PER_DAY);
        let nanos = self.0.rem_euclid(NANOS_PER_DAY);
        let date = epoch().checked_add_signed(Duration::days(days))?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            (nanos / 1_000_000_000) as u32,
            (nanos % 1_000_000_000) as u32,
        )?;
        Some(date.and_time(time))
    }

    /// The wire timestamp of a date and time, `None` outside 64 bits of nanoseconds.
    pub fn from_naive(dt: NaiveDateTime) -> Option<Timestamp> {
        let base = epoch().and_hms_opt(0, 0, 0)?;
        dt.signed_duration_since(base)
            .num_nanoseconds()
            .filter(|&n| n != i64::MIN)
            .map(Timestamp)
    }
}

impl Timespan {
    /// The duration, or `None` for the null timespan.
    pub fn to_duration(self) -> Option<Duration> {
        (!self.is_null()).then(|| Duration::nanoseconds(self.0))
    }

    /// The wire timespan of a duration, `None` outside 64 bits of nanoseconds.
    pub fn from_duration(d: Duration) -> Option<Timespan> {
        d.num_nanoseconds().filter(|&n| n != i64::MIN).map(Timespan)
    }
}

macro_rules! via {
    ($wire:ty, $chrono:ty, $to:ident, $from:expr) => {
        impl TryFrom<$wire> for $chrono {
            type Error = crate::ConversionError;
            fn try_from(v: $wire) -> Result<$chrono, Self::Error> {
                v.$to().ok_or(crate::ConversionError {
                    expected: stringify!($chrono),
                    found: "a null or out-of-range value",
                })
            }
        }
        impl TryFrom<$chrono> for $wire {
            type Error = crate::ConversionError;
            fn try_from(v: $chrono) -> Result<$wire, Self::Error> {
                ($from)(v).ok_or(crate::ConversionError {
                    expected: stringify!($wire),
                    found: "an out-of-range value",
                })
            }
        }
    };
}
via!(Date, NaiveDate, to_naive, Date::from_naive);
via!(Timestamp, NaiveDateTime, to_naive, Timestamp::from_naive);
via!(Timespan, Duration, to_duration, Timespan::from_duration);

impl From<NaiveTime> for Time {
    fn from(t: NaiveTime) -> Time {
        Time::from_naive(t)
    }
}

impl From<NaiveTime> for crate::RayObj {
    fn from(t: NaiveTime) -> crate::RayObj {
        Time::from_naive(t).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_round_trips() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
        assert_eq!(Date::from_naive(d), Some(Date(8840)));
        assert_eq!(Date(8840).to_naive(), Some(d));
        assert_eq!(Date::NULL.to_naive(), None);
        let t = NaiveTime::from_hms_milli_opt(9, 30, 0, 123).unwrap();
        assert_eq!(Time::from(t), Time(34_200_123));
        assert_eq!(Time(34_200_123).to_naive(), Some(t));
        assert_eq!(Time::NULL.to_naive(), None);
        let dt = d.and_hms_nano_opt(9, 30, 0, 5).unwrap();
        let ts = Timestamp::from_naive(dt).unwrap();
        assert_eq!(ts.to_naive(), Some(dt));
        let before = NaiveDate::from_ymd_opt(1999, 12, 31)
            .unwrap()
            .and_hms_opt(23, 0, 0)
            .unwrap();
        assert_eq!(
            Timestamp::from_naive(before).unwrap().to_naive(),
            Some(before)
        );
        let span = Duration::milliseconds(-1500);
        assert_eq!(
            Timespan::from_duration(span).unwrap().to_duration(),
            Some(span)
        );
        assert!(NaiveDate::try_from(Date::NULL).is_err());
    }
}
