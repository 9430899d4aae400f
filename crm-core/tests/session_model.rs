//! State-machine property test of sessions: random sequences of login, refresh (with the
//! current or an old token), logout, password change, disable/enable, access-token use and
//! clock moves, checked step by step against the plain model of
//! `crm_core::testkit::session_model` (which the fuzz target `sessions` drives too).

use crm_core::testkit::session_model::{Op, run};
use proptest::prelude::*;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn sessions_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

/// Found by the property test: a user disabled and enabled again while their sessions'
/// "active" state was cached. Disabling ends the sessions in the facade's own commit; the
/// identity layer's session cache must hear of it at once, or an access token of an ended
/// session passes again once the user is enabled (until the cache's TTL).
#[test]
fn a_session_ended_by_disabling_stays_ended_after_enabling() {
    run(vec![
        Op::Login {
            right_password: true,
        },
        Op::Refresh {
            session: 0,
            back: 0,
        },
        Op::UseAccess { token: 0 },
        Op::SetDisabled(true),
        Op::SetDisabled(false),
        Op::UseAccess { token: 0 },
        Op::UseAccess { token: 1 },
    ]);
}
