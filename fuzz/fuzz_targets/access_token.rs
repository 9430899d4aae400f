//! Arbitrary bytes as access tokens: verification never panics and nothing but a genuine
//! token (signed with the secret) verifies.
#![no_main]

use crm_core::Timestamp;
use crm_core::identity::AccessTokens;
use crm_core::identity::token::SecretToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tokens = AccessTokens::new(b"fuzz-secret-fuzz-secret-fuzz-secret!", "crm", "crm", 900);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = Timestamp::from_micros(1_800_000_000_000_000);
    match tokens.verify(text, now) {
        Ok(claims) => {
            // Only possible if the input is a token this key signed: re-signing the claims
            // must give the same signature.
            let again = tokens
                .issue(claims.sub, claims.ws, claims.role, claims.sid, Timestamp::from_micros(claims.iat * 1_000_000))
                .unwrap();
            assert_eq!(again.rsplit('.').next(), text.rsplit('.').next());
        }
        Err(e) => assert!(e.code().starts_with("E1")),
    }
    // The same bytes as a refresh or reset token never panic.
    let t = SecretToken::from_client(text);
    let _ = (t.workspace(), t.hash());
});
