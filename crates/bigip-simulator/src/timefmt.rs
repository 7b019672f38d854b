//! Timestamps in the forms iControl REST uses (RFC 3339 strings and epoch microseconds), and
//! the epoch milliseconds of the change history.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch(time: SystemTime) -> Duration {
    // A clock before 1970 is not a state a BIG-IP (or this simulator) can meaningfully report.
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Microseconds since the Unix epoch, as in `expirationMicros` and `lastUpdateMicros`.
pub(super) fn epoch_micros(time: SystemTime) -> u64 {
    u64::try_from(since_epoch(time).as_micros()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, as in the change history's `atUnixMs`.
pub(super) fn epoch_millis(time: SystemTime) -> u64 {
    u64::try_from(since_epoch(time).as_millis()).unwrap_or(u64::MAX)
}

/// `2024-05-01T12:34:56.789Z`.
pub(super) fn rfc3339(time: SystemTime) -> String {
    let elapsed = since_epoch(time);
    let secs = elapsed.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let secs_of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60,
        secs_of_day % 60,
        elapsed.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both values are range-bounded by the algorithm (1..=31 and 1..=12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap_day = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(rfc3339(leap_day), "2000-02-29T00:00:00.123Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(later), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn epoch_micros_and_millis() {
        assert_eq!(epoch_micros(UNIX_EPOCH + Duration::from_millis(1500)), 1_500_000);
        assert_eq!(epoch_millis(UNIX_EPOCH + Duration::from_micros(1_500_999)), 1500);
    }
}
