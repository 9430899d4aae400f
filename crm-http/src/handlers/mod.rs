//! Request handlers, grouped by area.

pub mod auth;
pub mod misc;
pub(crate) mod records;
pub(crate) mod users;
