//! End-to-end tests: tenant isolation. The tenant comes from the credential, so every route that
//! takes an id answers another tenant's id exactly like a missing one.

use crate::api_support::world;

#[tokio::test]
async fn world_tokens_carry_their_tenant_and_role() {
    let w = world().await;
    for (t, other) in [(&w.a, &w.b), (&w.b, &w.a)] {
        let roles = [
            (&t.admin, "tenant_admin"),
            (&t.manufacturer_user, "manufacturer_user"),
            (&t.buyer, "buyer"),
            (&t.approver, "buyer_approver"),
            (&t.reviewer, "reviewer"),
        ];
        for (login, kind) in roles {
            let (status, me) = w.get("/v1/me", &login.token).await;
            assert_eq!(status, 200, "{me}");
            assert_eq!(me["tenant_id"], t.tenant_id, "{me}");
            assert_ne!(me["tenant_id"], other.tenant_id, "{me}");
            assert_eq!(me["role"]["kind"], kind, "{me}");
            assert_eq!(me["id"], login.user_id, "{me}");
        }
    }
    assert_eq!(w.get("/v1/me", "mct_1_not-a-token").await.0, 401);
}
