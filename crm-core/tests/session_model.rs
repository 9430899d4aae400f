//! State-machine property test of sessions: random sequences of login, refresh (with the
//! current or an old token), logout, password change, disable/enable, access-token use and
//! clock moves, checked step by step against a plain model of which tokens must work.

use std::sync::Arc;
use std::time::Duration;

use crm_core::identity::{
    Identity, IdentityConfig, LoginRequest, PasswordConfig, Secret, SecretToken,
};
use crm_core::model::{ClientInfo, Role, UserInput};
use crm_core::testkit::MemoryStore;
use crm_core::testkit::identity_suite::CollectingDelivery;
use crm_core::{Clock, Crm, CrmConfig, ErrorKind, ManualClock, Timestamp};
use proptest::prelude::*;

const GRACE: i64 = 10;
const REFRESH_TTL: i64 = 30 * 24 * 3600;
const ACCESS_TTL: i64 = 900;

#[derive(Debug, Clone)]
enum Op {
    Login { right_password: bool },
    Refresh { session: usize, back: usize },
    Logout { session: usize },
    ChangePassword { keep: usize },
    SetDisabled(bool),
    UseAccess { token: usize },
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|right_password| Op::Login { right_password }),
        6 => (0usize..4, prop_oneof![3 => Just(0usize), 1 => 1usize..3]).prop_map(|(session, back)| Op::Refresh { session, back }),
        1 => (0usize..4).prop_map(|session| Op::Logout { session }),
        1 => (0usize..4).prop_map(|keep| Op::ChangePassword { keep }),
        1 => any::<bool>().prop_map(Op::SetDisabled),
        3 => (0usize..6).prop_map(|token| Op::UseAccess { token }),
        4 => prop::sample::select(vec![1i64, 5, 9, 11, 600, 901, 10 * 86400, 31 * 86400]).prop_map(Op::Advance),
    ]
}

/// What the model knows about one session.
struct ModelSession {
    /// Tokens in issue order with the instant each was replaced (None: current).
    tokens: Vec<(SecretToken, Option<i64>)>,
    expires_at: i64,
    revoked: bool,
    real_id: crm_core::model::SessionId,
}

impl ModelSession {
    fn active(&self, now: i64) -> bool {
        !self.revoked && now < self.expires_at
    }
}

fn run(ops: Vec<Op>) {
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
        config.password = PasswordConfig {
            cost: 4,
            workers: 1,
            queue: 16,
        };
        // This model is about tokens; throttling and quotas have their own tests.
        config.login_throttle.free_failures = u32::MAX;
        let id =
            Identity::new(crm.clone(), config, Arc::new(CollectingDelivery::default())).unwrap();
        let (ws, _) = id
            .sign_up(
                "Model",
                UserInput {
                    email: "admin@model.test".into(),
                    ..Default::default()
                },
                "admin",
                ClientInfo::default(),
            )
            .await
            .unwrap();
        let admin = crm.actor(ws.id, ws_admin(&crm, ws.id).await).await.unwrap();
        let user = crm
            .users()
            .create(
                &admin,
                UserInput {
                    email: "u@model.test".into(),
                    role: Some(Role::Sales),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        id.set_password(&admin, user.id, "pw0").await.unwrap();

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

async fn ws_admin(crm: &Crm, ws: crm_core::id::WorkspaceId) -> crm_core::id::UserId {
    let r = crm
        .storage()
        .find_unique(
            ws,
            crm_core::model::EntityKind::User,
            "email",
            "admin@model.test",
        )
        .await
        .unwrap()
        .unwrap();
    crm_core::id::UserId::from_uuid(r.id())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn sessions_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
