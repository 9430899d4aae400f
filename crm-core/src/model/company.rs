use serde::{Deserialize, Serialize};

use super::UserId;
use super::declare::{Rules, entity};
use super::field::rules::*;
use crate::validate::limits::{LIST_ITEMS, LONG_TEXT, SHORT_TEXT};

/// Allowed company sizes (employee count buckets, as in Atomic CRM).
pub const COMPANY_SIZES: [u32; 5] = [1, 10, 50, 250, 500];

entity! {
    /// An organization.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Company(CompanyId, soft_delete) {
        /// Name (required).
        name: String => edit, both, required(SHORT_TEXT), search(words);
        /// Sector (one of the configuration's company sectors).
        sector: Option<String> => edit, filter, choice(CompanySectors);
        /// Size bucket (one of [`COMPANY_SIZES`]).
        size: Option<u32> => edit, filter, among(&COMPANY_SIZES);
        /// Website URL.
        website: Option<String> => edit, none, URL, search(words);
        /// Phone number.
        phone_number: Option<String> => edit, none, PHONE, personal(PhoneNumbers), search(phone);
        /// Street address.
        address: Option<String> => edit, none, text(SHORT_TEXT), personal(Addresses);
        /// Postal code.
        zipcode: Option<String> => edit, none, text(SHORT_TEXT), personal(Addresses), search(words);
        /// City.
        city: Option<String> => edit, filter, text(SHORT_TEXT), search(words);
        /// State or region abbreviation.
        state_abbr: Option<String> => edit, none, text(SHORT_TEXT), search(words);
        /// Country.
        country: Option<String> => edit, filter, text(SHORT_TEXT);
        /// LinkedIn URL.
        linkedin_url: Option<String> => edit, none, URL;
        /// Free description.
        description: Option<String> => edit, none, text(LONG_TEXT);
        /// Revenue bracket, free text.
        revenue: Option<String> => edit, none, text(SHORT_TEXT);
        /// Tax identifier.
        tax_identifier: Option<String> => edit, none, text(SHORT_TEXT), personal(TaxIdentifier);
        /// Related links.
        context_links: Vec<String> => edit, none, items(LIST_ITEMS, &URL);
        /// Account manager (default: the creator).
        sales_id: Option<UserId> => edit, filter, ANY, reference, owner;
    }
    /// Input to create a company.
    input CompanyInput;
    /// A company update: absent fields are kept, `null` clears.
    patch CompanyPatch;
}

impl Rules for Company {
    fn label(&self) -> String {
        self.name.clone()
    }
}
