//! Wall-clock values Asterisk puts in messages: `Timestamp: 1795316250.282064`,
//! `EventTV: 2026-11-22T02:59:22.218+0000`, and the epoch part of Uniqueids.
//! Call timing uses tokio's clock instead; these are only labels.

use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

pub fn epoch_secs() -> u64 {
    now().0
}

/// `1795316250.282064`, as in Ping's `Timestamp`.
pub fn timestamp() -> String {
    let (s, us) = now();
    format!("{s}.{us:06}")
}

/// `2026-11-22T02:59:22.218+0000`, as in security events' `EventTV`.
pub fn event_tv() -> String {
    let (secs, us) = now();
    format_event_tv(secs, us / 1000)
}

pub fn format_event_tv(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_tv_matches_asterisk_format() {
        // 1795316362 is the epoch part of a Uniqueid recorded at 2026-11-22T02:59:22.
        assert_eq!(
            format_event_tv(1_795_316_362, 218),
            "2026-11-22T02:59:22.218+0000"
        );
        assert_eq!(format_event_tv(0, 0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            format_event_tv(951_782_400, 5),
            "2000-02-29T00:00:00.005+0000"
        );
    }
}
