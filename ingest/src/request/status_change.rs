use attributor::domain::Status;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ApiError;

pub(crate) const MAX_NOTE_BYTES: usize = 2_000;

/// The body of `PATCH /api/conversions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: Status,
    pub note: String,
}

#[derive(Deserialize)]
struct RawStatusChange<'a> {
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    note: Option<&'a RawValue>,
}

impl StatusChange {
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let raw: RawStatusChange = serde_json::from_slice(body).map_err(|error| {
            ApiError::BadRequest(format!("the body must be a JSON object: {error}"))
        })?;
        let status_text =
            string(raw.status, "status")?.ok_or_else(|| ApiError::required("status"))?;
        let status = match status_text.parse::<Status>() {
            Ok(Status::Pending) | Err(_) => {
                return Err(ApiError::invalid("status", "must be approved or rejected"));
            }
            Ok(status) => status,
        };
        let note = string(raw.note, "note")?.unwrap_or_default();
        if note.len() > MAX_NOTE_BYTES {
            return Err(ApiError::invalid(
                "note",
                format!("must be at most {MAX_NOTE_BYTES} bytes"),
            ));
        }
        Ok(Self { status, note })
    }
}

fn string(raw: Option<&RawValue>, field: &str) -> Result<Option<String>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approve_and_reject_are_requests() {
        let change = StatusChange::from_json(br#"{"status": "approved", "note": "ok"}"#).unwrap();
        assert_eq!(change.status, Status::Approved);
        assert_eq!(change.note, "ok");
        for body in [
            &br#"{"status": "pending"}"#[..],
            br#"{"status": "paid"}"#,
            br#"{"status": 1}"#,
            br#"{}"#,
            br#"{"status": "approved", "note": 5}"#,
        ] {
            assert!(matches!(
                StatusChange::from_json(body),
                Err(ApiError::Invalid { .. })
            ));
        }
    }
}
