//! Times as the plugin shows them: RFC 3339 in JSON, an age or a countdown in tables.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

pub fn of(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(
        time.0.as_second(),
        time.0.subsec_nanosecond().max(0).cast_unsigned(),
    )
    .unwrap_or_default()
}

pub fn of_micro(time: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.0.as_microsecond()).unwrap_or_default()
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `42s`, `5m`, `3h`, `2d`.
fn span(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `42s ago`, or `in 18s` for a time after `now`.
pub fn relative(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - time).num_seconds();
    if seconds >= 0 {
        format!("{} ago", span(seconds))
    } else {
        format!("in {}", span(-seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_countdowns_are_short() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let at = |offset: i64| now + chrono::Duration::seconds(offset);
        assert_eq!(relative(at(-42), now), "42s ago");
        assert_eq!(relative(at(-600), now), "10m ago");
        assert_eq!(relative(at(18), now), "in 18s");
        assert_eq!(relative(at(-3 * 86_400), now), "3d ago");
        assert_eq!(rfc3339(now), "2027-01-15T08:00:00Z");
    }
}
