//! `GET /api/reports`: clicks, conversions and money of a brand's (or an affiliate's own)
//! traffic grouped by time and dimension, as JSON pages or streamed CSV.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::reports::{ReportRow, ReportSource, ReportTable};
use futures_util::stream;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use super::common::Caller;
use crate::error::ApiError;
use crate::request::{ReportFormat, ReportRequest, parse_report_query};
use crate::state::AppState;

/// CSV rows encoded per chunk of the streamed body.
const CSV_ROWS_PER_CHUNK: usize = 512;

#[utoipa::path(
    get,
    path = "/api/reports",
    tag = "reading",
    params(crate::openapi::schemas::ReportParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Grouped clicks, conversions (by status), conversion rate, amount, commission and EPC per currency; totals in meta. With format=csv or Accept: text/csv, the same rows as streamed CSV",
            content(
                (crate::openapi::schemas::ReportPage = "application/json"),
                (String = "text/csv"),
            )),
        crate::openapi::responses::ReadErrors,
    )
)]
pub async fn report(
    Caller(principal): Caller,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let wants_csv = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    let asked = parse_report_query(
        request.query_string(),
        &principal,
        wants_csv,
        state.clock.now(),
        state.report_max_days,
    )?;
    let source = if state.report_rollups && asked.spec.rollups_apply() {
        ReportSource::Rollups
    } else {
        ReportSource::Raw
    };
    let (clicks, conversions, source) = state.store.report_groups(&asked.spec, source).await?;
    let table = ReportTable::build(&asked.spec, clicks, conversions);
    let mut response = match asked.format {
        ReportFormat::Json => HttpResponse::Ok().json(json_answer(&asked, &table)),
        ReportFormat::Csv => csv_answer(&asked, table),
    };
    // Which figures answered: the rollups (as fresh as their last refresh) or the raw rows
    // (as fresh as the shipping; also when the rollups kept being recomputed under the
    // report); and of the rollups, which grains.
    let (source, grain) = match source {
        ReportSource::Rollups => ("rollups", Some(asked.spec.rollup_grains().name())),
        ReportSource::Raw => ("raw", None),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::HeaderName::from_static("x-affilync-report-source"),
        header::HeaderValue::from_static(source),
    );
    if let Some(grain) = grain {
        headers.insert(
            header::HeaderName::from_static("x-affilync-report-grain"),
            header::HeaderValue::from_static(grain),
        );
    }
    Ok(response)
}

fn json_answer(asked: &ReportRequest, table: &ReportTable) -> Value {
    let range = asked.page.range(table.rows.len());
    let data: Vec<Value> = table.rows[range]
        .iter()
        .map(|row| row_json(table, row))
        .collect();
    let spec = &asked.spec;
    let time = |at: time::OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
    json!({
        "data": data,
        "meta": {
            "page": asked.page.page,
            "limit": asked.page.limit,
            "total": table.rows.len(),
            "date_from": time(spec.from),
            "date_to": time(spec.until),
            "timezone": spec.time_zone_name,
            "group_by": spec.group_by.iter().map(|d| d.column()).collect::<Vec<_>>(),
            "totals": row_json(table, &table.totals),
        },
    })
}

fn row_json(table: &ReportTable, row: &ReportRow) -> Value {
    let mut object = Map::new();
    for (i, (dimension, value)) in table.group_by.iter().zip(&row.dims).enumerate() {
        object.insert(
            dimension.column().into(),
            Value::from(table.label(i, value)),
        );
    }
    object.insert("clicks".into(), json!(row.clicks));
    object.insert("conversions".into(), json!(row.conversions));
    object.insert("pending".into(), json!(row.pending));
    object.insert("approved".into(), json!(row.approved));
    object.insert("rejected".into(), json!(row.rejected));
    object.insert("conversion_rate".into(), json!(row.conversion_rate()));
    object.insert("amount".into(), json!(row.amount.formatted()));
    object.insert("commission".into(), json!(row.commission.formatted()));
    object.insert("epc".into(), json!(row.epc()));
    Value::Object(object)
}

/// A header line, then one line per row: the dimensions, the counts, and amount,
/// commission and EPC in a column per currency (empty where a row has none of it).
fn csv_answer(asked: &ReportRequest, table: ReportTable) -> HttpResponse {
    let currencies = table.currencies();
    let mut header: Vec<String> = table
        .group_by
        .iter()
        .map(|d| d.column().to_owned())
        .collect();
    header.extend(
        [
            "clicks",
            "conversions",
            "pending",
            "approved",
            "rejected",
            "conversion_rate",
        ]
        .map(String::from),
    );
    for code in &currencies {
        header.extend([
            format!("amount_{code}"),
            format!("commission_{code}"),
            format!("epc_{code}"),
        ]);
    }
    let range = asked.page.range(table.rows.len());
    let head = std::iter::once(Ok::<_, ApiError>(Bytes::from(csv_line(&header))));
    let body = (range.start..range.end)
        .step_by(CSV_ROWS_PER_CHUNK)
        .map(move |start| {
            let end = (start + CSV_ROWS_PER_CHUNK).min(range.end);
            let mut chunk = String::new();
            for row in &table.rows[start..end] {
                chunk.push_str(&csv_line(&row_cells(&table, &currencies, row)));
            }
            Ok(Bytes::from(chunk))
        });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"report.csv\"",
        ))
        .streaming(stream::iter(head.chain(body)))
}

fn row_cells(table: &ReportTable, currencies: &[String], row: &ReportRow) -> Vec<String> {
    let mut cells: Vec<String> = row
        .dims
        .iter()
        .enumerate()
        .map(|(i, value)| table.label(i, value))
        .collect();
    let optional = |value: Option<String>| value.unwrap_or_default();
    cells.push(optional(row.clicks.map(|n| n.to_string())));
    cells.extend([row.conversions, row.pending, row.approved, row.rejected].map(|n| n.to_string()));
    cells.push(optional(row.conversion_rate().map(|rate| rate.to_string())));
    let (amount, commission, epc) = (
        row.amount.formatted(),
        row.commission.formatted(),
        row.epc().unwrap_or_default(),
    );
    for code in currencies {
        for money in [&amount, &commission, &epc] {
            cells.push(money.get(code).cloned().unwrap_or_default());
        }
    }
    cells
}

/// RFC 4180: a cell with a comma, quote or line break is quoted, quotes doubled.
fn csv_line(cells: &[String]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&cell.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(cell);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_only_when_they_must_be() {
        let cells = [
            "a".to_owned(),
            "b,c".into(),
            "say \"hi\"".into(),
            String::new(),
        ];
        assert_eq!(csv_line(&cells), "a,\"b,c\",\"say \"\"hi\"\"\",\r\n");
    }
}
