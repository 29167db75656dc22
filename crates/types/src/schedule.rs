//! The sidecar's schedule (`--schedule`, `spec.syncOptions.schedule`): cron with or without a
//! seconds field, cron aliases, and `@every <duration>`. One parser for both: the operator
//! refuses what the agent would refuse.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Debug, Clone)]
pub enum Schedule {
    /// `@every 1m30s`: a fixed interval after each sync finishes.
    Every(Duration),
    /// `0 30 * * * *` (with seconds), `*/5 * * * *`, `@hourly`: wall-clock times.
    Cron(Box<Cron>),
}

/// Says what is wrong and which forms work; the caller names the flag or field.
#[derive(Debug, thiserror::Error)]
#[error(
    "'{expression}' is not a valid schedule: {reason}. Use cron with seconds ('0 30 * * * *'), 5-field cron ('*/5 * * * *'), an alias ('@hourly') or '@every 1m'"
)]
pub struct ScheduleError {
    expression: String,
    reason: String,
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ScheduleError {
            expression: expression.to_string(),
            reason,
        };
        let trimmed = expression.trim();
        if let Some(interval) = trimmed.strip_prefix("@every") {
            let interval = parse_go_duration(interval.trim()).map_err(error)?;
            if interval < Duration::from_secs(1) {
                return Err(error("the interval must be at least 1s".into()));
            }
            return Ok(Schedule::Every(interval));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        parser
            .parse(trimmed)
            .map(|cron| Schedule::Cron(Box::new(cron)))
            .map_err(|e| error(e.to_string()))
    }
}

impl Schedule {
    /// How long to wait, from `now`, until the next run.
    pub fn delay_after(&self, now: DateTime<Local>) -> Option<Duration> {
        match self {
            Schedule::Every(interval) => Some(*interval),
            Schedule::Cron(cron) => {
                let next = cron.find_next_occurrence(&now, false).ok()?;
                (next - now).to_std().ok()
            }
        }
    }
}

impl Schedule {
    /// How long one period lasts as seen from `now`: the interval of `@every`, or the gap
    /// between a cron's next two times.
    pub fn period_after(&self, now: DateTime<Local>) -> Option<Duration> {
        match self {
            Schedule::Every(interval) => Some(*interval),
            Schedule::Cron(cron) => {
                let next = cron.find_next_occurrence(&now, false).ok()?;
                let after = cron.find_next_occurrence(&next, false).ok()?;
                (after - next).to_std().ok()
            }
        }
    }
}

/// Go's duration syntax as `@every` takes it: `90s`, `1m30s`, `1h`, `500ms`, `1.5h`.
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("'@every' needs a duration such as 5m".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("'{text}' lacks a unit (h, m, s, ms)"))?;
        if number_len == 0 {
            return Err(format!("'{text}' is not a duration such as 1h30m"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("'{}' is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            unit => return Err(format!("unknown unit '{unit}' (use h, m, s or ms)")),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Local> {
        Local
            .with_ymd_and_hms(2026, 3, 10, h, m, s)
            .single()
            .expect("unambiguous time")
    }

    #[test]
    fn every_takes_go_durations() {
        for (text, seconds) in [
            ("@every 1m", 60),
            ("@every 1m30s", 90),
            ("@every 2h", 7200),
            ("@every 1.5m", 90),
        ] {
            match text.parse::<Schedule>().expect(text) {
                Schedule::Every(d) => assert_eq!(d, Duration::from_secs(seconds), "{text}"),
                other @ Schedule::Cron(_) => panic!("{text} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn cron_with_seconds_runs_at_the_given_second() {
        let schedule: Schedule = "0 30 * * * *".parse().expect("seconds cron");
        assert_eq!(
            schedule.delay_after(at(10, 0, 0)),
            Some(Duration::from_secs(30 * 60))
        );
        assert_eq!(
            schedule.delay_after(at(10, 30, 0)),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn five_field_cron_and_aliases_work() {
        let schedule: Schedule = "*/5 * * * *".parse().expect("5-field");
        assert_eq!(
            schedule.delay_after(at(10, 2, 0)),
            Some(Duration::from_secs(180))
        );
        let hourly: Schedule = "@hourly".parse().expect("alias");
        assert_eq!(
            hourly.delay_after(at(10, 59, 0)),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_period_is_the_interval_or_the_gap_between_the_next_two_cron_times() {
        let every: Schedule = "@every 90s".parse().expect("every");
        assert_eq!(
            every.period_after(at(10, 0, 0)),
            Some(Duration::from_secs(90))
        );
        let cron: Schedule = "*/5 * * * *".parse().expect("5-field");
        assert_eq!(
            cron.period_after(at(10, 2, 0)),
            Some(Duration::from_secs(300))
        );
        let daily: Schedule = "0 30 2 * * *".parse().expect("daily");
        assert_eq!(
            daily.period_after(at(10, 0, 0)),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn bad_expressions_name_the_expression_and_the_forms_accepted() {
        for bad in [
            "",
            "@every",
            "@every 5",
            "@every 5 minutes",
            "@every 0s",
            "61 * * * *",
            "* * *",
            "@sometimes",
        ] {
            let err = bad.parse::<Schedule>().expect_err(bad).to_string();
            assert!(
                err.starts_with(&format!("'{bad}' is not a valid schedule: "))
                    && err.contains("'@every 1m'"),
                "{bad}: {err}"
            );
        }
    }
}
