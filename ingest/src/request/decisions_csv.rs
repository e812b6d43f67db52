//! The CSV form of bulk decisions, for brands that work in spreadsheets: a header line
//! naming the columns, then one decision per line. Columns: `status`, and `order_id` or
//! `conversion_id` to say which conversion; `note` is optional; other columns are
//! ignored. Fields follow RFC 4180 (commas, double quotes, `""` inside quotes, quoted line
//! breaks); a byte-order mark is skipped. Refusals name the line (the header is line 1)
//! and the column: `lines[4].status`.

use attributor::domain::{BrandId, ConversionId, OrderId, Status};

use super::bulk_status::{Decision, MAX_BULK_ITEMS};
use super::status_change::MAX_NOTE_BYTES;
use crate::error::ApiError;

/// Which column names the conversion.
enum IdColumn {
    Order(usize),
    Conversion(usize),
}

/// The decisions of an uploaded CSV, in line order. Order ids are the brand's, so the
/// conversion they name is derived from the calling brand.
pub fn decisions_from_csv(body: &[u8], brand: &BrandId) -> Result<Vec<Decision>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the CSV must be UTF-8 text".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(ApiError::invalid(
            "lines[1]",
            "the CSV is empty: it needs a header line",
        ));
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|field| field.trim().eq_ignore_ascii_case(name))
    };
    let id_column = match (column("order_id"), column("conversion_id")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "lines[1]",
                "the header must name order_id or conversion_id, not both",
            ));
        }
        (Some(n), None) => IdColumn::Order(n),
        (None, Some(n)) => IdColumn::Conversion(n),
        (None, None) => {
            return Err(ApiError::invalid(
                "lines[1]",
                "the header must name an order_id or conversion_id column",
            ));
        }
    };
    let status_column = column("status")
        .ok_or_else(|| ApiError::invalid("lines[1]", "the header must name a status column"))?;
    let note_column = column("note");

    let mut decisions = Vec::new();
    for (line, fields) in records {
        if decisions.len() == MAX_BULK_ITEMS {
            return Err(ApiError::invalid(
                format!("lines[{line}]"),
                format!(
                    "a CSV may hold at most {MAX_BULK_ITEMS} decisions; upload the rest separately"
                ),
            ));
        }
        let field = |n: usize| fields.get(n).map_or("", String::as_str);
        let refuse = |column: &str, message: &str| {
            ApiError::invalid(
                format!("lines[{line}].{column}"),
                format!("line {line}, column {column}: {message}"),
            )
        };
        let conversion_id = match id_column {
            IdColumn::Order(n) => {
                let order = OrderId::parse(field(n))
                    .map_err(|error| refuse("order_id", &error.to_string()))?;
                ConversionId::derive(brand, order.as_str()).to_string()
            }
            IdColumn::Conversion(n) => match field(n).trim() {
                "" => return Err(refuse("conversion_id", "is required")),
                id => id.to_owned(),
            },
        };
        let status = match field(status_column).trim().to_ascii_lowercase().parse() {
            Ok(Status::Approved) => Status::Approved,
            Ok(Status::Rejected) => Status::Rejected,
            _ => return Err(refuse("status", "must be approved or rejected")),
        };
        let note = note_column.map_or("", field).trim().to_owned();
        if note.len() > MAX_NOTE_BYTES {
            return Err(refuse(
                "note",
                &format!("must be at most {MAX_NOTE_BYTES} bytes"),
            ));
        }
        decisions.push(Decision {
            conversion_id,
            status,
            note,
        });
    }
    if decisions.is_empty() {
        return Err(ApiError::invalid("lines[2]", "the CSV holds no decisions"));
    }
    Ok(decisions)
}

/// The records of `text` with the line each starts on; blank lines are skipped.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, ApiError> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut starts_on = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                end_record(&mut records, &mut fields, starts_on);
                line += 1;
                starts_on = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(ApiError::invalid(
            format!("lines[{starts_on}]"),
            format!("line {starts_on}: a quoted field is never closed"),
        ));
    }
    fields.push(field);
    end_record(&mut records, &mut fields, starts_on);
    Ok(records)
}

fn end_record(records: &mut Vec<(usize, Vec<String>)>, fields: &mut Vec<String>, line: usize) {
    let record = std::mem::take(fields);
    if !(record.len() == 1 && record[0].trim().is_empty()) {
        records.push((line, record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(csv: &str) -> String {
        match decisions_from_csv(csv.as_bytes(), &BrandId::generate()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{csv}: {other:?}"),
        }
    }

    #[test]
    fn order_ids_name_the_brands_conversions() {
        let brand = BrandId::generate();
        let csv = "\u{feff}Order_ID,Status,Note\r\nA-1,approved,\"checked, shipped\"\r\n\r\nA-2, Rejected ,\"said \"\"no\"\"\nby phone\"\r\n";
        let decisions = decisions_from_csv(csv.as_bytes(), &brand).unwrap();
        assert_eq!(
            decisions,
            vec![
                Decision {
                    conversion_id: ConversionId::derive(&brand, "A-1").to_string(),
                    status: Status::Approved,
                    note: "checked, shipped".into(),
                },
                Decision {
                    conversion_id: ConversionId::derive(&brand, "A-2").to_string(),
                    status: Status::Rejected,
                    note: "said \"no\"\nby phone".into(),
                },
            ]
        );
    }

    #[test]
    fn refusals_name_the_line_and_column() {
        for (csv, field) in [
            ("", "lines[1]"),
            ("order_id,note\nA-1,x\n", "lines[1]"),
            ("status,note\napproved,x\n", "lines[1]"),
            ("order_id,conversion_id,status\n", "lines[1]"),
            ("order_id,status\n", "lines[2]"),
            (
                "order_id,status\nA-1,approved\nA-2,paid\n",
                "lines[3].status",
            ),
            (
                "order_id,status,note\nA-1,approved,\nA-2,approved,\"two\nlines\"\nA-3,pending,\n",
                "lines[5].status",
            ),
            ("order_id,status\n,approved\n", "lines[2].order_id"),
            (
                "conversion_id,status\n ,approved\n",
                "lines[2].conversion_id",
            ),
            ("order_id,status\n\"A-1,approved\n", "lines[2]"),
        ] {
            assert_eq!(refused_field(csv), field, "{csv:?}");
        }
        let too_many = format!(
            "order_id,status\n{}",
            (0..=MAX_BULK_ITEMS)
                .map(|n| format!("o-{n},approved\n"))
                .collect::<String>()
        );
        assert_eq!(
            refused_field(&too_many),
            format!("lines[{}]", MAX_BULK_ITEMS + 2)
        );
    }
}
