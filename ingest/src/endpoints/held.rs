//! What reads show of hold periods: a held conversion's `scheduled_approval_at`, and the
//! listing filter on it.

use attributor::Conversion;
use attributor::catalog::Principal;
use attributor::store::ScheduledRange;
use serde_json::Value;
use time::OffsetDateTime;

use crate::state::AppState;
use crate::views::{self, timestamp};

/// The conversion's view, with `scheduled_approval_at` (created + hold) when its campaign
/// holds conversions; without the field otherwise.
pub fn conversion_value(state: &AppState, conversion: &Conversion) -> Value {
    let mut value = views::value(conversion);
    if let (Some(hold), Value::Object(fields)) = (state.holds.get(&conversion.campaign), &mut value)
    {
        fields.insert(
            "scheduled_approval_at".into(),
            Value::String(timestamp(hold.scheduled_approval_at(conversion.created_at))),
        );
    }
    value
}

/// For each campaign with a hold the caller may list, the creation times whose approval
/// is scheduled in `[from, until)`.
pub fn scheduled_ranges(
    state: &AppState,
    principal: &Principal,
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> Vec<ScheduledRange> {
    let holds = match principal {
        Principal::Brand(brand) => state.holds.of_brand(brand),
        // An affiliate lists across brands; campaigns it has no conversions in add nothing.
        Principal::Affiliate(_) => state.holds.all(),
    };
    let mut ranges: Vec<ScheduledRange> = holds
        .into_iter()
        .map(|hold| ScheduledRange {
            created_from: from.map(|from| from - hold.period()),
            created_until: until.map(|until| until - hold.period()),
            campaign: hold.campaign,
        })
        .collect();
    // The same filter makes the same SQL, whatever order the holds were read in.
    ranges.sort_by(|a, b| a.campaign.as_str().cmp(b.campaign.as_str()));
    ranges
}
