//! Grouped reports: clicks and conversions of a brand (or of one affiliate's traffic)
//! counted by time bucket and dimension, money kept per currency.
//!
//! A report is two reads of ClickHouse ([`crate::Store::report_groups`]): clicks grouped
//! by the click dimensions asked for, and conversions grouped by every dimension asked for
//! and by currency, each conversion counted once in its latest version. [`ReportTable`]
//! then joins the two on their dimensions, adds the ratios, sorts and totals.
//!
//! Clicks have no event type, status or currency. Rows grouped by one of those carry no
//! click figures (clicks, conversion rate and EPC are null), and filters on them narrow
//! conversions only; the totals always count every click in scope.

mod grain;
mod refresher;
mod spec;
mod table;

pub use grain::RollupGrains;
pub use refresher::{RollupConfig, RollupRefresher};
pub use spec::{
    Dimension, Granularity, ReportFilter, ReportScope, ReportSource, ReportSpec, SortKey,
};
pub use table::{ClickGroup, ConversionGroup, Money, ReportRow, ReportTable};
