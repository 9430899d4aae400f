//! `/users` (the team) and `/me` (the caller).

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use crm_core::id::UserId;
use crm_core::model::{Role, User, UserInput, UserPatch};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, IfMatch, IfNoneMatch, ListQuery, PathId, RequiredIfMatch};
use crate::respond::{self, precondition};
use crate::state::AppState;

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

async fn user_version(
    state: &AppState,
    auth: &Auth,
    id: UserId,
    m: IfMatch,
) -> Result<u64, ApiError> {
    match m {
        IfMatch::Version(v) => Ok(v),
        IfMatch::Never => Err(respond::precondition_failed()),
        IfMatch::Any => Ok(state.crm().users().get(&auth.actor, id).await?.version),
    }
}

fn user_response(status: StatusCode, user: &User) -> Response {
    respond::record(status, user, user.version)
}

/// `GET /users`.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
    headers: axum::http::HeaderMap,
    ListQuery(params): ListQuery,
) -> Result<Response, ApiError> {
    let page = state.crm().users().list(&auth.actor, &params).await?;
    Ok(crate::etag::json(&headers, &page))
}

/// `GET /users/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: Auth,
    PathId(id): PathId,
    inm: IfNoneMatch,
) -> Result<Response, ApiError> {
    let user = state
        .crm()
        .users()
        .get(&auth.actor, UserId::from_uuid(id))
        .await?;
    if inm.matches(user.version) {
        return Ok(respond::not_modified(user.version));
    }
    Ok(user_response(StatusCode::OK, &user))
}

/// `POST /users` (admins): creates a user, with its password in the same commit if given.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: Auth,
    OriginalUri(uri): OriginalUri,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> Result<Response, ApiError> {
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
    let mut response = user_response(StatusCode::CREATED, &user);
    let location = format!("{}/{}", uri.path().trim_end_matches('/'), user.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `PATCH /users/{id}` with `If-Match`: profile fields.
pub(crate) async fn update(
    State(state): State<AppState>,
    auth: Auth,
    PathId(id): PathId,
    RequiredIfMatch(m): RequiredIfMatch,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Response, ApiError> {
    let id = UserId::from_uuid(id);
    let version = user_version(&state, &auth, id, m).await?;
    let user = state
        .crm()
        .users()
        .update_profile(&auth.actor, id, version, patch)
        .await
        .map_err(precondition)?;
    Ok(user_response(StatusCode::OK, &user))
}

/// `POST /users/{id}/role` with `If-Match` (admins).
pub(crate) async fn set_role(
    State(state): State<AppState>,
    auth: Auth,
    PathId(id): PathId,
    RequiredIfMatch(m): RequiredIfMatch,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Response, ApiError> {
    let id = UserId::from_uuid(id);
    let version = user_version(&state, &auth, id, m).await?;
    let user = state
        .crm()
        .users()
        .set_role(&auth.actor, id, version, body.role)
        .await
        .map_err(precondition)?;
    Ok(user_response(StatusCode::OK, &user))
}

async fn set_disabled(
    state: AppState,
    auth: Auth,
    id: uuid::Uuid,
    m: IfMatch,
    disabled: bool,
) -> Result<Response, ApiError> {
    let id = UserId::from_uuid(id);
    let version = user_version(&state, &auth, id, m).await?;
    let user = state
        .crm()
        .users()
        .set_disabled(&auth.actor, id, version, disabled)
        .await
        .map_err(precondition)?;
    Ok(user_response(StatusCode::OK, &user))
}

/// `POST /users/{id}/disable` with `If-Match` (admins): the user's sessions end.
pub(crate) async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    PathId(id): PathId,
    RequiredIfMatch(m): RequiredIfMatch,
) -> Result<Response, ApiError> {
    set_disabled(state, auth, id, m, true).await
}

/// `POST /users/{id}/enable` with `If-Match` (admins).
pub(crate) async fn enable(
    State(state): State<AppState>,
    auth: Auth,
    PathId(id): PathId,
    RequiredIfMatch(m): RequiredIfMatch,
) -> Result<Response, ApiError> {
    set_disabled(state, auth, id, m, false).await
}

/// `POST /users/{id}/password` (admins): sets a user's password; its sessions end.
pub(crate) async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
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
    State(state): State<AppState>,
    auth: Auth,
    inm: IfNoneMatch,
) -> Result<Response, ApiError> {
    let user = state
        .crm()
        .users()
        .get(&auth.actor, auth.actor.user_id())
        .await?;
    if inm.matches(user.version) {
        return Ok(respond::not_modified(user.version));
    }
    let workspace = state.crm().workspace(&auth.actor).await?;
    let body = serde_json::json!({
        "user": user,
        "workspace": workspace,
        "session_id": auth.claims.sid,
    });
    let mut r = respond::json(StatusCode::OK, &body);
    r.headers_mut()
        .insert(header::ETAG, respond::etag(user.version));
    Ok(r)
}

/// `PATCH /me` with `If-Match`: the caller's own profile.
pub(crate) async fn update_me(
    State(state): State<AppState>,
    auth: Auth,
    RequiredIfMatch(m): RequiredIfMatch,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Response, ApiError> {
    let id = auth.actor.user_id();
    let version = user_version(&state, &auth, id, m).await?;
    let user = state
        .crm()
        .users()
        .update_profile(&auth.actor, id, version, patch)
        .await
        .map_err(precondition)?;
    Ok(user_response(StatusCode::OK, &user))
}
