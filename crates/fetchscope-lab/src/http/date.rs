//! IMF-fixdate (RFC 9110 §5.6.7), the format of the `Date` header.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`; times outside the
/// representable range are clamped to the Unix epoch.
pub(crate) fn imf_fixdate(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(0),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(0, |s| -s),
    };
    let dt = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let day = DAYS[usize::from(dt.weekday().number_days_from_monday()) % 7];
    let month = MONTHS[usize::from(u8::from(dt.month())).saturating_sub(1) % 12];
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        dt.day(),
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc_example() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(imf_fixdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn out_of_range_is_clamped_not_a_panic() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert_eq!(imf_fixdate(far), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
