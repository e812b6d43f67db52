//! Requests become domain types here; handlers past this point hold only checked values.

mod body;
mod conversion;
mod list;
mod pixel;
mod query;
mod report_query;
mod status_change;

pub use body::{drain_body, read_body, require_json};
pub use conversion::{ConversionInput, repair_postback_query, verify_click};
pub use list::{ListParams, parse_bound};
pub use pixel::PixelInput;
pub use query::QueryPairs;
pub use report_query::{ReportFormat, ReportPage, ReportRequest, parse_report_query};
pub use status_change::StatusChange;
