use std::fmt;
use std::str::FromStr;

/// A string that is not one of a closed set of values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: {allowed}")]
pub struct KindError {
    pub allowed: &'static str,
}

/// Closed vocabularies stored as their lowercase names, so BI queries read them as text.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = KindError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(KindError { allowed: concat!($($text, " "),+).trim_ascii_end() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

kind!(
    /// What the brand is reporting; each has its own commission rule.
    EventType {
        Sale => "sale",
        Lead => "lead",
        Signup => "signup",
        Trial => "trial",
    }
);

kind!(
    /// Where a conversion is in the brand's review.
    Status {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
    }
);

kind!(
    /// Which intake a conversion arrived by.
    Source {
        Api => "api",
        Postback => "postback",
        Pixel => "pixel",
    }
);

kind!(
    /// How a conversion was tied to a click.
    AttributionMethod {
        ClickId => "click_id",
        Cookie => "cookie",
        Email => "email",
    }
);

impl Status {
    /// A brand may approve or reject a pending conversion and reverse an approval;
    /// a rejection is final. Asking for the current status is allowed and changes nothing.
    pub fn may_become(self, next: Status) -> bool {
        use Status::*;
        self == next
            || matches!(
                (self, next),
                (Pending, Approved | Rejected) | (Approved, Rejected)
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for event in EventType::ALL {
            assert_eq!(event.as_str().parse::<EventType>(), Ok(*event));
        }
        assert_eq!(
            "purchase".parse::<EventType>(),
            Err(KindError {
                allowed: "sale lead signup trial"
            })
        );
    }

    #[test]
    fn status_transitions_follow_the_review_rules() {
        use Status::*;
        assert!(Pending.may_become(Approved));
        assert!(Pending.may_become(Rejected));
        assert!(Approved.may_become(Rejected));
        assert!(Approved.may_become(Approved));
        assert!(!Approved.may_become(Pending));
        assert!(!Rejected.may_become(Approved));
        assert!(!Rejected.may_become(Pending));
    }
}
