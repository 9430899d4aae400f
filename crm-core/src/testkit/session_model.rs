//! A model of sessions for property tests and fuzzing: [`run`] plays a sequence of
//! [`Op`]s — login, refresh (with the current or an older token), logout, password change,
//! disable/enable, access-token use and clock moves — against the identity layer on a
//! [`MemoryStore`], and checks each outcome against a plain model of which tokens must work
//! (rotation, the grace window, reuse detection, revocation, expiry). It panics on the first
//! difference.

#![allow(clippy::missing_panics_doc)]

use std::sync::Arc;
use std::time::Duration;

use super::MemoryStore;
use super::identity_suite::CollectingDelivery;
use super::setup::{email, fast_passwords, with_password};
use crate::identity::{Identity, IdentityConfig, LoginRequest, Secret, SecretToken};
use crate::model::{ClientInfo, Role};
use crate::{Clock, Crm, CrmConfig, ErrorKind, ManualClock, Timestamp};

const GRACE: i64 = 10;
const REFRESH_TTL: i64 = 30 * 24 * 3600;
const ACCESS_TTL: i64 = 900;

/// One step of a session scenario.
#[derive(Debug, Clone)]
pub enum Op {
    /// Log in, with the right or a wrong password.
    Login {
        /// Whether the password is the user's.
        right_password: bool,
    },
    /// Refresh a session (index among those opened) with its current token (`back` 0) or
    /// one replaced `back` rotations ago.
    Refresh {
        /// Which session.
        session: usize,
        /// How many rotations back the token is.
        back: usize,
    },
    /// Log a session out.
    Logout {
        /// Which session.
        session: usize,
    },
    /// Change the password from a session, keeping that one.
    ChangePassword {
        /// Which session is kept.
        keep: usize,
    },
    /// Disable or enable the user (as the admin).
    SetDisabled(bool),
    /// Use an access token issued earlier.
    UseAccess {
        /// Which token (index among those issued).
        token: usize,
    },
    /// Move the clock forward by this many seconds.
    Advance(i64),
}

/// What the model knows about one session.
struct ModelSession {
    /// Tokens in issue order with the instant each was replaced (None: current).
    tokens: Vec<(SecretToken, Option<i64>)>,
    expires_at: i64,
    revoked: bool,
    real_id: crate::model::SessionId,
}

impl ModelSession {
    fn active(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// Plays `ops` against the identity layer and the model; panics on the first difference.
pub fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let start = Timestamp::parse_rfc3339("2026-01-05T09:00:00Z").unwrap();
        let clock = ManualClock::new(start);
        let crm = Crm::with_clock(
            Arc::new(MemoryStore::new()),
            CrmConfig::default(),
            Arc::new(clock.clone()),
        );
        let mut config = IdentityConfig::new(Secret::new(
            b"model-secret-model-secret-model-secret".to_vec(),
        ));
        config.password = fast_passwords(1, 16);
        // This model is about tokens; throttling and quotas have their own tests.
        config.login_throttle.free_failures = u32::MAX;
        let id =
            Identity::new(crm.clone(), config, Arc::new(CollectingDelivery::default())).unwrap();
        let (ws, _) = id
            .sign_up(
                "Model",
                email("admin@model.test"),
                "admin",
                ClientInfo::default(),
            )
            .await
            .unwrap();
        let admin = crm.actor(ws.id, ws_admin(&crm, ws.id).await).await.unwrap();
        let user = with_password(&id, &admin, "u@model.test", Role::Sales, "pw0").await;

        let now = |clock: &ManualClock| (clock.now().as_micros() - start.as_micros()) / 1_000_000;
        let mut password = "pw0".to_string();
        let mut disabled = false;
        let mut sessions: Vec<ModelSession> = Vec::new();
        // (access token, session index, issued at)
        let mut access: Vec<(String, usize, i64)> = Vec::new();
        let mut pw_counter = 0;

        for op in ops {
            let t = now(&clock);
            match op {
                Op::Login { right_password } => {
                    let pw = if right_password {
                        password.clone()
                    } else {
                        "wrong".into()
                    };
                    let r = id
                        .login(LoginRequest {
                            workspace_id: ws.id,
                            email: "u@model.test".into(),
                            password: pw,
                            client: ClientInfo::default(),
                        })
                        .await;
                    if right_password && !disabled {
                        let r = r.unwrap();
                        sessions.push(ModelSession {
                            tokens: vec![(r.refresh_token, None)],
                            expires_at: t + REFRESH_TTL,
                            revoked: false,
                            real_id: r.session_id,
                        });
                        access.push((r.access_token, sessions.len() - 1, t));
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidCredentials);
                    }
                }
                Op::Refresh { session, back } => {
                    let Some(s) = sessions.get_mut(session) else {
                        continue;
                    };
                    let Some(idx) = s.tokens.len().checked_sub(1 + back) else {
                        continue;
                    };
                    let (token, replaced) = s.tokens[idx].clone();
                    let r = id.refresh(token.expose(), &ClientInfo::default()).await;
                    if !s.active(t) {
                        assert_eq!(
                            r.unwrap_err().kind(),
                            ErrorKind::SessionRevoked,
                            "refresh of an ended session"
                        );
                    } else if disabled {
                        assert!(r.is_err());
                    } else {
                        match replaced {
                            None => {
                                let r = r.unwrap();
                                let last = s.tokens.len() - 1;
                                s.tokens[last].1 = Some(t);
                                s.tokens.push((r.refresh_token, None));
                                s.expires_at = t + REFRESH_TTL;
                                access.push((r.access_token, session, t));
                            }
                            Some(at) if t - at <= GRACE => {
                                let r = r.unwrap();
                                assert_eq!(
                                    &r.refresh_token,
                                    &s.tokens.last().unwrap().0,
                                    "inside grace: the current token"
                                );
                                access.push((r.access_token, session, t));
                            }
                            Some(_) => {
                                assert_eq!(r.unwrap_err().kind(), ErrorKind::RefreshTokenReused);
                                s.revoked = true;
                            }
                        }
                    }
                }
                Op::Logout { session } => {
                    let Some(s) = sessions.get_mut(session) else {
                        continue;
                    };
                    if disabled {
                        continue;
                    }
                    let actor = crm.actor(ws.id, user.id).await.unwrap();
                    let r = id.logout(&actor, s.real_id).await;
                    if s.active(t) {
                        r.unwrap();
                        s.revoked = true;
                    } else {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::SessionRevoked);
                    }
                }
                Op::ChangePassword { keep } => {
                    if disabled {
                        continue;
                    }
                    let actor = crm.actor(ws.id, user.id).await.unwrap();
                    pw_counter += 1;
                    let next = format!("pw{pw_counter}");
                    let keep_id = sessions.get(keep).map(|s| s.real_id);
                    id.change_password(&actor, keep_id, &password, &next)
                        .await
                        .unwrap();
                    password = next;
                    for (i, s) in sessions.iter_mut().enumerate() {
                        if i != keep {
                            s.revoked = true;
                        }
                    }
                }
                Op::SetDisabled(d) => {
                    let u = crm.users().get(&admin, user.id).await.unwrap();
                    crm.users()
                        .set_disabled(&admin, user.id, u.version, d)
                        .await
                        .unwrap();
                    if d && !disabled {
                        for s in &mut sessions {
                            s.revoked = true;
                        }
                    }
                    disabled = d;
                }
                Op::UseAccess { token } => {
                    let Some((jwt, session, iat)) = access.get(token).cloned() else {
                        continue;
                    };
                    let r = id.authenticate(&jwt).await;
                    if t >= iat + ACCESS_TTL {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::TokenExpired);
                    } else if disabled {
                        // Disabling revokes the sessions too, but the revocation cache may
                        // still hold "active" for up to its TTL; the fresh user read refuses.
                        let kind = r.unwrap_err().kind();
                        assert!(
                            matches!(kind, ErrorKind::AccountDisabled | ErrorKind::SessionRevoked),
                            "{kind:?}"
                        );
                    } else if !sessions[session].active(t) {
                        assert_eq!(r.unwrap_err().kind(), ErrorKind::SessionRevoked);
                    } else {
                        assert_eq!(r.unwrap().0.user_id(), user.id);
                    }
                }
                Op::Advance(secs) => clock.advance(Duration::from_secs(secs as u64)),
            }
        }
    });
}

async fn ws_admin(crm: &Crm, ws: crate::id::WorkspaceId) -> crate::id::UserId {
    let r = crm
        .storage()
        .find_unique(
            ws,
            crate::model::EntityKind::User,
            "email",
            "admin@model.test",
        )
        .await
        .unwrap()
        .unwrap();
    crate::id::UserId::from_uuid(r.id())
}
