//! The exit of every read path: records as an actor may see them (see [`crate::mask`]).

use crate::error::Result;
use crate::mask::Masking;
use crate::model::{Configuration, Entity, Record, Role};
use crate::query::SearchQuery;

use super::{Actor, Crm};

impl Masking {
    /// The policy: what `actor` sees masked in a workspace configured with `config` —
    /// the configured fields for `read_only`, nothing for any other role.
    pub fn for_actor(actor: &Actor, config: &Configuration) -> Masking {
        if actor.role() == Role::ReadOnly {
            Masking::of(&config.masked_fields)
        } else {
            Masking::default()
        }
    }

    /// Masks `record` in place.
    pub fn apply<E: Entity>(&self, record: &mut E) {
        if !self.is_empty() {
            record.mask(self);
        }
    }
}

impl Crm {
    /// What `actor` may see of its workspace's personal fields (see [`Masking::for_actor`]);
    /// reads the configuration only for the roles that can be masked.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn masking(&self, actor: &Actor) -> Result<Masking> {
        if actor.role() != Role::ReadOnly {
            return Ok(Masking::default());
        }
        let config = self.load_config(actor.workspace_id()).await?;
        Ok(Masking::for_actor(actor, &config))
    }

    /// THE exit of every read path: `records` as `actor` may see them — masked per the
    /// workspace's configuration — keeping, when they answer the search query `q`, only
    /// those that still match it masked. The change feed and exports call this too.
    ///
    /// # Errors
    /// Storage failures (reading the configuration).
    pub async fn present(
        &self,
        actor: &Actor,
        mut records: Vec<Record>,
        q: Option<&SearchQuery>,
    ) -> Result<Vec<Record>> {
        let masking = self.masking(actor).await?;
        if masking.is_empty() {
            return Ok(records);
        }
        for r in &mut records {
            r.mask(&masking);
        }
        records.retain(|r| masking.still_matches(r, q));
        Ok(records)
    }

    /// [`Crm::present`] for records of one kind.
    ///
    /// # Errors
    /// Storage failures (reading the configuration).
    pub async fn present_all<E: Entity>(
        &self,
        actor: &Actor,
        mut records: Vec<E>,
        q: Option<&SearchQuery>,
    ) -> Result<Vec<E>> {
        let masking = self.masking(actor).await?;
        if masking.is_empty() {
            return Ok(records);
        }
        for r in &mut records {
            masking.apply(r);
        }
        if q.is_some() {
            records.retain(|r| masking.still_matches(&r.clone().into_record(), q));
        }
        Ok(records)
    }
}
