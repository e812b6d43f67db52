//! The types a conversion is made of once it has crossed the HTTP boundary. Each one is
//! built by a `parse` that names what is wrong, so code past the boundary never sees an
//! unchecked string.

mod click_id;
mod email;
mod hex;
mod ids;
mod kinds;
mod money;
mod order_id;

pub use click_id::{ClickId, ClickIdError, ClickSigner};
pub use email::EmailHash;
pub use hex::lower_hex;
pub use ids::{AffiliateId, BrandId, CampaignId, ConversionId, IdError, LinkId};
pub use kinds::{AttributionMethod, EventType, KindError, Source, Status};
pub use money::{Amount, AmountError, Currency, CurrencyError, MAX_AMOUNT};
pub use order_id::{OrderId, OrderIdError};
