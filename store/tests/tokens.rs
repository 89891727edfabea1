//! API tokens: scopes, listing without secrets, revocation, last use.

use tidings_store::{StoreError, TokenScope};

use crate::harness::{backends, fails, ok};

#[tokio::test]
async fn create_and_look_up() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let ci = ok!(n, s.create_api_token("ci", TokenScope::Publish).await);
        let forge = ok!(n, s.create_api_token("forge", TokenScope::Ownership).await);
        assert!(ci.starts_with("tid_"), "[{n}] {ci:?}");
        assert_ne!(ci, forge, "[{n}]");
        let found = ok!(n, s.api_token(&ci).await).unwrap_or_else(|| panic!("[{n}] ci"));
        assert_eq!(
            (found.name.as_str(), found.scope),
            ("ci", TokenScope::Publish),
            "[{n}]"
        );
        let found = ok!(n, s.api_token(&forge).await).unwrap_or_else(|| panic!("[{n}] forge"));
        assert_eq!(found.scope, TokenScope::Ownership, "[{n}]");
        assert_eq!(ok!(n, s.api_token("tid_unknown").await), None, "[{n}]");
        assert_eq!(ok!(n, s.api_token("").await), None, "[{n}]");

        let err = fails!(n, s.create_api_token("ci", TokenScope::Admin).await);
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "[{n}] got {err:?}"
        );
        let err = fails!(n, s.create_api_token("  ", TokenScope::Publish).await);
        assert!(
            matches!(err, StoreError::Invalid { field: "name", .. }),
            "[{n}] got {err:?}"
        );
    }
}

// Issue 8 item 7: tokens can be listed (never the secret) and revoked.
#[tokio::test]
async fn list_and_revoke() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let ci = ok!(n, s.create_api_token("ci", TokenScope::Publish).await);
        let sync = ok!(n, s.create_api_token("sync", TokenScope::Admin).await);
        let listed = ok!(n, s.api_tokens().await);
        let names: Vec<(&str, TokenScope)> =
            listed.iter().map(|t| (t.name.as_str(), t.scope)).collect();
        assert_eq!(
            names,
            [("ci", TokenScope::Publish), ("sync", TokenScope::Admin)],
            "[{n}]"
        );
        assert!(
            listed.iter().all(|t| t.last_used_at.is_none()),
            "[{n}] never used yet: {listed:?}"
        );
        assert!(
            !format!("{listed:?}").contains(&ci[4..]),
            "[{n}] the list never holds a secret"
        );

        ok!(n, s.api_token(&ci).await);
        let used = ok!(n, s.api_tokens().await);
        assert!(used[0].last_used_at.is_some(), "[{n}] {used:?}");
        assert!(used[1].last_used_at.is_none(), "[{n}] {used:?}");

        ok!(n, s.revoke_api_token("ci").await);
        assert_eq!(
            ok!(n, s.api_token(&ci).await),
            None,
            "[{n}] a revoked token stops working"
        );
        assert!(ok!(n, s.api_token(&sync).await).is_some(), "[{n}]");
        let err = fails!(n, s.revoke_api_token("ci").await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] got {err:?}");
        assert_eq!(ok!(n, s.api_tokens().await).len(), 1, "[{n}]");
    }
}

// Issue 8 item 7: tokens made before scopes existed become publish tokens.
#[tokio::test]
async fn old_tokens_migrate_to_publish() {
    for t in backends().await {
        let n = t.name;
        let token = "tid_made-before-scopes";
        let digest = tidings_store::secret::token_digest(token);
        crate::harness::execute(
            &t,
            &format!(
                "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('old', '{digest}', 1)"
            ),
        )
        .await;
        let found = ok!(n, t.store.api_token(token).await);
        assert_eq!(found.map(|t| t.scope), Some(TokenScope::Publish), "[{n}]");
    }
}
