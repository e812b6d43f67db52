//! Reading the report rollups (`sql/0008_report_rollups.sql` hourly by link,
//! `sql/0013_report_daily_rollups.sql` daily without it) as rows shaped like the raw reads'
//! latest versions, for the outer queries of `reports.rs`.
//!
//! Each part of the range comes from the grain [`ReportSpec::rollup_grains`] chose, and the
//! parts are joined with `UNION ALL`. Every row carries a sign `s`: the hours moved out of a
//! daily row's bucket are read once and stand twice, at their own time (+1) and at their
//! UTC day's noon, where the daily row stands, negated (-1). Otherwise parts never overlap.
//! Within a part, rows are taken from each (brand, UTC day)'s latest generation only (an
//! `IN` on `max(version)`, much cheaper than FINAL on 18.16) as they are: a generation is
//! one INSERT, and two writers draw the same one with a chance of 2^-32 (see the
//! refresher's `generation`), so its rows are not deduplicated again here.

use time::OffsetDateTime;

use super::reports::{Columns, Conditions, time_ranges};
use crate::reports::{ReportScope, ReportSpec, RollupGrains};

/// SQL with `?` placeholders and their values, in order.
pub(super) struct Read {
    pub(super) sql: String,
    pub(super) binds: Vec<String>,
}

/// Where a part's rows stand: the moved hours both at their own time (+1) and at their UTC
/// day's noon (-1), where the daily row stands (see `DAILY.time`); other rows once, +1.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Once,
    Moved,
}

/// One part of the union: a grain over some ranges, its rows placed.
struct Part<'a> {
    grain: &'a Grain,
    ranges: &'a [(i64, i64)],
    placement: Placement,
}

impl Placement {
    /// What a part's read selects for its time: `t` and `s` directly, or (the moved hours)
    /// `t0`, which [`Placement::place`] turns into both.
    fn time_columns(self, time: &str) -> String {
        match self {
            Placement::Once => format!("{time} AS t, toInt8(1) AS s"),
            Placement::Moved => format!("{time} AS t0"),
        }
    }

    /// `read`'s rows as rows with `t`, `s` and `columns`: the moved hours twice, by an
    /// ARRAY JOIN, rather than read twice; other rows as they are (a layer fewer, which
    /// ClickHouse 18.16 does not flatten for free).
    fn place(self, read: String, columns: &str) -> String {
        match self {
            Placement::Once => read,
            Placement::Moved => format!(
                "SELECT tupleElement(at, 1) AS t, tupleElement(at, 2) AS s, {columns} \
                 FROM ({read}) \
                 ARRAY JOIN [(t0, toInt8(1)), \
                     (toDateTime(toUInt32(toDate(t0, 'UTC')) * 86400 + 43200), toInt8(-1))] AS at"
            ),
        }
    }
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

/// The figures of a conversion rollup row; the outer query reads them by these names.
const CONVERSION_FIGURES: [&str; 9] = [
    "pending",
    "approved",
    "rejected",
    "amount_pending",
    "amount_approved",
    "amount_rejected",
    "commission_pending",
    "commission_approved",
    "commission_rejected",
];

/// The key columns every part passes on, under the names `ROLLUP_KEYS` and the outer
/// conversion query read.
const CLICK_KEYS: &str = "k_campaign, k_affiliate, k_link";
const CONVERSION_KEYS: &str =
    "k_campaign, k_affiliate, k_link, k_event_type, k_currency, k_commission_currency";

/// One grain's table and how its rows name their time and link.
struct Grain {
    conversions: &'static str,
    clicks: &'static str,
    /// The stored time column, the row's time as a DateTime, and its UTC day.
    stored_time: &'static str,
    time: &'static str,
    day: &'static str,
    /// The link column; the daily rollups have none.
    link: &'static str,
}

const HOURLY: Grain = Grain {
    conversions: "report_conversions_hourly",
    clicks: "report_clicks_hourly",
    stored_time: "hour",
    time: "hour",
    day: "toDate(hour, 'UTC')",
    link: "link_id",
};

const DAILY: Grain = Grain {
    conversions: "report_conversions_daily",
    clicks: "report_clicks_daily",
    stored_time: "day",
    // Noon UTC of the day, whatever the server's zone: the local bucket holding most of it.
    time: "toDateTime(toUInt32(day) * 86400 + 43200)",
    day: "day",
    link: "''",
};

/// Most hours [`hours_in`] lists. Each costs about 25 bytes, and the list is written twice
/// in a query (the part and its latest-generation subquery): 2,000 of them keep a query
/// well inside ClickHouse's `max_query_size` (256 KiB), and cover a 400-day report by local
/// day in New York, which moves five hours a day.
const MOST_LISTED_HOURS: usize = 2_000;

/// The whole hours of `ranges` as an `IN` list: the moved hours are one to five a day, and
/// an `IN` on the sorting key reads them much faster than as many ORed ranges. Past
/// [`MOST_LISTED_HOURS`], the ranges are ORed as they are (each covers a day's moved hours).
fn hours_in(ranges: &[(i64, i64)]) -> String {
    let hours = ranges
        .iter()
        .map(|(from, until)| (until - from).max(0) / 3600)
        .sum::<i64>();
    if hours > MOST_LISTED_HOURS as i64 {
        return time_ranges("hour", ranges);
    }
    let listed: Vec<String> = ranges
        .iter()
        .flat_map(|(from, until)| (*from..*until).step_by(3600))
        .map(|hour| format!("toDateTime({hour})"))
        .collect();
    if listed.is_empty() {
        return "0".into();
    }
    format!("hour IN ({})", listed.join(", "))
}

impl Grain {
    /// The WHERE of this grain's part: the report's owner and filters, its ranges, and
    /// each day's latest generation.
    fn conditions(&self, spec: &ReportSpec, part: &Part, table: &str, conversions: bool) -> Read {
        let ranges = part.ranges;
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
            _ if part.placement == Placement::Moved => hours_in(ranges),
            _ => time_ranges(self.time, ranges),
        };
        let conditions = Conditions::new(spec, time, conversions);
        let day = self.day;
        // Generations are per brand; a brand's report reads one brand, and leaving the
        // String out of the tuple halves the cost of the IN.
        let brand = match spec.scope {
            ReportScope::Brand(_) => "",
            ReportScope::Affiliate(_) => "brand_id, ",
        };
        Read {
            sql: format!(
                "{where_} AND ({brand}{day}, version) IN (\
                    SELECT {brand}{day} AS generation_day, max(version) FROM {table} \
                    WHERE {where_} GROUP BY {brand}generation_day)",
                where_ = conditions.sql
            ),
            binds: [conditions.binds.clone(), conditions.binds].concat(),
        }
    }

    fn conversion_part(&self, spec: &ReportSpec, part: &Part) -> Read {
        let table = self.conversions;
        let conditions = self.conditions(spec, part, table, true);
        let figures = CONVERSION_FIGURES.join(", ");
        let read = format!(
            "SELECT {time}, campaign_id AS k_campaign, affiliate_id AS k_affiliate, \
                    {link} AS k_link, event_type AS k_event_type, currency AS k_currency, \
                    commission_currency AS k_commission_currency, {figures} \
             FROM {table} WHERE {}",
            conditions.sql,
            time = part.placement.time_columns(self.time),
            link = self.link,
        );
        Read {
            sql: part
                .placement
                .place(read, &format!("{CONVERSION_KEYS}, {figures}")),
            binds: conditions.binds,
        }
    }

    fn click_part(&self, spec: &ReportSpec, part: &Part) -> Read {
        let table = self.clicks;
        let conditions = self.conditions(spec, part, table, false);
        // Signed where the sign is known: in the read, or after the moved hours' ARRAY JOIN.
        let (read_clicks, placed_clicks) = match part.placement {
            Placement::Once => ("toInt64(clicks) AS signed_clicks", "signed_clicks"),
            Placement::Moved => ("clicks", "toInt64(clicks) * s AS signed_clicks"),
        };
        let read = format!(
            "SELECT {time}, campaign_id AS k_campaign, affiliate_id AS k_affiliate, \
                    {link} AS k_link, {read_clicks} \
             FROM {table} WHERE {}",
            conditions.sql,
            time = part.placement.time_columns(self.time),
            link = self.link,
        );
        Read {
            sql: part
                .placement
                .place(read, &format!("{CLICK_KEYS}, {placed_clicks}")),
            binds: conditions.binds,
        }
    }
}

/// Both grains' parts of a report, the moved hours among them, as one `UNION ALL`.
fn union(grains: &RollupGrains, read: impl Fn(&Part) -> Read) -> Read {
    let mut parts = Vec::new();
    if !grains.daily.is_empty() {
        parts.push(read(&Part {
            grain: &DAILY,
            ranges: &grains.daily,
            placement: Placement::Once,
        }));
    }
    if !grains.hourly.is_empty() || parts.is_empty() {
        parts.push(read(&Part {
            grain: &HOURLY,
            ranges: &grains.hourly,
            placement: Placement::Once,
        }));
    }
    if !grains.moved.is_empty() {
        parts.push(read(&Part {
            grain: &HOURLY,
            ranges: &grains.moved,
            placement: Placement::Moved,
        }));
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
    union(grains, |part| part.grain.click_part(spec, part))
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
    let rows = union(grains, |part| part.grain.conversion_part(spec, part));
    let keys = "t AS latest_created_at, k_campaign AS latest_campaign_id, \
        k_affiliate AS latest_affiliate_id, k_link AS latest_link_id, \
        k_event_type AS latest_event_type, k_currency AS latest_currency, \
        k_commission_currency AS latest_commission_currency";
    // Counts signed (a moved hour's rows take away); amounts are Decimals, signed as they are.
    let f = |i: usize| {
        let figure = CONVERSION_FIGURES[i - 1];
        if i <= 3 {
            format!("toInt64({figure}) * s")
        } else {
            format!("{figure} * s")
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

#[cfg(test)]
mod tests {
    use super::{MOST_LISTED_HOURS, hours_in};

    #[test]
    fn moved_hours_are_listed_until_the_list_would_be_too_long() {
        let day = 86_400;
        assert_eq!(
            hours_in(&[(3 * 3600, 5 * 3600), (day, day + 3600)]),
            "hour IN (toDateTime(10800), toDateTime(14400), toDateTime(86400))"
        );
        assert_eq!(hours_in(&[]), "0");
        // A day's five moved hours, for more days than the list may hold: ranges instead,
        // one a day, and still every hour of them.
        let days = MOST_LISTED_HOURS / 5 + 1;
        let ranges: Vec<(i64, i64)> = (0..days as i64)
            .map(|d| (d * day, d * day + 5 * 3600))
            .collect();
        let sql = hours_in(&ranges);
        assert!(!sql.contains(" IN "), "{}", &sql[..80]);
        assert_eq!(sql.matches("hour >= ").count(), days);
        assert!(sql.len() < 100 * 1024, "{} bytes", sql.len());
    }
}
