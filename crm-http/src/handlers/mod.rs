//! Request handlers, grouped by area.

/// Handlers of a guarded write to the record the path names (`If-Match` required, see
/// [`guarded`](crate::respond::guarded)), with a JSON body or none. Each entry names the
/// handler, the service it takes from the engine and the record type, the body's binding
/// and type if any, and the change as `|service, actor, id, version| call`: the current
/// version is read with the service's `get`, and the answer is the changed record.
macro_rules! guarded_writes {
    ($(
        $(#[$doc:meta])*
        $name:ident($service:path => $ty:ty $(, $body:ident: $input:ty)?)
            = |$svc:ident, $actor:ident, $id:ident, $v:ident| $change:expr;
    )*) => {$(
        $(#[$doc])*
        pub(crate) async fn $name(
            crate::extract::Caller { state, auth }: crate::extract::Caller,
            crate::extract::PathId(id): crate::extract::PathId,
            crate::extract::RequiredIfMatch(if_match): crate::extract::RequiredIfMatch,
            $(crate::extract::ApiJson($body): crate::extract::ApiJson<$input>,)?
        ) -> Result<crate::respond::Versioned<$ty>, crate::error::ApiError> {
            let ($svc, $actor) = ($service(state.crm()), &auth.actor);
            let $id = crm_core::id::Id::from_uuid(id);
            crate::respond::guarded(
                if_match,
                async || $svc.get($actor, $id).await,
                async |$v| $change.await,
            )
            .await
        }
    )*};
}

pub mod auth;
pub(crate) mod changes;
pub mod misc;
pub(crate) mod privacy;
pub(crate) mod records;
pub(crate) mod security;
pub(crate) mod users;
