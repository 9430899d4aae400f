//! Extractors whose every rejection is a coded [`ApiError`] (never axum's plain-text
//! rejections): JSON bodies, list and other query strings, path ids, `If-Match` /
//! `If-None-Match`, the authenticated caller and the request context.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use crm_core::identity::Claims;
use crm_core::query::Deleted;
use crm_core::{Actor, ErrorKind, FieldError, FieldIssue, ListParams};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Facts about the request established by the outer middleware: its id and the client
/// address (after trusted-proxy handling).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (from a trusted proxy's `X-Request-Id`, or generated).
    pub request_id: String,
    /// The client address, when known.
    pub client_ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext {
                request_id: String::new(),
                client_ip: None,
            }))
    }
}

/// The outcome of authenticating the request's bearer token, established once by the
/// middleware (which needs it to pick the rate-limit key) and reused by [`Auth`].
#[derive(Clone)]
pub(crate) enum Authn {
    /// No `Authorization` header.
    Anonymous,
    /// A valid access token.
    Valid(Arc<(Actor, Claims)>),
    /// A token that failed verification (or a malformed header).
    Invalid(ErrorKind),
}

/// The authenticated caller: a valid `Authorization: Bearer <access token>` whose session
/// is active and whose user is enabled. Rejects with `401` (`E1001`, `E1005`, `E1006`,
/// `E1007`, `E1004`).
#[derive(Debug, Clone)]
pub struct Auth {
    /// The acting user.
    pub actor: Actor,
    /// The token's claims (session id in `sid`).
    pub claims: Claims,
}

impl Auth {
    /// The session of the request.
    pub fn session_id(&self) -> crm_core::model::SessionId {
        crm_core::model::SessionId::from_uuid(self.claims.sid)
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let authn = match parts.extensions.get::<Authn>() {
            Some(a) => a.clone(),
            None => authenticate(&parts.headers, state).await,
        };
        match authn {
            Authn::Valid(v) => {
                // Where the request came from, for the access log and security events.
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or("", |p| p.as_str());
                let address = parts
                    .extensions
                    .get::<RequestContext>()
                    .and_then(|c| c.client_ip)
                    .map(|ip| ip.to_string());
                Ok(Auth {
                    actor: v
                        .0
                        .clone()
                        .with_origin(format!("{} {route}", parts.method), address),
                    claims: v.1.clone(),
                })
            }
            Authn::Invalid(kind) => Err(ApiError::new(kind)),
            Authn::Anonymous => Err(ApiError::new(ErrorKind::Unauthenticated)),
        }
    }
}

/// The app and its authenticated caller, the first two things nearly every handler takes
/// (`State` and [`Auth`] in one; it refuses as [`Auth`] does).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The app.
    pub state: AppState,
    /// The caller.
    pub auth: Auth,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        Ok(Caller {
            state: state.clone(),
            auth,
        })
    }
}

/// Authenticates the bearer token of `headers`, if any.
pub(crate) async fn authenticate(headers: &HeaderMap, state: &AppState) -> Authn {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Authn::Anonymous;
    };
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Authn::Invalid(ErrorKind::TokenInvalid);
    };
    let mut outcome = state.identity().authenticate(token).await;
    if outcome
        .as_ref()
        .is_err_and(|e| e.kind() == ErrorKind::TokenInvalid)
        && let Some(result) = authenticate_external(token, state).await
    {
        outcome = result;
    }
    match outcome {
        Ok(pair) => Authn::Valid(Arc::new(pair)),
        Err(e) => {
            if !matches!(
                e.kind(),
                ErrorKind::TokenInvalid
                    | ErrorKind::TokenExpired
                    | ErrorKind::SessionRevoked
                    | ErrorKind::AccountDisabled
                    | ErrorKind::Unauthenticated
            ) {
                tracing::warn!(error = ?e, "authentication failed");
            }
            Authn::Invalid(e.kind())
        }
    }
}

/// A bearer token that is not one of ours, tried as another identity provider's in the
/// installation's workspace, when that workspace accepts them (`None` otherwise). Such a
/// token opens no crm session: its claims carry the nil session id, and its own `exp`.
async fn authenticate_external(
    token: &str,
    state: &AppState,
) -> Option<crm_core::Result<(Actor, Claims)>> {
    let workspace = state.installation_workspace().await.ok().flatten()?;
    if !state.identity().accepts_external(workspace) {
        return None;
    }
    let result = state
        .identity()
        .authenticate_external_claims(workspace, token)
        .await
        .map(|(actor, external)| {
            let claims = Claims {
                sub: actor.user_id().uuid(),
                ws: workspace.uuid(),
                role: actor.role(),
                sid: Uuid::nil(),
                iat: external.iat,
                exp: external.exp,
                iss: EXTERNAL_ISSUER.to_owned(),
                aud: EXTERNAL_ISSUER.to_owned(),
            };
            (actor, claims)
        });
    Some(result)
}

/// `iss` and `aud` of the claims that stand for an external token.
pub const EXTERNAL_ISSUER: &str = "external";

fn is_json(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?;
    let ct = ct.to_str().ok().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json")),
    )
}

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorKind::PayloadTooLarge)
        } else {
            ApiError::malformed("body", FieldIssue::InvalidFormat)
        }
    })
}

/// Parses a JSON object, mapping every failure to `E2004` with the failing field's path.
/// Every body of the API is an object: anything else (an array, which a derived
/// `Deserialize` would read field by field, a string, a number) is refused.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let valid = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        let message = if valid {
            "The body must be a JSON object."
        } else {
            "The body is not valid JSON."
        };
        return Err(ApiError::new(ErrorKind::MalformedRequest).with_fields(vec![
            FieldError::with_message("body", FieldIssue::InvalidFormat, message),
        ]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let msg = inner.to_string();
        let (field, issue) = if let Some(rest) = msg.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or("");
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            (field, FieldIssue::Required)
        } else if msg.starts_with("unknown field") {
            (path, FieldIssue::NotAllowed)
        } else if inner.is_syntax() || inner.is_eof() {
            ("body".to_string(), FieldIssue::InvalidFormat)
        } else {
            (path, FieldIssue::InvalidFormat)
        };
        let field = if field == "." { "body".into() } else { field };
        let message = match issue {
            FieldIssue::Required => "This field is required.",
            FieldIssue::NotAllowed => "This field is not recognized.",
            _ if field == "body" => "The body is not valid JSON.",
            _ => "The value has the wrong type or format.",
        };
        ApiError::new(ErrorKind::MalformedRequest)
            .with_fields(vec![FieldError::with_message(field, issue, message)])
    })?;
    de.end()
        .map_err(|_| ApiError::malformed("body", FieldIssue::InvalidFormat))?;
    Ok(value)
}

/// A JSON request body. Rejects a missing or non-JSON `Content-Type` with `415` (`E4004`),
/// a body over the limit with `413` (`E4003`), and bad JSON, wrong types, missing or unknown
/// fields with `400` (`E2004`, naming the field).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if is_json(req.headers()) != Some(true) {
            return Err(ApiError::new(ErrorKind::UnsupportedMediaType));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: an empty body (with or without a `Content-Type`) is `None`;
/// anything else is read as [`ApiJson`] is.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if json != Some(true) {
            return Err(ApiError::new(ErrorKind::UnsupportedMediaType));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// The `{id}` of the path as a UUID. A malformed id is `400` (`E2004`, field `id`).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::malformed("id", FieldIssue::InvalidFormat))?;
        let raw = params
            .iter()
            .find(|(k, _)| *k == "id")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| ApiError::malformed("id", FieldIssue::Required))?;
        Uuid::parse_str(&raw)
            .map(PathId)
            .map_err(|_| ApiError::malformed("id", FieldIssue::InvalidFormat))
    }
}

/// The raw query string's pairs, percent-decoded. Repeated keys are refused (`E2003`).
#[derive(Debug, Clone, Default)]
pub struct QueryArgs(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryArgs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut map = BTreeMap::new();
        if let Some(q) = parts.uri.query() {
            if q.len() > 8192 {
                return Err(ApiError::invalid_query("query", FieldIssue::TooLong));
            }
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                if k.is_empty() {
                    continue;
                }
                if map.insert(k.to_string(), v.into_owned()).is_some() {
                    return Err(ApiError::invalid_query(&k, FieldIssue::TooMany));
                }
            }
        }
        Ok(QueryArgs(map))
    }
}

impl QueryArgs {
    /// Refuses any parameter not in `allowed` (`E2003`).
    ///
    /// # Errors
    /// `E2003` naming the first unknown parameter.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::invalid_query(k, FieldIssue::NotAllowed)),
            None => Ok(()),
        }
    }

    /// An optional parameter parsed with `parse`; a bad value is `E2003`.
    ///
    /// # Errors
    /// `E2003` naming the parameter.
    pub fn get<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_query(name, FieldIssue::InvalidFormat)),
        }
    }

    /// The page size (`limit`, default `default`).
    ///
    /// # Errors
    /// `E2003` when it is not a number.
    pub fn limit(&self, default: usize) -> Result<usize, ApiError> {
        Ok(self
            .get("limit", |v| v.parse::<usize>().ok())?
            .unwrap_or(default))
    }
}

/// List parameters from the query string: `q`, `sort` (`field` or `-field`), `limit`,
/// `cursor`, `deleted` (`exclude`, `only`, `include`), and every other parameter a filter
/// (`status=warm`, `amount_gte=100`, `stage=won,lost`). The core checks the fields and
/// values; a bad one is `400` (`E2003`).
#[derive(Debug, Clone)]
pub struct ListQuery(pub ListParams);

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let args = QueryArgs::from_request_parts(parts, state).await?;
        ListQuery::from_args(args)
    }
}

impl ListQuery {
    /// The list parameters of a query string's pairs.
    ///
    /// # Errors
    /// `E2003` naming a malformed `limit` or `deleted`.
    pub fn from_args(QueryArgs(args): QueryArgs) -> Result<ListQuery, ApiError> {
        let mut params = ListParams::new();
        for (k, v) in args {
            match k.as_str() {
                "q" => params.q = Some(v),
                "sort" => params.sort = Some(v),
                "cursor" => params.cursor = Some(v),
                "limit" => {
                    params.limit =
                        Some(v.parse().map_err(|_| {
                            ApiError::invalid_query("limit", FieldIssue::InvalidFormat)
                        })?)
                }
                "deleted" => {
                    params.deleted = Some(match v.as_str() {
                        "exclude" => Deleted::Exclude,
                        "only" => Deleted::Only,
                        "include" => Deleted::Include,
                        _ => {
                            return Err(ApiError::invalid_query("deleted", FieldIssue::NotAllowed));
                        }
                    })
                }
                _ => params.filters.push((k, v)),
            }
        }
        Ok(ListQuery(params))
    }
}

/// The `If-Match` precondition: `*` or one strong entity tag (`"3"`, the record version).
/// A value that is no entity tag is refused as malformed (`400`, `E2004`); a list of tags
/// too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// A version.
    Version(u64),
    /// A tag that no version can match (a weak tag, or one that is no number): the
    /// precondition fails.
    Never,
}

/// Whether `raw` is an entity tag (RFC 9110, section 8.8.3): `"opaque"` or `W/"opaque"`,
/// the opaque part printable ASCII other than `"`.
fn is_entity_tag(raw: &str) -> bool {
    raw.strip_prefix("W/")
        .unwrap_or(raw)
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .is_some_and(|opaque| {
            opaque
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
        })
}

/// Parses one entity tag into a version (`"3"`; a bare `3` is accepted too).
fn parse_tag(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    inner.parse().ok()
}

/// The optional `If-Match` header.
#[derive(Debug, Clone, Copy)]
pub struct OptionalIfMatch(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(OptionalIfMatch(None));
        };
        let v = v.to_str().unwrap_or("").trim();
        if v == "*" {
            return Ok(OptionalIfMatch(Some(IfMatch::Any)));
        }
        match parse_tag(v) {
            Some(version) => Ok(OptionalIfMatch(Some(IfMatch::Version(version)))),
            // A weak tag never matches (If-Match compares strongly), nor does a tag that is
            // no version: the precondition fails (412). Its opaque part may hold commas.
            None if is_entity_tag(v) => Ok(OptionalIfMatch(Some(IfMatch::Never))),
            // A bare number past every version (it overflows) names none either.
            None if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(OptionalIfMatch(Some(IfMatch::Never)))
            }
            // A list of tags: one is expected.
            None if v.contains(',') => Err(ApiError::malformed("If-Match", FieldIssue::TooMany)),
            // Not an entity tag at all (empty, unquoted text): a malformed header (400).
            None => Err(ApiError::malformed("If-Match", FieldIssue::InvalidFormat)),
        }
    }
}

/// The `If-Match` header, required: without it the request is refused with `428`
/// (`E2004`, field `If-Match`), so no update is ever based on an unknown version.
#[derive(Debug, Clone, Copy)]
pub struct RequiredIfMatch(pub IfMatch);

impl<S: Send + Sync> FromRequestParts<S> for RequiredIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match OptionalIfMatch::from_request_parts(parts, state).await?.0 {
            Some(m) => Ok(RequiredIfMatch(m)),
            None => Err(ApiError::malformed("If-Match", FieldIssue::Required)
                .with_status(StatusCode::PRECONDITION_REQUIRED)),
        }
    }
}

/// The `If-None-Match` header of a GET: the versions the client already has.
#[derive(Debug, Clone, Default)]
pub struct IfNoneMatch(pub Vec<u64>, pub bool);

impl IfNoneMatch {
    /// Whether a record at `version` is one the client has (answer `304`).
    pub fn matches(&self, version: u64) -> bool {
        self.1 || self.0.contains(&version)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_NONE_MATCH) else {
            return Ok(IfNoneMatch::default());
        };
        let v = v.to_str().unwrap_or("");
        if v.trim() == "*" {
            return Ok(IfNoneMatch(Vec::new(), true));
        }
        // Weak comparison (RFC 9110 §13.1.2): W/"3" matches "3".
        let tags = v
            .split(',')
            .filter_map(|t| parse_tag(t.trim().trim_start_matches("W/")))
            .collect();
        Ok(IfNoneMatch(tags, false))
    }
}
