//! `POST /api/conversions/status`: a brand decides many conversions in one call.
//!
//! Every decision is checked against the conversion's latest version (this node's journal
//! first, then ClickHouse) in input order, so an id sent twice sees the first decision.
//! The changes are queued together, so they share the workers' group commits, and the
//! call is answered only once every one of them is in the journal: a 200 means every
//! `updated` item is durable. If any change could not be journaled the whole call is
//! refused (503) and may be sent again as it was: what was journaled answers `unchanged`.

use std::collections::HashMap;

use actix_web::guard::GuardContext;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::domain::{BrandId, ConversionId};
use attributor::store::StatusChangeRow;
use attributor::{Conversion, PipelineError};
use futures_util::future::{join_all, try_join_all};
use serde::Serialize;

use super::actor::KeyActor;
use super::common::{Authed, BrandCaller};
use crate::error::ApiError;
use crate::request::{
    BulkStatusChange, Decision, MAX_BULK_ITEMS, decisions_from_csv, read_body_within,
};
use crate::state::AppState;

/// A thousand items with notes of a few hundred bytes each.
const MAX_BULK_BODY_BYTES: usize = 1024 * 1024;
const _: () = assert!(MAX_BULK_BODY_BYTES / MAX_BULK_ITEMS >= 1_000);

/// What became of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    Updated,
    Unchanged,
    NotFound,
    InvalidTransition,
}

#[derive(Debug, Serialize)]
struct ItemResult {
    conversion_id: String,
    result: Decided,
    /// The conversion's status once this item was applied (for `invalid_transition`, the
    /// status that forbade it).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_status: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
struct Tally {
    updated: usize,
    unchanged: usize,
    not_found: usize,
    invalid_transition: usize,
}

/// The CSV form (`Content-Type: text/csv`, columns `order_id` or `conversion_id`,
/// `status`, `note`) is the same operation; `decide_csv` serves it.
#[utoipa::path(
    post,
    path = "/api/conversions/status",
    tag = "reading",
    request_body(content(
        (crate::openapi::schemas::BulkStatusRequest = "application/json"),
        (String = "text/csv"),
    )),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Each item's result, in input order; answered once every change is journaled", body = crate::openapi::schemas::BulkStatusAnswer),
        crate::openapi::responses::ChangeErrors,
    )
)]
pub async fn decide(
    Authed {
        caller: BrandCaller(brand),
        body,
    }: Authed<BrandCaller, MAX_BULK_BODY_BYTES>,
    KeyActor(actor): KeyActor,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let bulk = BulkStatusChange::from_json(&body)?;
    answer_decisions(&state, &brand, &actor, &bulk.decisions).await
}

/// The same decisions uploaded as CSV (`Content-Type: text/csv`); see
/// [`decisions_from_csv`] for the columns.
pub async fn decide_csv(
    BrandCaller(brand): BrandCaller,
    KeyActor(actor): KeyActor,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body_within(&request, payload, MAX_BULK_BODY_BYTES).await?;
    let decisions = decisions_from_csv(&body, &brand)?;
    answer_decisions(&state, &brand, &actor, &decisions).await
}

/// Whether the request's body is CSV (any parameters, e.g. `charset`).
pub fn is_csv(request: &GuardContext<'_>) -> bool {
    request
        .head()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
}

async fn answer_decisions(
    state: &AppState,
    brand: &BrandId,
    actor: &str,
    decisions: &[Decision],
) -> Result<HttpResponse, ApiError> {
    let mut current = latest_versions(state, brand, decisions).await?;
    let now = state.clock.now();
    let mut results = Vec::with_capacity(decisions.len());
    let mut changes: Vec<(Conversion, StatusChangeRow)> = Vec::new();
    for decision in decisions {
        let conversion = ConversionId::parse(&decision.conversion_id)
            .ok()
            .and_then(|id| current.get_mut(&id));
        let Some(conversion) = conversion else {
            results.push(ItemResult {
                conversion_id: decision.conversion_id.clone(),
                result: Decided::NotFound,
                status: None,
                previous_status: None,
            });
            continue;
        };
        let was = conversion.status;
        let result = if was == decision.status {
            Decided::Unchanged
        } else if !was.may_become(decision.status) {
            Decided::InvalidTransition
        } else {
            *conversion = conversion.with_status(decision.status, &decision.note, now);
            changes.push((
                conversion.clone(),
                StatusChangeRow::of(conversion, was, actor),
            ));
            Decided::Updated
        };
        results.push(ItemResult {
            conversion_id: decision.conversion_id.clone(),
            result,
            status: Some(conversion.status.as_str()),
            previous_status: (result == Decided::Updated).then_some(was.as_str()),
        });
    }

    journal_all(state, changes).await?;
    let mut tally = Tally::default();
    for item in &results {
        *match item.result {
            Decided::Updated => &mut tally.updated,
            Decided::Unchanged => &mut tally.unchanged,
            Decided::NotFound => &mut tally.not_found,
            Decided::InvalidTransition => &mut tally.invalid_transition,
        } += 1;
    }
    if tally.updated > 0 {
        state.list_totals.forget_brand(brand);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": results, "meta": tally})))
}

/// The latest version of every asked-for conversion of this brand; other brands'
/// conversions are left out, so they answer `not_found` like ids that do not exist.
async fn latest_versions(
    state: &AppState,
    brand: &BrandId,
    decisions: &[Decision],
) -> Result<HashMap<ConversionId, Conversion>, ApiError> {
    let mut ids: Vec<ConversionId> = decisions
        .iter()
        .filter_map(|d| ConversionId::parse(&d.conversion_id).ok())
        .collect();
    ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.dedup();
    // The look-up loop batches concurrent asks into a few queries.
    let found = try_join_all(ids.iter().map(|id| state.dedup.find(id))).await?;
    Ok(found
        .into_iter()
        .flatten()
        .filter(|conversion| &conversion.brand == brand)
        .map(|conversion| (conversion.id.clone(), conversion))
        .collect())
}

/// Queues every change at once and waits for all of them; any refusal refuses the call.
/// What was journaled stays journaled (and cached) either way.
async fn journal_all(
    state: &AppState,
    changes: Vec<(Conversion, StatusChangeRow)>,
) -> Result<(), ApiError> {
    let answers = join_all(
        changes
            .into_iter()
            .map(|(next, change)| state.pipeline.record_change(next, change)),
    )
    .await;
    let mut refused: Option<PipelineError> = None;
    for answer in answers {
        match answer {
            Ok(conversion) => state.dedup.refresh(conversion).await,
            Err(error) => {
                refused.get_or_insert(error);
            }
        }
    }
    match refused {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}
