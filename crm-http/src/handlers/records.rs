//! The record resources (`/companies`, `/contacts`, `/deals`, `/notes`, `/tasks`, `/tags`):
//! generic list / get / create / update / delete / restore / purge, plus contact merge, deal
//! archive / unarchive / move and task completion.

use axum::extract::OriginalUri;
use axum::response::Response;
use crm_core::id::{ContactId, Id};
use crm_core::model::{Company, Contact, Deal, Note, Tag, Task};
use crm_core::service::{Managed, Records};
use crm_core::{Crm, FieldIssue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{
    ApiJson, Caller, IfNoneMatch, ListQuery, OptionalIfMatch, PathId, QueryArgs, RequiredIfMatch,
};
use crate::respond::{self, Versioned, guarded};

/// A record kind served under its own path.
pub(crate) trait Resource:
    Managed<Input: DeserializeOwned, Patch: DeserializeOwned> + Serialize + Send + Sync + 'static
{
    /// The collection path, e.g. `/contacts`.
    const PATH: &'static str;
    /// The schema name, e.g. `Contact`.
    const NAME: &'static str;
    /// The service of the kind.
    fn records(crm: &Crm) -> Records<'_, Self>;
}

macro_rules! resource {
    ($ty:ty, $path:literal, $name:literal, $method:ident) => {
        impl Resource for $ty {
            const PATH: &'static str = $path;
            const NAME: &'static str = $name;
            fn records(crm: &Crm) -> Records<'_, Self> {
                crm.$method()
            }
        }
    };
}

resource!(Company, "/companies", "Company", companies);
resource!(Contact, "/contacts", "Contact", contacts);
resource!(Deal, "/deals", "Deal", deals);
resource!(Note, "/notes", "Note", notes);
resource!(Task, "/tasks", "Task", tasks);
resource!(Tag, "/tags", "Tag", tags);

/// Most ids one batch read (`?ids=`) takes.
pub(crate) const MAX_BATCH_IDS: usize = 100;

/// The ids of a batch read: comma-separated, at most [`MAX_BATCH_IDS`], and nothing else in
/// the query.
fn batch_ids(args: &QueryArgs) -> Result<Option<Vec<Id<()>>>, ApiError> {
    let Some(raw) = args.0.get("ids") else {
        return Ok(None);
    };
    args.only(&["ids"])?;
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() > MAX_BATCH_IDS {
        return Err(ApiError::invalid_query("ids", FieldIssue::TooMany));
    }
    parts
        .iter()
        .map(|p| Uuid::parse_str(p).ok().map(Id::from_uuid))
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| ApiError::invalid_query("ids", FieldIssue::InvalidFormat))
}

/// `GET /{kind}`: a page of records; with `ids=a,b,...` (up to 100) those records instead,
/// in the order asked, missing or invisible ones left out. A weak `ETag` (see
/// [`crate::etag`]) and `304` either way.
pub(crate) async fn list<E: Resource>(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    args: QueryArgs,
) -> Result<Response, ApiError> {
    if let Some(ids) = batch_ids(&args)? {
        let ids: Vec<Id<E>> = ids.into_iter().map(|i| Id::from_uuid(i.uuid())).collect();
        let data = E::records(state.crm()).get_many(&auth.actor, &ids).await?;
        return Ok(crate::etag::json(
            &headers,
            &serde_json::json!({ "data": data, "next_cursor": null }),
        ));
    }
    let ListQuery(params) = ListQuery::from_args(args)?;
    let page = E::records(state.crm()).list(&auth.actor, &params).await?;
    Ok(crate::etag::json(&headers, &page))
}

/// `GET /{kind}/{id}`: one record, `304` when `If-None-Match` names its version.
pub(crate) async fn get<E: Resource>(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    inm: IfNoneMatch,
) -> Result<Versioned<E>, ApiError> {
    let record = E::records(state.crm())
        .get(&auth.actor, Id::from_uuid(id))
        .await?;
    // Recently viewed: queued, written later in a batch (never on this request's path).
    state.views().record(
        state.crm(),
        crm_core::views::View {
            workspace_id: auth.actor.workspace_id(),
            user_id: auth.actor.user_id(),
            entity: E::KIND,
            record_id: id,
            at: state.crm().now(),
        },
    );
    Ok(Versioned::read(record, &inm))
}

/// `POST /{kind}`: creates a record; `201` with `ETag` and `Location`.
pub(crate) async fn create<E: Resource>(
    Caller { state, auth }: Caller,
    OriginalUri(uri): OriginalUri,
    ApiJson(input): ApiJson<E::Input>,
) -> Result<Versioned<E>, ApiError> {
    let record = E::records(state.crm()).create(&auth.actor, input).await?;
    Ok(Versioned::created(record, &uri))
}

/// `PATCH /{kind}/{id}` with `If-Match`: applies a partial update.
pub(crate) async fn update<E: Resource>(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    RequiredIfMatch(if_match): RequiredIfMatch,
    ApiJson(patch): ApiJson<E::Patch>,
) -> Result<Versioned<E>, ApiError> {
    let (records, id) = (E::records(state.crm()), Id::from_uuid(id));
    guarded(
        if_match,
        async || records.get(&auth.actor, id).await,
        async |v| records.update(&auth.actor, id, v, patch).await,
    )
    .await
}

/// `DELETE /{kind}/{id}`: soft delete (`204`); an `If-Match` is checked when given.
pub(crate) async fn delete<E: Resource>(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    OptionalIfMatch(if_match): OptionalIfMatch,
) -> Result<Response, ApiError> {
    let records = E::records(state.crm());
    if let Some(m) = if_match {
        let current = records.get(&auth.actor, Id::from_uuid(id)).await?;
        m.check(current.meta().version)?;
    }
    records.delete(&auth.actor, Id::from_uuid(id)).await?;
    Ok(respond::no_content())
}

/// `POST /{kind}/{id}/restore`: brings a soft-deleted record back.
pub(crate) async fn restore<E: Resource>(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
) -> Result<Versioned<E>, ApiError> {
    let record = E::records(state.crm())
        .restore(&auth.actor, Id::from_uuid(id))
        .await?;
    Ok(Versioned::of(record))
}

/// `POST /{kind}/{id}/purge`: deletes permanently (admins).
pub(crate) async fn purge<E: Resource>(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    E::records(state.crm())
        .purge(&auth.actor, Id::from_uuid(id))
        .await?;
    Ok(respond::no_content())
}

/// Body of `POST /contacts/{id}/merge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MergeBody {
    /// The contact merged into `{id}` (then soft deleted).
    pub loser_id: Uuid,
}

/// `POST /contacts/{id}/merge`: merges `loser_id` into `{id}`.
pub(crate) async fn merge_contacts(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<Versioned<Contact>, ApiError> {
    let winner = state
        .crm()
        .contacts()
        .merge(
            &auth.actor,
            ContactId::from_uuid(id),
            ContactId::from_uuid(body.loser_id),
        )
        .await?;
    Ok(Versioned::of(winner))
}

/// Body of `POST /deals/{id}/move`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveBody {
    /// Target stage (one of the configuration's deal stages).
    pub stage: String,
    /// Position in the stage, 0 = top; past the end = bottom.
    #[serde(default)]
    pub position: usize,
}

/// Body of `POST /tasks/{id}/complete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteBody {
    /// Done (`true`) or not done.
    pub completed: bool,
}

guarded_writes! {
    /// `POST /deals/{id}/archive` with `If-Match`.
    archive_deal(Crm::deals => Deal) = |deals, actor, id, v| deals.archive(actor, id, v);
    /// `POST /deals/{id}/unarchive` with `If-Match`.
    unarchive_deal(Crm::deals => Deal) = |deals, actor, id, v| deals.unarchive(actor, id, v);
    /// `POST /deals/{id}/move` with `If-Match`: moves a deal to a stage and position.
    move_deal(Crm::deals => Deal, body: MoveBody)
        = |deals, actor, id, v| deals.move_to(actor, id, v, &body.stage, body.position);
    /// `POST /tasks/{id}/complete` with `If-Match`: marks a task done or not done.
    complete_task(Crm::tasks => Task, body: CompleteBody)
        = |tasks, actor, id, v| tasks.complete(actor, id, v, body.completed);
}
