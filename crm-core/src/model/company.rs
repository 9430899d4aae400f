use serde::{Deserialize, Serialize};

use super::{CompanyId, UserId, WorkspaceId};
use super::{Configuration, Entity, EntityKind, Reference, entity_common, opt_id, opt_text, text};
use crate::clock::Timestamp;
use crate::error::{FieldError, FieldIssue};
use crate::query::Value;
use crate::validate::{Validator, limits, trim, trim_opt};

/// Allowed company sizes (employee count buckets, as in Atomic CRM).
pub const COMPANY_SIZES: [u32; 5] = [1, 10, 50, 250, 500];

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// Id.
    pub id: CompanyId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Name (required).
    pub name: String,
    /// Sector (one of the configuration's company sectors).
    pub sector: Option<String>,
    /// Size bucket (one of [`COMPANY_SIZES`]).
    pub size: Option<u32>,
    /// Website URL.
    pub website: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// Street address.
    pub address: Option<String>,
    /// Postal code.
    pub zipcode: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region abbreviation.
    pub state_abbr: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// LinkedIn URL.
    pub linkedin_url: Option<String>,
    /// Free description.
    pub description: Option<String>,
    /// Revenue bracket, free text.
    pub revenue: Option<String>,
    /// Tax identifier.
    pub tax_identifier: Option<String>,
    /// Related links.
    pub context_links: Vec<String>,
    /// Account manager.
    pub sales_id: Option<UserId>,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last update instant.
    pub updated_at: Timestamp,
    /// Version.
    pub version: u64,
    /// Soft-deletion instant.
    pub deleted_at: Option<Timestamp>,
}

/// Input to create a company.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompanyInput {
    /// Name (required).
    pub name: String,
    /// Sector.
    pub sector: Option<String>,
    /// Size bucket.
    pub size: Option<u32>,
    /// Website.
    pub website: Option<String>,
    /// Phone.
    pub phone_number: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Postal code.
    pub zipcode: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State abbreviation.
    pub state_abbr: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// LinkedIn URL.
    pub linkedin_url: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Revenue.
    pub revenue: Option<String>,
    /// Tax identifier.
    pub tax_identifier: Option<String>,
    /// Related links.
    pub context_links: Vec<String>,
    /// Account manager (default: the creator).
    pub sales_id: Option<UserId>,
}

/// A company update: absent fields are kept, `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct CompanyPatch {
    pub name: Option<String>,
    #[serde(deserialize_with = "super::nullable")]
    pub sector: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub size: Option<Option<u32>>,
    #[serde(deserialize_with = "super::nullable")]
    pub website: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub phone_number: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub address: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub zipcode: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub city: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub state_abbr: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub country: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub linkedin_url: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub description: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub revenue: Option<Option<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub tax_identifier: Option<Option<String>>,
    pub context_links: Option<Vec<String>>,
    #[serde(deserialize_with = "super::nullable")]
    pub sales_id: Option<Option<UserId>>,
}

impl Company {
    pub(crate) fn from_input(i: CompanyInput) -> Company {
        Company {
            id: CompanyId::generate(),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            name: i.name,
            sector: i.sector,
            size: i.size,
            website: i.website,
            phone_number: i.phone_number,
            address: i.address,
            zipcode: i.zipcode,
            city: i.city,
            state_abbr: i.state_abbr,
            country: i.country,
            linkedin_url: i.linkedin_url,
            description: i.description,
            revenue: i.revenue,
            tax_identifier: i.tax_identifier,
            context_links: i.context_links,
            sales_id: i.sales_id,
            created_at: Timestamp::EPOCH,
            updated_at: Timestamp::EPOCH,
            version: 0,
            deleted_at: None,
        }
    }

    pub(crate) fn apply(&mut self, p: CompanyPatch) {
        use super::set;
        set(&mut self.name, p.name);
        set(&mut self.sector, p.sector);
        set(&mut self.size, p.size);
        set(&mut self.website, p.website);
        set(&mut self.phone_number, p.phone_number);
        set(&mut self.address, p.address);
        set(&mut self.zipcode, p.zipcode);
        set(&mut self.city, p.city);
        set(&mut self.state_abbr, p.state_abbr);
        set(&mut self.country, p.country);
        set(&mut self.linkedin_url, p.linkedin_url);
        set(&mut self.description, p.description);
        set(&mut self.revenue, p.revenue);
        set(&mut self.tax_identifier, p.tax_identifier);
        set(&mut self.context_links, p.context_links);
        set(&mut self.sales_id, p.sales_id);
    }
}

impl Entity for Company {
    const KIND: EntityKind = EntityKind::Company;
    entity_common!(Company, soft_delete);

    fn field(&self, name: &str) -> Value {
        match name {
            "created_at" => Value::Time(self.created_at),
            "updated_at" => Value::Time(self.updated_at),
            "name" => text(&self.name),
            "sector" => opt_text(&self.sector),
            "size" => self.size.map_or(Value::Null, |s| Value::Int(i64::from(s))),
            "city" => opt_text(&self.city),
            "country" => opt_text(&self.country),
            "sales_id" => opt_id(self.sales_id),
            _ => Value::Null,
        }
    }
    fn mask(&mut self, masking: &crate::mask::Masking) {
        use crate::mask::{PersonalField, mask_address, mask_phone, mask_tax_identifier};
        if masking.masks(PersonalField::PhoneNumbers)
            && let Some(p) = &mut self.phone_number
        {
            *p = mask_phone(p);
        }
        if masking.masks(PersonalField::Addresses) {
            for f in [&mut self.address, &mut self.zipcode].into_iter().flatten() {
                *f = mask_address(f);
            }
        }
        if masking.masks(PersonalField::TaxIdentifier)
            && let Some(t) = &mut self.tax_identifier
        {
            *t = mask_tax_identifier(t);
        }
    }
    fn search_words(&self, out: &mut Vec<String>) {
        use crate::search::{phone_tokens_into, tokenize_into};
        tokenize_into(&self.name, out);
        if let Some(p) = &self.phone_number {
            phone_tokens_into(p, out);
        }
        for f in [&self.website, &self.zipcode, &self.city, &self.state_abbr]
            .into_iter()
            .flatten()
        {
            tokenize_into(f, out);
        }
    }
    fn contact_points(&self, out: &mut Vec<String>) {
        if let Some(p) = &self.phone_number {
            let digits = crate::search::phone_digits(p);
            if !digits.is_empty() {
                out.push(digits);
            }
        }
    }
    fn label(&self) -> String {
        self.name.clone()
    }
    fn owner(&self) -> Option<UserId> {
        self.sales_id
    }
    fn references(&self) -> Vec<Reference> {
        self.sales_id
            .map(|s| Reference {
                field: "sales_id",
                kind: EntityKind::User,
                id: s.uuid(),
            })
            .into_iter()
            .collect()
    }
    fn normalize(&mut self) {
        trim(&mut self.name);
        for f in [
            &mut self.sector,
            &mut self.website,
            &mut self.phone_number,
            &mut self.address,
            &mut self.zipcode,
            &mut self.city,
            &mut self.state_abbr,
            &mut self.country,
            &mut self.linkedin_url,
            &mut self.description,
            &mut self.revenue,
            &mut self.tax_identifier,
        ] {
            trim_opt(f);
        }
        for l in &mut self.context_links {
            trim(l);
        }
    }
    fn validate(&self, config: &Configuration) -> Vec<FieldError> {
        let mut v = Validator::new();
        v.required("name", &self.name, limits::SHORT_TEXT);
        if let Some(s) = &self.sector {
            v.one_of("sector", s, &config.company_sectors);
        }
        if let Some(size) = self.size
            && !COMPANY_SIZES.contains(&size)
        {
            v.push("size", FieldIssue::NotAllowed);
        }
        v.opt_url("website", &self.website);
        if let Some(p) = &self.phone_number {
            v.phone("phone_number", p);
        }
        for (name, f) in [
            ("address", &self.address),
            ("zipcode", &self.zipcode),
            ("city", &self.city),
            ("state_abbr", &self.state_abbr),
            ("country", &self.country),
            ("revenue", &self.revenue),
            ("tax_identifier", &self.tax_identifier),
        ] {
            v.opt_text(name, f, limits::SHORT_TEXT);
        }
        v.opt_url("linkedin_url", &self.linkedin_url);
        v.opt_text("description", &self.description, limits::LONG_TEXT);
        v.max_items(
            "context_links",
            self.context_links.len(),
            limits::LIST_ITEMS,
        );
        for (i, l) in self.context_links.iter().enumerate() {
            v.url(&format!("context_links[{i}]"), l);
        }
        v.into_errors()
    }
}
