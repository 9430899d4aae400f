use serde::{Deserialize, Serialize};

use super::declare::{Rules, entity};
use super::field::rules::*;
use super::{CompanyId, ContactId, UserId};
use crate::clock::{Date, Timestamp};
use crate::query::Value;
use crate::validate::limits::{AMOUNT_MAX, LIST_ITEMS, LONG_TEXT, SHORT_TEXT};

entity! {
    /// A sales opportunity, placed in a pipeline stage.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Deal(DealId, soft_delete) {
        /// Name (required).
        name: String => edit, both, required(SHORT_TEXT), search(words);
        /// Customer company.
        company_id: Option<CompanyId> => edit, filter, ANY, reference;
        /// Contacts involved.
        contact_ids: Vec<ContactId> => edit, filter, items(LIST_ITEMS, &ANY), reference;
        /// Category (one of the configuration's deal categories).
        category: Option<String> => edit, filter, choice(DealCategories), search(words);
        /// Stage (one of the configuration's deal stages; default: the first).
        stage: String => edit(default_stage), filter, required_choice(DealStages);
        /// Description.
        description: Option<String> => edit, none, text(LONG_TEXT), search(words);
        /// Amount in minor units of the workspace currency.
        amount: i64 => edit, both, range(0, AMOUNT_MAX);
        /// Expected closing date.
        #[serde(default, with = "crate::clock::iso_date::option")]
        expected_closing_date: Option<Date> => edit, both, ANY;
        /// Order inside the stage (ascending); maintained by moves.
        index: i64 => core(0), both, ANY;
        /// When archived; archived deals are kept but leave the board.
        archived_at: Option<Timestamp> => core(None),
            filter("archived": Bool = |v: &Option<Timestamp>| Value::Bool(v.is_some())), ANY;
        /// Account manager (default: the creator).
        sales_id: Option<UserId> => edit, filter, ANY, reference, owner;
    }
    /// Input to create a deal.
    input DealInput(default_stage: String);
    /// A deal update: absent fields are kept, `null` clears. Order changes through
    /// `move_to`, archiving through `archive`.
    patch DealPatch;
}

impl Rules for Deal {
    fn label(&self) -> String {
        self.name.clone()
    }
}
