//! Data protection: the right of access and erasure (see [`crm_core::privacy`]).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use crm_core::id::{ContactId, UserId};
use crm_core::model::Contact;
use crm_core::privacy::consent::ConsentInput;

use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, PathId};
use crate::respond::{self, Versioned};
use crate::routes::{RouteDef, op};

/// Handlers that call the `crm.privacy()` method of their own name with the path's id (of
/// the given type) and answer its document or report as JSON, `200`.
macro_rules! by_id {
    ($($(#[$doc:meta])* $name:ident($id:ident);)*) => {$(
        $(#[$doc])*
        pub(crate) async fn $name(
            Caller { state, auth }: Caller,
            PathId(id): PathId,
        ) -> Result<Response, ApiError> {
            let answer = state
                .crm()
                .privacy()
                .$name(&auth.actor, $id::from_uuid(id))
                .await?;
            Ok(respond::json(StatusCode::OK, &answer))
        }
    )*};
}

by_id! {
    /// `GET /contacts/{id}/personal-data` (admins and managers): everything kept about a
    /// contact, as one JSON document.
    export_contact(ContactId);
    /// `POST /contacts/{id}/erase` (admins): erases the person everywhere; repeatable.
    erase_contact(ContactId);
    /// `GET /users/{id}/personal-data` (admins, or the user themselves).
    export_user(UserId);
    /// `POST /users/{id}/anonymize` (admins): a departed user becomes "former user N".
    anonymize_user(UserId);
}

/// `POST /contacts/{id}/consents`: records the contact's consent for a purpose (whoever may
/// update the contact); answers the contact.
pub(crate) async fn record_consent(
    Caller { state, auth }: Caller,
    PathId(id): PathId,
    ApiJson(body): ApiJson<ConsentInput>,
) -> Result<Versioned<Contact>, ApiError> {
    let contact = state
        .crm()
        .privacy()
        .record_consent(&auth.actor, ContactId::from_uuid(id), body)
        .await?;
    Ok(Versioned::of(contact))
}

/// The data-protection operations of the route table.
pub(crate) fn routes(t: &mut Vec<RouteDef>) {
    t.push(
        op(
            Method::GET,
            "/contacts/{id}/personal-data",
            "exportContactData",
            "Everything kept about a contact, as one document (admins and managers)",
            "privacy",
            export_contact,
        )
        .ok(200, "ContactExport"),
    );
    t.push(
        op(
            Method::POST,
            "/contacts/{id}/erase",
            "eraseContact",
            "Erase a contact everywhere; repeatable, resumes an interrupted erasure (admins)",
            "privacy",
            erase_contact,
        )
        .ok(200, "ErasureReport"),
    );
    t.push(
        op(
            Method::POST,
            "/contacts/{id}/consents",
            "recordConsent",
            "Record a contact's consent for a purpose (granted or withdrawn); the history is the contact's audit trail",
            "privacy",
            record_consent,
        )
        .body("ConsentRequest")
        .ok(200, "Contact")
        .etag(),
    );
    t.push(
        op(
            Method::GET,
            "/users/{id}/personal-data",
            "exportUserData",
            "Everything kept about a user (admins, or the user themselves)",
            "privacy",
            export_user,
        )
        .ok(200, "UserExport"),
    );
    t.push(
        op(
            Method::POST,
            "/users/{id}/anonymize",
            "anonymizeUser",
            "Replace a departed user's personal data by \"former user N\"; records keep their owner (admins)",
            "privacy",
            anonymize_user,
        )
        .ok(200, "ErasureReport"),
    );
}
