//! What the web app's calendar and plots are made of (pure): events counted per day in the
//! tenant's time zone, and an edge's offline periods read from the gaps in its telemetry.

use serde::Serialize;

/// Events on one calendar day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` in the time zone.
    pub day: String,
    /// Events that started that day.
    pub events: u32,
    /// Of them, not reviewed yet.
    pub unreviewed: u32,
}

/// Counts `(started_at_ms, reviewed)` per day in `tz`, newest day first.
pub fn days(times: &[(u64, bool)], tz: &jiff::tz::TimeZone) -> Vec<Day> {
    let mut by_day: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    for &(ms, reviewed) in times {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms.min(i64::MAX as u64) as i64) else {
            continue;
        };
        let day = ts.to_zoned_datetime(tz.clone()).date().to_string();
        let e = by_day.entry(day).or_default();
        e.0 += 1;
        if !reviewed {
            e.1 += 1;
        }
    }
    by_day
        .into_iter()
        .rev()
        .map(|(day, (events, unreviewed))| Day {
            day,
            events,
            unreviewed,
        })
        .collect()
}

/// A time an edge was not heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Offline {
    /// From its last report before the gap, Unix ms.
    pub from_ms: u64,
    /// To its first report after it (`None`: still offline at `now_ms`).
    pub to_ms: Option<u64>,
}

/// The offline periods in a run of report times (oldest first): a gap longer than `allowed_ms`
/// (a few report intervals) between two reports, or since the last one at `now_ms`.
pub fn offline(report_ms: &[u64], allowed_ms: u64, now_ms: u64) -> Vec<Offline> {
    let mut out: Vec<Offline> = report_ms
        .windows(2)
        .filter(|w| w[1].saturating_sub(w[0]) > allowed_ms)
        .map(|w| Offline {
            from_ms: w[0],
            to_ms: Some(w[1]),
        })
        .collect();
    if let Some(&last) = report_ms.last()
        && now_ms.saturating_sub(last) > allowed_ms
    {
        out.push(Offline {
            from_ms: last,
            to_ms: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_counted_in_the_time_zone_newest_first() {
        // 2026-12-07 23:30 UTC is already the 8th in Berlin.
        let late = 1_796_686_200_000; // 2026-12-07T23:30:00Z
        let noon = late - 11 * 3_600_000 - 1_800_000; // 12:00Z the same day
        let times = [(late, false), (noon, true), (noon + 1, false)];
        let utc = days(&times, &jiff::tz::TimeZone::UTC);
        assert_eq!(
            utc,
            [Day {
                day: "2026-12-07".into(),
                events: 3,
                unreviewed: 2
            }]
        );
        let berlin = days(&times, &jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
        assert_eq!(berlin.len(), 2);
        assert_eq!(
            (berlin[0].day.as_str(), berlin[0].events),
            ("2026-12-08", 1)
        );
        assert_eq!(
            (
                berlin[1].day.as_str(),
                berlin[1].events,
                berlin[1].unreviewed
            ),
            ("2026-12-07", 2, 1)
        );
    }

    #[test]
    fn gaps_longer_than_allowed_are_offline_periods() {
        let reports = [0, 30, 60, 300, 330];
        assert_eq!(
            offline(&reports, 90, 340),
            [Offline {
                from_ms: 60,
                to_ms: Some(300)
            }]
        );
        // Silent since the last report: still offline.
        assert_eq!(
            offline(&reports, 90, 1000).last(),
            Some(&Offline {
                from_ms: 330,
                to_ms: None
            })
        );
        assert!(offline(&[], 90, 1000).is_empty());
    }
}
