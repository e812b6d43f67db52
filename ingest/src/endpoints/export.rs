//! `GET /api/conversions/export`: every conversion the listing's filters match, in its
//! latest version, as CSV (default, or `Accept: text/csv`) or NDJSON (`format=ndjson` or
//! `Accept: application/x-ndjson`). Streamed from ClickHouse row by row into chunks of
//! about 64 KiB, written as the client reads them: memory stays flat whatever the size.
//! An error after the first chunk can only end the stream early; the client sees a
//! truncated body (no final chunk), never a partial file that looks whole.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::Conversion;
use futures_util::stream;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::common::Caller;
use crate::error::ApiError;
use crate::request::{ListParams, QueryPairs};
use crate::state::AppState;
use crate::views::ConversionView;

const CHUNK_BYTES: usize = 64 * 1024;

const CSV_COLUMNS: [&str; 22] = [
    "conversion_id",
    "order_id",
    "created_at",
    "updated_at",
    "source",
    "campaign_id",
    "affiliate_id",
    "link_id",
    "click_id",
    "attribution_method",
    "click_time",
    "seconds_from_click",
    "event_type",
    "amount",
    "currency",
    "commission_amount",
    "commission_currency",
    "commission_rule",
    "status",
    "status_reason",
    "note",
    "metadata",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Ndjson,
}

#[utoipa::path(
    get,
    path = "/api/conversions/export",
    tag = "reading",
    params(crate::openapi::schemas::ExportParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Every matching conversion's latest version, streamed with bounded memory",
            content((String = "text/csv"), (String = "application/x-ndjson"))),
        crate::openapi::responses::ReadErrors,
    )
)]
pub async fn export(
    Caller(principal): Caller,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = request.query_string();
    let (filter, _) = ListParams::from_query(query)?.into_filter(&principal)?;
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let format = match QueryPairs::parse(query.as_bytes())?.first("format") {
        Some("csv") => ExportFormat::Csv,
        Some("ndjson") => ExportFormat::Ndjson,
        Some(_) => return Err(ApiError::invalid("format", "must be csv or ndjson")),
        None if accept.contains("application/x-ndjson") => ExportFormat::Ndjson,
        None => ExportFormat::Csv,
    };
    let export = state.store.export_conversions(&filter)?;
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "conversions.csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "conversions.ndjson"),
    };
    let body = stream::try_unfold(Some((export, true)), move |exporting| async move {
        let Some((mut export, first)) = exporting else {
            return Ok(None);
        };
        let mut chunk = String::with_capacity(CHUNK_BYTES + 4096);
        if first && format == ExportFormat::Csv {
            chunk.push_str(&csv_line(CSV_COLUMNS.iter().map(|c| c.to_string())));
        }
        while chunk.len() < CHUNK_BYTES {
            match export.next().await.map_err(ApiError::from)? {
                Some(conversion) => match format {
                    ExportFormat::Csv => chunk.push_str(&csv_line(csv_cells(&conversion))),
                    ExportFormat::Ndjson => {
                        chunk.push_str(&json_line(&conversion));
                        chunk.push('\n');
                    }
                },
                None => {
                    return Ok::<_, ApiError>(
                        (!chunk.is_empty()).then(|| (Bytes::from(chunk), None)),
                    );
                }
            }
        }
        Ok(Some((Bytes::from(chunk), Some((export, false)))))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .streaming(body))
}

/// The API's view of the conversion, with the link and commission rule BI needs too.
fn json_line(conversion: &Conversion) -> String {
    let mut value = serde_json::to_value(ConversionView::from(conversion)).unwrap_or_default();
    if let Value::Object(object) = &mut value {
        object.insert("link_id".into(), conversion.link.as_str().into());
        object.insert(
            "commission_rule".into(),
            conversion.commission_rule.clone().into(),
        );
    }
    value.to_string()
}

fn csv_cells(c: &Conversion) -> impl Iterator<Item = String> {
    let time = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    let metadata: serde_json::Map<String, Value> = c
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    [
        c.id.as_str().to_owned(),
        c.order_id.to_string(),
        time(c.created_at),
        time(c.updated_at),
        c.source.as_str().to_owned(),
        c.campaign.to_string(),
        c.affiliate.to_string(),
        c.link.to_string(),
        c.click_id.to_string(),
        c.attribution
            .map(|a| a.method.as_str().to_owned())
            .unwrap_or_default(),
        c.attribution
            .map(|a| time(a.click_time))
            .unwrap_or_default(),
        c.attribution
            .map(|a| a.seconds_from_click.to_string())
            .unwrap_or_default(),
        c.event_type.as_str().to_owned(),
        c.currency.format(c.amount),
        c.currency.code().to_owned(),
        c.commission_currency.format(c.commission_amount),
        c.commission_currency.code().to_owned(),
        c.commission_rule.clone(),
        c.status.as_str().to_owned(),
        c.status_reason.clone(),
        c.note.clone(),
        Value::Object(metadata).to_string(),
    ]
    .into_iter()
}

/// RFC 4180: a cell with a comma, quote or line break is quoted, quotes doubled. A cell
/// that a spreadsheet would run as a formula (=, +, -, @ first) gets a leading quote mark.
fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let mut line = String::new();
    for (i, mut cell) in cells.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if cell.starts_with(['=', '+', '-', '@']) {
            cell.insert(0, '\'');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&cell);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_spreadsheets_would_run_are_defused() {
        let cells = ["=SUM(A1)", "a,b", "plain"].map(String::from);
        assert_eq!(csv_line(cells.into_iter()), "'=SUM(A1),\"a,b\",plain\r\n");
    }
}
