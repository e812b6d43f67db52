//! Reading the report rollups (`sql/0008_report_rollups.sql` hourly by link,
//! `sql/0013_report_daily_rollups.sql` daily without it) as rows shaped like the raw reads'
//! latest versions, for the outer queries of `reports.rs`.
//!
//! Each part of the range comes from the grain [`ReportSpec::rollup_grains`] chose, and the
//! parts are joined with `UNION ALL`. Every row carries a sign `s`: the hours moved out of a
//! daily row's bucket are read twice, once at their own time (+1) and once at their UTC
//! day's noon, where the daily row stands, negated (-1). Otherwise parts never overlap.
//! Within a part, rows are taken from each (brand, UTC day)'s latest generation only (an
//! `IN` on `max(version)`, much cheaper than FINAL on 18.16), and each key of that
//! generation once: two nodes that recompute a day in the same second may write the same
//! generation twice, and those copies must not add up before a merge collapses them (`any`
//! of the figures as one tuple keeps each copy's figures together).

use time::OffsetDateTime;

use super::reports::{Columns, Conditions, time_ranges};
use crate::reports::{ReportSpec, RollupGrains};

/// SQL with `?` placeholders and their values, in order.
pub(super) struct Read {
    pub(super) sql: String,
    pub(super) binds: Vec<String>,
}

/// Where an hourly row's UTC day's daily row stands (see `DAILY.time`).
const NOON_OF_HOUR_DAY: &str = "toDateTime(toUInt32(toDate(hour, 'UTC')) * 86400 + 43200)";

/// One part of the union: a grain over some ranges, its rows stood at `time`, signed.
struct Part<'a> {
    grain: &'a Grain,
    ranges: &'a [(i64, i64)],
    time: &'a str,
    sign: i8,
}

/// Where the dimensions are in the rows of [`rollup_clicks`] (and of the parts of
/// [`rollup_conversions`]).
pub(super) const ROLLUP_KEYS: Columns = Columns {
    time: "t",
    campaign: "k_campaign",
    affiliate: "k_affiliate",
    link: "k_link",
    event_type: "''",
    status: "''",
    currency: "''",
};

/// The figures of a conversion rollup row, in the order the tuple `figures` holds them.
const CONVERSION_FIGURES: &str = "(pending, approved, rejected, amount_pending, \
    amount_approved, amount_rejected, commission_pending, commission_approved, \
    commission_rejected)";

/// One grain's table and how its rows name their time and link.
struct Grain {
    conversions: &'static str,
    clicks: &'static str,
    /// The stored time column, the row's time as a DateTime, and its UTC day.
    stored_time: &'static str,
    time: &'static str,
    day: &'static str,
    /// Key columns besides brand and time; the daily rollups have no link.
    link: &'static str,
    link_key: &'static str,
}

const HOURLY: Grain = Grain {
    conversions: "report_conversions_hourly",
    clicks: "report_clicks_hourly",
    stored_time: "hour",
    time: "hour",
    day: "toDate(hour, 'UTC')",
    link: "link_id",
    link_key: "link_id, ",
};

const DAILY: Grain = Grain {
    conversions: "report_conversions_daily",
    clicks: "report_clicks_daily",
    stored_time: "day",
    // Noon UTC of the day, whatever the server's zone: the local bucket holding most of it.
    time: "toDateTime(toUInt32(day) * 86400 + 43200)",
    day: "day",
    link: "''",
    link_key: "",
};

impl Grain {
    /// The WHERE of this grain's part: the report's owner and filters, its ranges, and
    /// each day's latest generation.
    fn conditions(
        &self,
        spec: &ReportSpec,
        ranges: &[(i64, i64)],
        table: &str,
        conversions: bool,
    ) -> Read {
        let time = match self.stored_time {
            "day" if !ranges.is_empty() => {
                let date = |seconds: i64| {
                    OffsetDateTime::from_unix_timestamp(seconds)
                        .map(|t| t.date().to_string())
                        .unwrap_or_default()
                };
                let each: Vec<String> = ranges
                    .iter()
                    .map(|(from, until)| {
                        format!(
                            "(day >= toDate('{}') AND day < toDate('{}'))",
                            date(*from),
                            date(*until)
                        )
                    })
                    .collect();
                format!("({})", each.join(" OR "))
            }
            _ => time_ranges(self.time, ranges),
        };
        let conditions = Conditions::new(spec, time, conversions);
        let day = self.day;
        Read {
            sql: format!(
                "{where_} AND (brand_id, {day}, version) IN (\
                    SELECT brand_id, {day} AS generation_day, max(version) FROM {table} \
                    WHERE {where_} GROUP BY brand_id, generation_day)",
                where_ = conditions.sql
            ),
            binds: [conditions.binds.clone(), conditions.binds].concat(),
        }
    }

    fn conversion_part(
        &self,
        spec: &ReportSpec,
        ranges: &[(i64, i64)],
        time: &str,
        sign: i8,
    ) -> Read {
        let Grain { link, link_key, .. } = self;
        let table = self.conversions;
        let conditions = self.conditions(spec, ranges, table, true);
        Read {
            sql: format!(
                "SELECT {time} AS t, toInt8({sign}) AS s, campaign_id AS k_campaign, affiliate_id AS k_affiliate, \
                        {link} AS k_link, event_type AS k_event_type, currency AS k_currency, \
                        commission_currency AS k_commission_currency, \
                        any({CONVERSION_FIGURES}) AS figures \
                 FROM {table} WHERE {} \
                 GROUP BY brand_id, {stored_time}, campaign_id, affiliate_id, {link_key}\
                          event_type, currency, commission_currency, version",
                conditions.sql,
                stored_time = self.stored_time,
            ),
            binds: conditions.binds,
        }
    }

    fn click_part(&self, spec: &ReportSpec, ranges: &[(i64, i64)], time: &str, sign: i8) -> Read {
        let Grain { link, link_key, .. } = self;
        let table = self.clicks;
        let conditions = self.conditions(spec, ranges, table, false);
        Read {
            sql: format!(
                "SELECT {time} AS t, campaign_id AS k_campaign, affiliate_id AS k_affiliate, \
                        {link} AS k_link, toInt64(any(clicks)) * {sign} AS signed_clicks \
                 FROM {table} WHERE {} \
                 GROUP BY brand_id, {stored_time}, campaign_id, affiliate_id, {link_key}\
                          version",
                conditions.sql,
                stored_time = self.stored_time,
            ),
            binds: conditions.binds,
        }
    }
}

/// Both grains' parts of a report, and the moved hours twice, as one `UNION ALL`.
fn union(grains: &RollupGrains, read: impl Fn(Part) -> Read) -> Read {
    let mut parts = Vec::new();
    if !grains.daily.is_empty() {
        parts.push(read(Part {
            grain: &DAILY,
            ranges: &grains.daily,
            time: DAILY.time,
            sign: 1,
        }));
    }
    if !grains.hourly.is_empty() || parts.is_empty() {
        parts.push(read(Part {
            grain: &HOURLY,
            ranges: &grains.hourly,
            time: HOURLY.time,
            sign: 1,
        }));
    }
    if !grains.moved.is_empty() {
        for (time, sign) in [(HOURLY.time, 1), (NOON_OF_HOUR_DAY, -1)] {
            parts.push(read(Part {
                grain: &HOURLY,
                ranges: &grains.moved,
                time,
                sign,
            }));
        }
    }
    Read {
        sql: parts
            .iter()
            .map(|p| p.sql.as_str())
            .collect::<Vec<_>>()
            .join(" UNION ALL "),
        binds: parts.into_iter().flat_map(|p| p.binds).collect(),
    }
}

/// Clicks of the rollups: `t`, `k_campaign`, `k_affiliate`, `k_link` and `signed_clicks` (negative in the moved hours taken away).
pub(super) fn rollup_clicks(spec: &ReportSpec, grains: &RollupGrains) -> Read {
    union(grains, |part| {
        part.grain
            .click_part(spec, part.ranges, part.time, part.sign)
    })
}

/// Conversions of the rollups under the names of the raw reads' latest versions, `n`
/// being how many conversions a row stands for. With `per_status`, every status of a
/// rollup row with conversions in it becomes a row of its own (`latest_status`);
/// otherwise rows are as they are, a third as many, with `latest_status` empty.
pub(super) fn rollup_conversions(
    spec: &ReportSpec,
    grains: &RollupGrains,
    per_status: bool,
) -> Read {
    let rows = union(grains, |part| {
        part.grain
            .conversion_part(spec, part.ranges, part.time, part.sign)
    });
    let keys = "t AS latest_created_at, k_campaign AS latest_campaign_id, \
        k_affiliate AS latest_affiliate_id, k_link AS latest_link_id, \
        k_event_type AS latest_event_type, k_currency AS latest_currency, \
        k_commission_currency AS latest_commission_currency";
    // Counts signed (a moved hour's rows take away); amounts are Decimals, signed as they are.
    let f = |i: u8| {
        if i <= 3 {
            format!("toInt64(tupleElement(figures, {i})) * s")
        } else {
            format!("tupleElement(figures, {i}) * s")
        }
    };
    let sql = if per_status {
        format!(
            "SELECT *, \
                 if(latest_status = 'pending', n, toInt64(0)) AS n_pending, \
                 if(latest_status = 'approved', n, toInt64(0)) AS n_approved, \
                 if(latest_status = 'rejected', n, toInt64(0)) AS n_rejected \
             FROM ( \
                 SELECT {keys}, \
                     arrayJoin([('pending', {}, {}, {}), ('approved', {}, {}, {}), \
                                ('rejected', {}, {}, {})]) AS per_status, \
                     tupleElement(per_status, 1) AS latest_status, \
                     tupleElement(per_status, 2) AS n, \
                     tupleElement(per_status, 3) AS latest_amount, \
                     tupleElement(per_status, 4) AS latest_commission \
                 FROM ({}) \
             ) WHERE n != 0",
            f(1),
            f(4),
            f(7),
            f(2),
            f(5),
            f(8),
            f(3),
            f(6),
            f(9),
            rows.sql
        )
    } else {
        format!(
            "SELECT {keys}, '' AS latest_status, \
                 {} AS n_pending, {} AS n_approved, {} AS n_rejected, \
                 n_pending + n_approved + n_rejected AS n, \
                 {} + {} + {} AS latest_amount, \
                 {} + {} + {} AS latest_commission \
             FROM ({})",
            f(1),
            f(2),
            f(3),
            f(4),
            f(5),
            f(6),
            f(7),
            f(8),
            f(9),
            rows.sql
        )
    };
    Read {
        sql,
        binds: rows.binds,
    }
}
