//! Reading the report rollups (`sql/0008_report_rollups.sql` hourly by link,
//! `sql/0013_report_daily_rollups.sql` daily without it) as rows shaped like the raw reads'
//! latest versions, for the outer queries of `reports.rs`.
//!
//! Each part of the range comes from the grain [`ReportSpec::rollup_grains`] chose, and the
//! parts are joined with `UNION ALL`. Every row carries a sign `s`: the hours moved out of a
//! daily row's bucket are read once and stand twice, at their own time (+1) and at their
//! UTC day's noon, where the daily row stands, negated (-1). Otherwise parts never overlap.
//!
//! Within a part, rows are taken from each (brand, UTC day)'s latest generation only, as
//! they are: a generation is one INSERT, and two writers draw the same one with a chance of
//! 2^-32 (see the refresher's `generation`), so its rows are not deduplicated again here.
//! Which generation is latest is read first ([`generations_sql`]) and then named in the
//! parts' reads, not found by a subquery of theirs: a query's reads of one table need not
//! see the same parts, and a recompute that lands (and merges the older generation away)
//! between them would leave that day with no rows at all. See `Store::report_groups` for
//! how the named generations are checked to have stood throughout.

use clickhouse::Row;
use serde::Deserialize;
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

/// A (brand, UTC day)'s latest generation in one table of one part of a report, as
/// [`generations_sql`] reads it: `part` is [`Table::of`] the part's place in the union.
#[derive(Row, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Generation {
    part: u8,
    brand_id: String,
    generation_day: String,
    version: u64,
}

/// Which of a grain's two tables a read is of.
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Clicks,
    Conversions,
}

impl Table {
    /// The number [`Generation::part`] gives this table of the union's `index`th part.
    fn of(self, index: usize) -> u8 {
        let table = match self {
            Table::Clicks => 0,
            Table::Conversions => 1,
        };
        // At most three parts (daily, hourly, moved hours).
        (index * 2 + table) as u8
    }
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

/// Most hours [`hours_in`] lists. Each costs about 25 bytes: 2,000 of them keep a query
/// small (50 KB), and cover a 400-day report by local day in New York, which moves five
/// hours a day.
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
    /// The report's owner and filters, and this part's ranges.
    fn conditions(&self, spec: &ReportSpec, part: &Part, conversions: bool) -> Conditions {
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
        Conditions::new(spec, time, conversions)
    }

    /// The WHERE of this grain's part: its [`Grain::conditions`], and the generations
    /// named for it (none: the part has no rows).
    fn latest(
        &self,
        spec: &ReportSpec,
        part: &Part,
        table: Table,
        generations: &[Generation],
        id: u8,
    ) -> Read {
        let conditions = self.conditions(spec, part, table == Table::Conversions);
        // Generations are per brand; a brand's report reads one brand, and leaving the
        // String out of the tuple halves the cost of the IN.
        let by_brand = matches!(spec.scope, ReportScope::Affiliate(_));
        let mut binds = conditions.binds;
        let named: Vec<String> = generations
            .iter()
            .filter(|g| g.part == id)
            .map(|g| {
                // A Date as text: the set converts it, one AST element where a toDate()
                // call would be two.
                let day = format!("'{}'", g.generation_day);
                if by_brand {
                    binds.push(g.brand_id.clone());
                    format!("(?, {day}, {})", g.version)
                } else {
                    format!("({day}, {})", g.version)
                }
            })
            .collect();
        if named.is_empty() {
            return Read {
                sql: "0".into(),
                binds: Vec::new(),
            };
        }
        let brand = if by_brand { "brand_id, " } else { "" };
        Read {
            sql: format!(
                "{} AND ({brand}{}, version) IN ({})",
                conditions.sql,
                self.day,
                named.join(", ")
            ),
            binds,
        }
    }

    /// The latest generation of each (brand, UTC day) among this part's rows.
    fn generations(&self, spec: &ReportSpec, part: &Part, table: Table, id: u8) -> Read {
        let conditions = self.conditions(spec, part, table == Table::Conversions);
        let name = match table {
            Table::Clicks => self.clicks,
            Table::Conversions => self.conversions,
        };
        Read {
            sql: format!(
                "SELECT toUInt8({id}) AS part, brand_id, toString({day}) AS generation_day, \
                        max(version) AS version \
                 FROM {name} WHERE {where_} GROUP BY brand_id, generation_day",
                day = self.day,
                where_ = conditions.sql
            ),
            binds: conditions.binds,
        }
    }

    fn conversion_part(
        &self,
        spec: &ReportSpec,
        (index, part): (usize, &Part),
        generations: &[Generation],
    ) -> Read {
        let table = self.conversions;
        let id = Table::Conversions.of(index);
        let conditions = self.latest(spec, part, Table::Conversions, generations, id);
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

    fn click_part(
        &self,
        spec: &ReportSpec,
        (index, part): (usize, &Part),
        generations: &[Generation],
    ) -> Read {
        let table = self.clicks;
        let id = Table::Clicks.of(index);
        let conditions = self.latest(spec, part, Table::Clicks, generations, id);
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

/// Both grains' parts of a report, the moved hours among them, in their order.
fn parts(grains: &RollupGrains) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    if !grains.daily.is_empty() {
        parts.push(Part {
            grain: &DAILY,
            ranges: &grains.daily,
            placement: Placement::Once,
        });
    }
    if !grains.hourly.is_empty() || parts.is_empty() {
        parts.push(Part {
            grain: &HOURLY,
            ranges: &grains.hourly,
            placement: Placement::Once,
        });
    }
    if !grains.moved.is_empty() {
        parts.push(Part {
            grain: &HOURLY,
            ranges: &grains.moved,
            placement: Placement::Moved,
        });
    }
    parts
}

/// `read` of every part, joined with `UNION ALL`.
fn union(grains: &RollupGrains, read: impl Fn((usize, &Part)) -> Read) -> Read {
    let parts: Vec<Read> = parts(grains).iter().enumerate().map(read).collect();
    Read {
        sql: parts
            .iter()
            .map(|p| p.sql.as_str())
            .collect::<Vec<_>>()
            .join(" UNION ALL "),
        binds: parts.into_iter().flat_map(|p| p.binds).collect(),
    }
}

/// The latest generation of each (brand, UTC day) in every table of every part of a
/// report, rows of [`Generation`].
pub(super) fn generations_sql(spec: &ReportSpec, grains: &RollupGrains) -> Read {
    union(grains, |(index, part)| {
        let clicks = part
            .grain
            .generations(spec, part, Table::Clicks, Table::Clicks.of(index));
        let conversions =
            part.grain
                .generations(spec, part, Table::Conversions, Table::Conversions.of(index));
        Read {
            sql: format!("{} UNION ALL {}", clicks.sql, conversions.sql),
            binds: [clicks.binds, conversions.binds].concat(),
        }
    })
}

/// The (brand, UTC day)s whose moved hours come from another generation than their daily
/// rows: the moved hours stand negated beside the daily row, and only that generation's
/// hours are part of it. A recompute writes a day's hourly generation just before its
/// daily one (the hourly one summed, at the same version), so for that moment the two
/// differ; a node stopped between the two leaves them so until the day is recomputed.
pub(super) fn days_moved_hours_disagree(
    grains: &RollupGrains,
    generations: &[Generation],
) -> Vec<(String, String)> {
    let parts = parts(grains);
    let daily = parts
        .iter()
        .position(|part| part.grain.stored_time == "day");
    let moved = parts
        .iter()
        .position(|part| part.placement == Placement::Moved);
    let (Some(daily), Some(moved)) = (daily, moved) else {
        return Vec::new();
    };
    let mut days = Vec::new();
    for table in [Table::Clicks, Table::Conversions] {
        let (daily, moved) = (table.of(daily), table.of(moved));
        let of_days: std::collections::HashMap<(&str, &str), u64> = generations
            .iter()
            .filter(|g| g.part == daily)
            .map(|g| ((g.brand_id.as_str(), g.generation_day.as_str()), g.version))
            .collect();
        days.extend(
            generations
                .iter()
                .filter(|g| g.part == moved)
                .filter(|g| {
                    of_days.get(&(g.brand_id.as_str(), g.generation_day.as_str()))
                        != Some(&g.version)
                })
                .map(|g| (g.brand_id.clone(), g.generation_day.clone())),
        );
    }
    days.sort_unstable();
    days.dedup();
    days
}

/// Clicks of the rollups: `t`, `k_campaign`, `k_affiliate`, `k_link` and `signed_clicks` (negative in the moved hours taken away).
pub(super) fn rollup_clicks(
    spec: &ReportSpec,
    grains: &RollupGrains,
    generations: &[Generation],
) -> Read {
    union(grains, |part| {
        part.1.grain.click_part(spec, part, generations)
    })
}

/// Conversions of the rollups under the names of the raw reads' latest versions, `n`
/// being how many conversions a row stands for. With `per_status`, every status of a
/// rollup row with conversions in it becomes a row of its own (`latest_status`);
/// otherwise rows are as they are, a third as many, with `latest_status` empty.
pub(super) fn rollup_conversions(
    spec: &ReportSpec,
    grains: &RollupGrains,
    generations: &[Generation],
    per_status: bool,
) -> Read {
    let rows = union(grains, |part| {
        part.1.grain.conversion_part(spec, part, generations)
    });
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
    use super::{Generation, MOST_LISTED_HOURS, Table, days_moved_hours_disagree, hours_in};
    use crate::reports::RollupGrains;

    #[test]
    fn moved_hours_agree_only_with_their_days_generation() {
        let day = 86_400;
        // Parts: daily (0), hourly (1), moved hours (2).
        let grains = RollupGrains {
            daily: vec![(day, 3 * day)],
            hourly: vec![(3 * day, 3 * day + 3600)],
            moved: vec![(2 * day - 3600, 2 * day)],
        };
        let generation = |table: Table, part: usize, day: &str, version: u64| Generation {
            part: table.of(part),
            brand_id: "brd_1".into(),
            generation_day: day.into(),
            version,
        };
        let mut generations = vec![
            generation(Table::Clicks, 0, "1970-01-02", 7),
            generation(Table::Clicks, 0, "1970-01-03", 8),
            generation(Table::Conversions, 0, "1970-01-02", 7),
            generation(Table::Clicks, 1, "1970-01-04", 9),
            generation(Table::Clicks, 2, "1970-01-02", 7),
            generation(Table::Conversions, 2, "1970-01-02", 7),
        ];
        let disagree = |grains: &RollupGrains, generations: &[Generation]| {
            days_moved_hours_disagree(grains, generations)
                .into_iter()
                .map(|(_, day)| day)
                .collect::<Vec<_>>()
        };
        assert!(disagree(&grains, &generations).is_empty());
        // The day's hourly generation written, its daily one not yet.
        generations[5].version = 10;
        assert_eq!(disagree(&grains, &generations), ["1970-01-02"]);
        // Moved hours of a day with no daily rows at all.
        generations[5] = generation(Table::Conversions, 2, "1970-01-03", 8);
        assert_eq!(disagree(&grains, &generations), ["1970-01-03"]);
        // Without moved hours there is nothing to agree on.
        let whole_days = RollupGrains {
            moved: Vec::new(),
            ..grains
        };
        assert!(disagree(&whole_days, &generations).is_empty());
    }

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
