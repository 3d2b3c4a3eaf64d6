//! The plots' series: per minute over the last hour, calls started per second, attempts ended by
//! outcome, and the callback tries' latency (median and 95th percentile). A minute, once past,
//! hardly changes, so the cache keeps the hour and re-reads only the minutes since its last
//! read (and the one before, for rows committed late), at most every [`REFRESH`]: a read
//! touches a few minutes of rows through the time indexes, never the hour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Integer, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::ops::OpsResult;

pub const MINUTES: i64 = 60;
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    started: i64,
    answered: i64,
    busy: i64,
    no_answer: i64,
    failed: i64,
    latency_p50_ms: Option<i32>,
    latency_p95_ms: Option<i32>,
}

/// Oldest minute first; the last is the current, partial minute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Start of each minute, Unix seconds.
    pub minutes: Vec<i64>,
    pub cps: Vec<f64>,
    pub answered: Vec<i64>,
    pub busy: Vec<i64>,
    pub no_answer: Vec<i64>,
    pub failed: Vec<i64>,
    pub latency_p50_ms: Vec<Option<i32>>,
    pub latency_p95_ms: Vec<Option<i32>>,
}

#[derive(Default)]
pub struct SeriesCache {
    minutes: BTreeMap<i64, Minute>,
    /// The minute of the last read, and when it was.
    read: Option<(i64, Instant)>,
}

#[derive(diesel::QueryableByName)]
struct Started {
    #[diesel(sql_type = BigInt)]
    minute: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Ended {
    #[diesel(sql_type = BigInt)]
    minute: i64,
    #[diesel(sql_type = BigInt)]
    answered: i64,
    #[diesel(sql_type = BigInt)]
    busy: i64,
    #[diesel(sql_type = BigInt)]
    no_answer: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

#[derive(diesel::QueryableByName)]
struct Latency {
    #[diesel(sql_type = BigInt)]
    minute: i64,
    #[diesel(sql_type = Nullable<Integer>)]
    p50: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    p95: Option<i32>,
}

const STARTED_SQL: &str = "\
SELECT extract(epoch FROM date_trunc('minute', originated_at))::bigint AS minute, count(*) AS n
FROM call_attempts WHERE originated_at >= to_timestamp($1::float8) GROUP BY 1";

const ENDED_SQL: &str = "\
SELECT extract(epoch FROM date_trunc('minute', ended_at))::bigint AS minute,
       count(*) FILTER (WHERE disposition = 'answered') AS answered,
       count(*) FILTER (WHERE disposition = 'busy') AS busy,
       count(*) FILTER (WHERE disposition = 'no_answer') AS no_answer,
       count(*) FILTER (WHERE coalesce(disposition, 'unknown')
                              NOT IN ('answered', 'busy', 'no_answer')) AS failed
FROM call_attempts WHERE ended_at >= to_timestamp($1::float8) GROUP BY 1";

const LATENCY_SQL: &str = "\
SELECT extract(epoch FROM date_trunc('minute', attempted_at))::bigint AS minute,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM callback_deliveries
WHERE attempted_at >= to_timestamp($1::float8) AND latency_ms IS NOT NULL GROUP BY 1";

impl SeriesCache {
    /// The series as of now, re-read when [`REFRESH`] has passed.
    pub async fn refresh(&mut self, conn: &mut AsyncPgConnection) -> OpsResult<Series> {
        let now = chrono::Utc::now().timestamp();
        let current = now - now.rem_euclid(60);
        let first = current - (MINUTES - 1) * 60;
        let due = self.read.is_none_or(|(_, at)| at.elapsed() >= REFRESH);
        if due {
            let from = self.read.map_or(first, |(m, _)| (m - 60).max(first));
            self.read_from(conn, from).await?;
            self.read = Some((current, Instant::now()));
        }
        self.minutes.retain(|m, _| *m >= first);
        Ok(self.series(first, current, now))
    }

    async fn read_from(&mut self, conn: &mut AsyncPgConnection, from: i64) -> OpsResult<()> {
        let started: Vec<Started> = diesel::sql_query(STARTED_SQL)
            .bind::<BigInt, _>(from)
            .load(conn)
            .await?;
        let ended: Vec<Ended> = diesel::sql_query(ENDED_SQL)
            .bind::<BigInt, _>(from)
            .load(conn)
            .await?;
        let latency: Vec<Latency> = diesel::sql_query(LATENCY_SQL)
            .bind::<BigInt, _>(from)
            .load(conn)
            .await?;
        self.minutes.retain(|m, _| *m < from);
        for s in started {
            self.minutes.entry(s.minute).or_default().started = s.n;
        }
        for e in ended {
            let m = self.minutes.entry(e.minute).or_default();
            (m.answered, m.busy, m.no_answer, m.failed) =
                (e.answered, e.busy, e.no_answer, e.failed);
        }
        for l in latency {
            let m = self.minutes.entry(l.minute).or_default();
            (m.latency_p50_ms, m.latency_p95_ms) = (l.p50, l.p95);
        }
        Ok(())
    }

    fn series(&self, first: i64, current: i64, now: i64) -> Series {
        let mut s = Series::default();
        for minute in (first..=current).step_by(60) {
            let m = self.minutes.get(&minute).copied().unwrap_or_default();
            // The current minute has lasted only so long.
            let seconds = if minute == current {
                (now - current).max(1)
            } else {
                60
            };
            s.minutes.push(minute);
            s.cps.push(m.started as f64 / seconds as f64);
            s.answered.push(m.answered);
            s.busy.push(m.busy);
            s.no_answer.push(m.no_answer);
            s.failed.push(m.failed);
            s.latency_p50_ms.push(m.latency_p50_ms);
            s.latency_p95_ms.push(m.latency_p95_ms);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_minutes_with_gaps_as_zeros_and_the_current_minute_partial() {
        let mut cache = SeriesCache::default();
        let current: i64 = 1_800_000_000; // a whole minute
        let first = current - (MINUTES - 1) * 60;
        cache.minutes.insert(
            first,
            Minute {
                started: 120,
                answered: 3,
                ..Minute::default()
            },
        );
        cache.minutes.insert(
            current,
            Minute {
                started: 20,
                ..Minute::default()
            },
        );
        let s = cache.series(first, current, current + 10);
        assert_eq!(s.minutes.len(), MINUTES as usize);
        assert_eq!(s.cps[0], 2.0);
        assert_eq!(s.answered[0], 3);
        assert_eq!(s.cps[1], 0.0);
        assert_eq!(s.cps[59], 2.0, "20 calls in the current minute's 10 s");
    }
}
