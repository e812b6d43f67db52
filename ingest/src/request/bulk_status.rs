//! The body of `POST /api/conversions/status`: many decisions at once, either as items
//! (`{"items": [{"conversion_id", "status", "note"?}, ...]}`) or as one decision for a
//! list of ids (`{"conversion_ids": [...], "status", "note"?}`). Every refusal names the
//! field to blame, down to the item (`items[3].status`).

use attributor::domain::Status;
use serde_json::{Map, Value};

use super::status_change::MAX_NOTE_BYTES;
use crate::error::ApiError;

/// The most decisions one call carries.
pub const MAX_BULK_ITEMS: usize = 1_000;

/// One decision as asked. The id is kept as sent: an id that is not a conversion id cannot
/// exist, and is answered `not_found` like any other unknown id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub conversion_id: String,
    pub status: Status,
    pub note: String,
}

/// The decisions of one call, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkStatusChange {
    pub decisions: Vec<Decision>,
}

impl BulkStatusChange {
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            ApiError::BadRequest(format!("the body must be a JSON object: {error}"))
        })?;
        let Value::Object(object) = value else {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        };
        let decisions = match (object.get("items"), object.get("conversion_ids")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "conversion_ids",
                    "send either items or conversion_ids, not both",
                ));
            }
            (Some(items), None) => from_items(items)?,
            (None, Some(ids)) => from_ids(ids, &object)?,
            (None, None) => return Err(ApiError::required("items")),
        };
        Ok(Self { decisions })
    }
}

fn from_items(items: &Value) -> Result<Vec<Decision>, ApiError> {
    let items = list(items, "items")?;
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let field = |name: &str| format!("items[{n}].{name}");
            let Value::Object(item) = item else {
                return Err(ApiError::invalid(
                    format!("items[{n}]"),
                    "must be an object with conversion_id and status",
                ));
            };
            let conversion_id = match item.get("conversion_id") {
                Some(Value::String(id)) => id.clone(),
                None | Some(Value::Null) => {
                    return Err(ApiError::required(&field("conversion_id")));
                }
                Some(_) => {
                    return Err(ApiError::invalid(
                        field("conversion_id"),
                        "must be a string",
                    ));
                }
            };
            Ok(Decision {
                conversion_id,
                status: status(item.get("status"), &field("status"))?,
                note: note(item.get("note"), &field("note"))?,
            })
        })
        .collect()
}

fn from_ids(ids: &Value, object: &Map<String, Value>) -> Result<Vec<Decision>, ApiError> {
    let ids = list(ids, "conversion_ids")?;
    let status = status(object.get("status"), "status")?;
    let note = note(object.get("note"), "note")?;
    ids.iter()
        .enumerate()
        .map(|(n, id)| match id {
            Value::String(id) => Ok(Decision {
                conversion_id: id.clone(),
                status,
                note: note.clone(),
            }),
            _ => Err(ApiError::invalid(
                format!("conversion_ids[{n}]"),
                "must be a string",
            )),
        })
        .collect()
}

fn list<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>, ApiError> {
    let Value::Array(values) = value else {
        return Err(ApiError::invalid(field, "must be an array"));
    };
    if values.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if values.len() > MAX_BULK_ITEMS {
        return Err(ApiError::invalid(
            field,
            format!("must hold at most {MAX_BULK_ITEMS} entries; send the rest in another call"),
        ));
    }
    Ok(values)
}

fn status(value: Option<&Value>, field: &str) -> Result<Status, ApiError> {
    match value {
        None | Some(Value::Null) => Err(ApiError::required(field)),
        Some(Value::String(text)) => match text.parse::<Status>() {
            Ok(Status::Pending) | Err(_) => {
                Err(ApiError::invalid(field, "must be approved or rejected"))
            }
            Ok(status) => Ok(status),
        },
        Some(_) => Err(ApiError::invalid(field, "must be approved or rejected")),
    }
}

fn note(value: Option<&Value>, field: &str) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(note)) if note.len() > MAX_NOTE_BYTES => Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_NOTE_BYTES} bytes"),
        )),
        Some(Value::String(note)) => Ok(note.clone()),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(body: &str) -> String {
        match BulkStatusChange::from_json(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn items_keep_their_order_and_notes() {
        let bulk = BulkStatusChange::from_json(
            br#"{"items": [{"conversion_id": "b", "status": "rejected", "note": "fraud"},
                           {"conversion_id": "a", "status": "approved"}]}"#,
        )
        .unwrap();
        assert_eq!(
            bulk.decisions,
            vec![
                Decision {
                    conversion_id: "b".into(),
                    status: Status::Rejected,
                    note: "fraud".into()
                },
                Decision {
                    conversion_id: "a".into(),
                    status: Status::Approved,
                    note: String::new()
                },
            ]
        );
    }

    #[test]
    fn one_decision_applies_to_every_listed_id() {
        let bulk = BulkStatusChange::from_json(
            br#"{"conversion_ids": ["a", "b"], "status": "approved", "note": "ok"}"#,
        )
        .unwrap();
        assert_eq!(bulk.decisions.len(), 2);
        assert!(
            bulk.decisions
                .iter()
                .all(|d| d.status == Status::Approved && d.note == "ok")
        );
    }

    #[test]
    fn refusals_name_the_item_and_field() {
        let long_note = "x".repeat(MAX_NOTE_BYTES + 1);
        let too_many = format!(
            r#"{{"conversion_ids": [{}], "status": "approved"}}"#,
            vec![r#""a""#; MAX_BULK_ITEMS + 1].join(",")
        );
        for (body, field) in [
            (r#"{"items": []}"#.to_owned(), "items"),
            (r#"{"items": {}}"#.to_owned(), "items"),
            (
                r#"{"items": [{"conversion_id": "a", "status": "approved"}, {"conversion_id": "b", "status": "paid"}]}"#
                    .to_owned(),
                "items[1].status",
            ),
            (r#"{"items": [{"status": "approved"}]}"#.to_owned(), "items[0].conversion_id"),
            (r#"{"items": [{"conversion_id": 7, "status": "approved"}]}"#.to_owned(), "items[0].conversion_id"),
            (r#"{"items": [{"conversion_id": "a", "status": "pending"}]}"#.to_owned(), "items[0].status"),
            (format!(r#"{{"items": [{{"conversion_id": "a", "status": "approved", "note": "{long_note}"}}]}}"#), "items[0].note"),
            (r#"{"items": [5]}"#.to_owned(), "items[0]"),
            (r#"{"conversion_ids": ["a", 1], "status": "approved"}"#.to_owned(), "conversion_ids[1]"),
            (r#"{"conversion_ids": ["a"]}"#.to_owned(), "status"),
            (r#"{"conversion_ids": ["a"], "status": "approved", "note": 1}"#.to_owned(), "note"),
            (too_many, "conversion_ids"),
            (r#"{}"#.to_owned(), "items"),
        ] {
            assert_eq!(refused_field(&body), field, "{body}");
        }
        assert!(matches!(
            BulkStatusChange::from_json(b"[1]"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
