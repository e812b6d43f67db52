//! Keyset paging of listings: a cursor is the sort key of a page's last row (created_at,
//! conversion_id), and the next page is what sorts after it. A deep page then costs what
//! the first does, where `page=N` makes ClickHouse read and skip every row before it.
//!
//! On the wire a cursor is `<unix seconds>.<conversion id>`; clients treat it as opaque.

use time::OffsetDateTime;

use crate::conversion::Conversion;
use crate::domain::ConversionId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: OffsetDateTime,
    pub conversion_id: ConversionId,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a cursor this service gave out (use meta.next_cursor as it is)")]
pub struct CursorError;

impl ListCursor {
    /// The cursor after `conversion`, the last row of a page.
    pub fn after(conversion: &Conversion) -> Self {
        Self {
            created_at: conversion.created_at,
            conversion_id: conversion.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.unix_timestamp(),
            self.conversion_id
        )
    }

    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let (seconds, id) = text.split_once('.').ok_or(CursorError)?;
        let seconds: u32 = seconds.parse().map_err(|_| CursorError)?;
        Ok(Self {
            created_at: OffsetDateTime::from_unix_timestamp(seconds.into())
                .map_err(|_| CursorError)?,
            conversion_id: ConversionId::parse(id).map_err(|_| CursorError)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn cursors_read_back_as_written_and_nothing_else_reads() {
        let cursor = ListCursor {
            created_at: datetime!(2026-03-20 14:30:00 UTC),
            conversion_id: ConversionId::parse("conv_0123456789abcdef0123456789abcdef").unwrap(),
        };
        assert_eq!(ListCursor::parse(&cursor.encode()), Ok(cursor));
        for text in [
            "",
            "1774017000",
            "x.conv_0123456789abcdef0123456789abcdef",
            "-1.conv_0123456789abcdef0123456789abcdef",
            "1774017000.conv_zz",
            "99999999999.conv_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(ListCursor::parse(text), Err(CursorError), "{text}");
        }
    }
}
