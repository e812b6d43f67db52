//! Joining click groups and conversion groups into report rows, their totals and order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::{Decimal, RoundingStrategy};

use super::spec::{Dimension, Granularity, ReportSpec, SortKey};
use crate::domain::Currency;

/// Decimal places of earnings per click.
const EPC_DECIMALS: u32 = 4;

/// Clicks of one combination of click dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickGroup {
    /// Values in the order of [`ReportSpec::click_dimensions`].
    pub dims: Vec<String>,
    pub clicks: u64,
}

/// Conversions of one combination of dimensions, amount currency and commission currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionGroup {
    /// Values in the order of [`ReportSpec::group_by`].
    pub dims: Vec<String>,
    pub currency: String,
    pub commission_currency: String,
    pub conversions: u64,
    pub pending: u64,
    pub approved: u64,
    pub rejected: u64,
    pub amount: Decimal,
    pub commission: Decimal,
}

/// Sums by currency code; never added across currencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Money(pub BTreeMap<String, Decimal>);

impl Money {
    fn add(&mut self, currency: &str, value: Decimal) {
        *self.0.entry(currency.to_owned()).or_default() += value;
    }

    /// Each currency's sum with exactly its minor digits: `{"USD": "10.00", "JPY": "1500"}`.
    pub fn formatted(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(code, value)| (code.clone(), format_money(code, *value)))
            .collect()
    }
}

fn format_money(code: &str, value: Decimal) -> String {
    match code.parse::<Currency>() {
        Ok(currency) => currency.format(value),
        Err(_) => value.normalize().to_string(),
    }
}

/// One line of a report, or its totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRow {
    /// Values in the order of [`ReportSpec::group_by`]; hours as padded Unix times (see
    /// [`ReportTable::label`]).
    pub dims: Vec<String>,
    /// None where the row is grouped by something clicks do not have.
    pub clicks: Option<u64>,
    pub conversions: u64,
    pub pending: u64,
    pub approved: u64,
    pub rejected: u64,
    pub amount: Money,
    pub commission: Money,
}

impl ReportRow {
    /// Conversions per click; None without clicks.
    pub fn conversion_rate(&self) -> Option<f64> {
        self.clicks
            .filter(|clicks| *clicks > 0)
            .map(|clicks| self.conversions as f64 / clicks as f64)
    }

    /// Commission per click in each currency, rounded half-up to four places; None
    /// without clicks.
    pub fn epc(&self) -> Option<BTreeMap<String, String>> {
        let clicks = self.clicks.filter(|clicks| *clicks > 0)?;
        Some(
            self.commission
                .0
                .iter()
                .map(|(code, value)| {
                    let mut per_click = (value / Decimal::from(clicks)).round_dp_with_strategy(
                        EPC_DECIMALS,
                        RoundingStrategy::MidpointAwayFromZero,
                    );
                    per_click.rescale(EPC_DECIMALS);
                    (code.clone(), per_click.to_string())
                })
                .collect(),
        )
    }

    fn add(&mut self, group: &ConversionGroup) {
        self.conversions += group.conversions;
        self.pending += group.pending;
        self.approved += group.approved;
        self.rejected += group.rejected;
        self.amount.add(&group.currency, group.amount);
        self.commission
            .add(&group.commission_currency, group.commission);
    }

    /// The figures a money sort compares: the values in currency order (one, where the
    /// request has one currency per row), then the currencies.
    fn money_key(&self, key: SortKey) -> (Vec<Decimal>, Vec<String>) {
        let sums: Vec<(String, Decimal)> = match key {
            SortKey::Amount => self.amount.0.clone().into_iter().collect(),
            SortKey::Commission => self.commission.0.clone().into_iter().collect(),
            _ => self
                .epc()
                .unwrap_or_default()
                .into_iter()
                .map(|(code, text)| (code, text.parse().unwrap_or_default()))
                .collect(),
        };
        sums.into_iter().map(|(code, value)| (value, code)).unzip()
    }
}

/// A report's rows, sorted, and their totals.
#[derive(Debug, Clone)]
pub struct ReportTable {
    pub group_by: Vec<Dimension>,
    pub time_zone: TimeZone,
    pub rows: Vec<ReportRow>,
    pub totals: ReportRow,
}

impl ReportTable {
    pub fn build(
        spec: &ReportSpec,
        clicks: Vec<ClickGroup>,
        conversions: Vec<ConversionGroup>,
    ) -> Self {
        let with_clicks = spec.rows_have_clicks();
        let blank = ReportRow {
            clicks: with_clicks.then_some(0),
            ..ReportRow::default()
        };
        let mut totals = ReportRow {
            clicks: Some(0),
            ..ReportRow::default()
        };
        let mut rows: BTreeMap<Vec<String>, ReportRow> = BTreeMap::new();
        for group in clicks {
            totals.clicks = totals.clicks.map(|n| n + group.clicks);
            if with_clicks {
                let row = rows.entry(group.dims).or_insert_with(|| blank.clone());
                row.clicks = row.clicks.map(|n| n + group.clicks);
            }
        }
        for group in &conversions {
            totals.add(group);
            rows.entry(group.dims.clone())
                .or_insert_with(|| blank.clone())
                .add(group);
        }
        let mut rows: Vec<ReportRow> = rows
            .into_iter()
            .map(|(dims, row)| ReportRow { dims, ..row })
            .collect();
        // The map gave the dimensions' order; a stable sort keeps it for ties.
        if !spec.sort.is_empty() {
            rows.sort_by(|a, b| compare(spec, a, b));
        }
        ReportTable {
            group_by: spec.group_by.clone(),
            time_zone: spec.time_zone.clone(),
            rows,
            totals,
        }
    }

    /// A dimension's value as a row shows it: hours as the local RFC 3339 time of their
    /// start with the zone's offset then (`2026-10-25T02:00:00+01:00`), days, weeks and
    /// months as their first local date, ids and names as they are.
    pub fn label(&self, index: usize, value: &str) -> String {
        if self.group_by.get(index) != Some(&Dimension::Time(Granularity::Hour)) {
            return value.to_owned();
        }
        value
            .parse::<i64>()
            .ok()
            .and_then(|seconds| Timestamp::from_second(seconds).ok())
            .map(|start| {
                start
                    .to_zoned(self.time_zone.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_else(|| value.to_owned())
    }

    /// The currencies any row has money in, for CSV columns.
    pub fn currencies(&self) -> Vec<String> {
        let mut codes: Vec<String> = self
            .totals
            .amount
            .0
            .keys()
            .chain(self.totals.commission.0.keys())
            .cloned()
            .collect();
        codes.sort();
        codes.dedup();
        codes
    }
}

fn compare(spec: &ReportSpec, a: &ReportRow, b: &ReportRow) -> Ordering {
    for &(key, descending) in &spec.sort {
        let order = match key {
            SortKey::Dimension(dimension) => {
                let at = spec.group_by.iter().position(|d| *d == dimension);
                at.map_or(Ordering::Equal, |i| a.dims[i].cmp(&b.dims[i]))
            }
            SortKey::Clicks => a.clicks.cmp(&b.clicks),
            SortKey::Conversions => a.conversions.cmp(&b.conversions),
            SortKey::Pending => a.pending.cmp(&b.pending),
            SortKey::Approved => a.approved.cmp(&b.approved),
            SortKey::Rejected => a.rejected.cmp(&b.rejected),
            SortKey::ConversionRate => a
                .conversion_rate()
                .partial_cmp(&b.conversion_rate())
                .unwrap_or(Ordering::Equal),
            money => a.money_key(money).cmp(&b.money_key(money)),
        };
        let order = if descending { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.dims.cmp(&b.dims)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::BrandId;
    use crate::reports::{ReportFilter, ReportScope};

    fn spec(group_by: Vec<Dimension>, sort: Vec<(SortKey, bool)>) -> ReportSpec {
        ReportSpec {
            scope: ReportScope::Brand(BrandId::generate()),
            from: datetime!(2026-03-01 0:00 UTC),
            until: datetime!(2026-03-02 0:00 UTC),
            time_zone: TimeZone::UTC,
            time_zone_name: "UTC".into(),
            filter: ReportFilter::default(),
            group_by,
            sort,
        }
    }

    fn sale(dims: &[&str], currency: &str, status: &str, amount: &str) -> ConversionGroup {
        ConversionGroup {
            dims: dims.iter().map(|d| d.to_string()).collect(),
            currency: currency.into(),
            commission_currency: currency.into(),
            conversions: 1,
            pending: u64::from(status == "pending"),
            approved: u64::from(status == "approved"),
            rejected: u64::from(status == "rejected"),
            amount: amount.parse().unwrap(),
            commission: amount.parse::<Decimal>().unwrap() / Decimal::TEN,
        }
    }

    #[test]
    fn rows_join_clicks_and_conversions_and_keep_currencies_apart() {
        let spec = spec(vec![Dimension::Campaign], vec![]);
        let clicks = vec![
            ClickGroup {
                dims: vec!["camp_a".into()],
                clicks: 4,
            },
            ClickGroup {
                dims: vec!["camp_c".into()],
                clicks: 2,
            },
        ];
        let conversions = vec![
            sale(&["camp_a"], "USD", "pending", "10.00"),
            sale(&["camp_a"], "EUR", "approved", "5.5"),
            sale(&["camp_b"], "JPY", "rejected", "1500"),
        ];
        let table = ReportTable::build(&spec, clicks, conversions);
        let a = &table.rows[0];
        assert_eq!(
            (a.clicks, a.conversions, a.pending, a.approved),
            (Some(4), 2, 1, 1)
        );
        assert_eq!(a.conversion_rate(), Some(0.5));
        assert_eq!(
            a.amount.formatted(),
            BTreeMap::from([
                ("EUR".into(), "5.50".into()),
                ("USD".into(), "10.00".into())
            ])
        );
        assert_eq!(
            a.epc().unwrap(),
            BTreeMap::from([
                ("EUR".into(), "0.1375".into()),
                ("USD".into(), "0.2500".into())
            ])
        );
        let b = &table.rows[1];
        assert_eq!(
            (b.clicks, b.conversion_rate(), b.epc()),
            (Some(0), None, None)
        );
        assert_eq!(b.amount.formatted()["JPY"], "1500");
        assert_eq!(table.rows[2].conversions, 0);
        assert_eq!(table.totals.clicks, Some(6));
        assert_eq!(table.totals.conversions, 3);
        assert_eq!(table.currencies(), ["EUR", "JPY", "USD"]);
    }

    #[test]
    fn rows_grouped_by_what_clicks_lack_carry_no_clicks_but_totals_do() {
        let spec = spec(vec![Dimension::Status], vec![(SortKey::Conversions, true)]);
        let clicks = vec![ClickGroup {
            dims: vec![],
            clicks: 9,
        }];
        let conversions = vec![
            sale(&["approved"], "USD", "approved", "1"),
            sale(&["pending"], "USD", "pending", "1"),
            sale(&["pending"], "USD", "pending", "1"),
        ];
        let table = ReportTable::build(&spec, clicks, conversions);
        assert_eq!(table.rows[0].dims, ["pending"]);
        assert!(table.rows.iter().all(|row| row.clicks.is_none()));
        assert_eq!(table.totals.clicks, Some(9));
        assert_eq!(table.totals.conversion_rate(), Some(3.0 / 9.0));
    }

    #[test]
    fn hours_are_labelled_in_the_zone_with_its_offset_then() {
        let mut spec = spec(vec![Dimension::Time(Granularity::Hour)], vec![]);
        spec.time_zone = TimeZone::get("Europe/Berlin").unwrap();
        let table = ReportTable::build(&spec, vec![], vec![]);
        // 2026-10-25 00:00 and 01:00 UTC: 02:00 local twice, before and after the change.
        assert_eq!(table.label(0, "001792886400"), "2026-10-25T02:00:00+02:00");
        assert_eq!(table.label(0, "001792890000"), "2026-10-25T02:00:00+01:00");
    }
}
