//! API tokens for HTTP publishers.

use tidings_store::StoreError;

use crate::harness::{backends, fails, ok};

#[tokio::test]
async fn create_and_look_up() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let ci = ok!(n, s.create_api_token("ci").await);
        let forge = ok!(n, s.create_api_token("forge").await);
        assert!(ci.starts_with("tid_"), "[{n}] {ci:?}");
        assert_ne!(ci, forge, "[{n}]");
        assert_eq!(
            ok!(n, s.api_token_name(&ci).await).as_deref(),
            Some("ci"),
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.api_token_name(&forge).await).as_deref(),
            Some("forge")
        );
        assert_eq!(ok!(n, s.api_token_name("tid_unknown").await), None, "[{n}]");
        assert_eq!(ok!(n, s.api_token_name("").await), None, "[{n}]");

        let err = fails!(n, s.create_api_token("ci").await);
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "[{n}] got {err:?}"
        );
        let err = fails!(n, s.create_api_token("  ").await);
        assert!(
            matches!(err, StoreError::Invalid { field: "name", .. }),
            "[{n}] got {err:?}"
        );
    }
}
