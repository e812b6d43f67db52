//! Property tests of the domain types a conversion is built from and of the commission
//! paid for it. Each property states a rule that the README or a type's documentation
//! promises and checks it over generated inputs, so that a change breaking the rule for
//! some input fails here even when the examples in the unit tests still pass.

mod click_ids;
mod money;
mod order_ids;
