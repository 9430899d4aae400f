//! `/users` (the team) and `/me` (the caller).

use axum::extract::OriginalUri;
use axum::response::Response;
use crm_core::Crm;
use crm_core::id::UserId;
use crm_core::model::{Role, User, UserInput, UserPatch};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, IfNoneMatch, ListQuery, PathId, RequiredIfMatch};
use crate::respond::{self, Versioned, guarded};

/// Body of `POST /users`: the user, and optionally its first password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserBody {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    avatar: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for CreateUserBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserBody")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /users/{id}/role`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    role: Role,
}

/// Body of `POST /users/{id}/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPasswordBody {
    password: String,
}

impl std::fmt::Debug for SetPasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPasswordBody(<redacted>)")
    }
}

/// `GET /users`.
pub(crate) async fn list(
    Caller { state, auth }: Caller,
    headers: axum::http::HeaderMap,
    ListQuery(params): ListQuery,
) -> Result<Response, ApiError> {
    let page = state.crm().users().list(&auth.actor, &params).await?;
    Ok(crate::etag::json(&headers, &page))
}

/// `GET /users/{id}`.
pub(crate) async fn get(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    inm: IfNoneMatch,
) -> Result<Versioned<User>, ApiError> {
    let user = state
        .crm()
        .users()
        .get(&auth.actor, UserId::from_uuid(id))
        .await?;
    Ok(Versioned::read(user, &inm))
}

/// `POST /users` (admins): creates a user, with its password in the same commit if given.
pub(crate) async fn create(
    Caller { state, auth }: Caller,
    OriginalUri(uri): OriginalUri,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> Result<Versioned<User>, ApiError> {
    let input = UserInput {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        role: body.role,
        avatar: body.avatar,
    };
    let user = match body.password {
        Some(password) => {
            // Refuse before spending a hash on a caller who may not create users.
            if auth.actor.role() != Role::Admin {
                return Err(ApiError::new(crm_core::ErrorKind::Forbidden));
            }
            let hash = state.identity().hasher().hash(&password).await?;
            state
                .identity()
                .import_user(&auth.actor, input, &hash.0)
                .await?
        }
        None => state.crm().users().create(&auth.actor, input).await?,
    };
    Ok(Versioned::created(user, &uri))
}

guarded_writes! {
    /// `PATCH /users/{id}` with `If-Match`: profile fields.
    update(Crm::users => User, patch: UserPatch)
        = |users, actor, id, v| users.update_profile(actor, id, v, patch);
    /// `POST /users/{id}/role` with `If-Match` (admins).
    set_role(Crm::users => User, body: RoleBody)
        = |users, actor, id, v| users.set_role(actor, id, v, body.role);
    /// `POST /users/{id}/disable` with `If-Match` (admins): the user's sessions end.
    disable(Crm::users => User) = |users, actor, id, v| users.set_disabled(actor, id, v, true);
    /// `POST /users/{id}/enable` with `If-Match` (admins).
    enable(Crm::users => User) = |users, actor, id, v| users.set_disabled(actor, id, v, false);
}

/// `POST /users/{id}/password` (admins): sets a user's password; its sessions end.
pub(crate) async fn set_password(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<SetPasswordBody>,
) -> Result<Response, ApiError> {
    state
        .identity()
        .set_password(&auth.actor, UserId::from_uuid(id), &body.password)
        .await?;
    Ok(respond::no_content())
}

/// `GET /me`: the caller, its workspace and its session.
pub(crate) async fn me(
    Caller { state, auth }: Caller,
    inm: IfNoneMatch,
) -> Result<Versioned<serde_json::Value>, ApiError> {
    let user = state
        .crm()
        .users()
        .get(&auth.actor, auth.actor.user_id())
        .await?;
    // The ETag is the user's version; the workspace is read only for a full answer.
    if inm.matches(user.version) {
        return Ok(Versioned::not_modified(user.version));
    }
    let workspace = state.crm().workspace(&auth.actor).await?;
    let version = user.version;
    let body = serde_json::json!({
        "user": user,
        "workspace": workspace,
        "session_id": auth.claims.sid,
    });
    Ok(Versioned::new(body, version))
}

/// `PATCH /me` with `If-Match`: the caller's own profile.
pub(crate) async fn update_me(
    Caller { state, auth }: Caller,
    RequiredIfMatch(m): RequiredIfMatch,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Versioned<User>, ApiError> {
    let (users, id) = (state.crm().users(), auth.actor.user_id());
    guarded(
        m,
        async || users.get(&auth.actor, id).await,
        async |v| users.update_profile(&auth.actor, id, v, patch).await,
    )
    .await
}
