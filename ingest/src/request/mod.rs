//! Requests become domain types here; handlers past this point hold only checked values.

mod body;
mod bulk_status;
mod conversion;
mod decisions_csv;
mod list;
mod pixel;
mod query;
mod report_query;
mod status_change;

pub use body::{MAX_BODY_BYTES, drain_body, read_body, read_body_within, require_json};
pub use bulk_status::{BulkStatusChange, Decision, MAX_BULK_ITEMS};
pub use conversion::{ConversionInput, repair_postback_query, verify_click};
pub use decisions_csv::decisions_from_csv;
pub use list::{ListParams, parse_bound};
pub use pixel::PixelInput;
pub use query::QueryPairs;
pub use report_query::{ReportFormat, ReportPage, ReportRequest, parse_report_query};
pub use status_change::StatusChange;
