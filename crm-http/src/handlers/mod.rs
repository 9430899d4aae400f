//! Request handlers, grouped by area.

pub mod auth;
pub(crate) mod changes;
pub mod misc;
pub(crate) mod privacy;
pub(crate) mod records;
pub(crate) mod users;
