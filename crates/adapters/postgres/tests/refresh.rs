//! Refresh-token rotation against revocation of the family, its session or its user, run
//! concurrently on a real PostgreSQL: once the revocation returns, nothing of the family lives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aurum_domain::{Role, TenantId};
use aurum_ports::auth::{
    ClientRecord, ClientStore, GrantStore, NewUser, RefreshRotation, RefreshTokenRecord, UserStore,
};
use aurum_postgres::auth::{migrate, PgAuthStore};
use aurum_postgres::connect_pool;
use aurum_testkit::TestDb;
use chrono::{TimeDelta, Utc};
use uuid::Uuid;

struct Fixture {
    db: TestDb,
    store: Arc<PgAuthStore>,
    user: Uuid,
}

async fn fixture() -> Fixture {
    let db = TestDb::create().await;
    let settings = db.settings("aurumai_auth");
    migrate(&settings).await.unwrap();
    let mut pool_settings = settings.clone();
    pool_settings.pool_max_size = 16;
    let store = Arc::new(PgAuthStore::new(connect_pool(&pool_settings).unwrap()));
    let user = Uuid::new_v4();
    store
        .create_user(&NewUser {
            id: user,
            tenant: TenantId::parse("acme").unwrap(),
            username: "olga".into(),
            display_name: None,
            email: None,
            password_hash: "not-a-real-hash".into(),
            roles: vec![Role::Viewer],
        })
        .await
        .unwrap();
    store
        .upsert_client(&ClientRecord {
            client_id: "web".into(),
            secret_hash: None,
            tenant: None,
            owner: None,
            name: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["refresh_token".into()],
            audiences: vec![],
            roles: vec![],
            seeded: true,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    Fixture { db, store, user }
}

fn token(family: Uuid, session: Uuid, user: Uuid) -> RefreshTokenRecord {
    let now = Utc::now();
    RefreshTokenRecord {
        token_hash: Uuid::new_v4().to_string(),
        family_id: family,
        client_id: "web".into(),
        user_id: user,
        session_id: session,
        scope: "openid".into(),
        auth_time: now,
        created_at: now,
        expires_at: now + TimeDelta::hours(1),
        rotated_at: None,
        revoked_at: None,
    }
}

impl Fixture {
    async fn live_in_family(&self, family: Uuid) -> i64 {
        self.db
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM auth.refresh_tokens \
                 WHERE family_id = $1::text::uuid AND revoked_at IS NULL AND rotated_at IS NULL",
                &[&family.to_string()],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// A chain of rotations of one family racing one revocation; returns the family.
    async fn race(
        &self,
        revoke: impl Fn(Arc<PgAuthStore>, Uuid, Uuid, Uuid) -> tokio::task::JoinHandle<()>,
    ) -> Uuid {
        let (family, session) = (Uuid::new_v4(), Uuid::new_v4());
        let first = token(family, session, self.user);
        self.store.put_refresh(&first).await.unwrap();
        let rotations = {
            let store = Arc::clone(&self.store);
            let user = self.user;
            tokio::spawn(async move {
                let mut current = first.token_hash;
                for _ in 0..40 {
                    let next = token(family, session, user);
                    match store
                        .rotate_refresh(&current, &next, Utc::now())
                        .await
                        .unwrap()
                    {
                        RefreshRotation::Rotated(_) => current = next.token_hash,
                        RefreshRotation::Reused(_) | RefreshRotation::Invalid => break,
                    }
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        revoke(Arc::clone(&self.store), family, session, self.user)
            .await
            .unwrap();
        rotations.await.unwrap();
        family
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_successor_outlives_a_revocation_of_its_family_session_or_user() {
    let f = fixture().await;
    for round in 0..10 {
        let by_family = f
            .race(|s, family, _, _| {
                tokio::spawn(async move {
                    s.revoke_family(family).await.unwrap();
                })
            })
            .await;
        assert_eq!(
            f.live_in_family(by_family).await,
            0,
            "family, round {round}"
        );

        let by_session = f
            .race(|s, _, session, _| {
                tokio::spawn(async move {
                    s.revoke_session(session).await.unwrap();
                })
            })
            .await;
        assert_eq!(
            f.live_in_family(by_session).await,
            0,
            "session, round {round}"
        );

        let by_user = f
            .race(|s, _, _, user| {
                tokio::spawn(async move {
                    s.revoke_user_tokens(user).await.unwrap();
                })
            })
            .await;
        assert_eq!(f.live_in_family(by_user).await, 0, "user, round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_rotated_twice_at_once_rotates_once_and_revokes_the_family() {
    let f = fixture().await;
    let (family, session) = (Uuid::new_v4(), Uuid::new_v4());
    let first = token(family, session, f.user);
    f.store.put_refresh(&first).await.unwrap();
    let attempts = (0..4).map(|_| {
        let store = Arc::clone(&f.store);
        let (hash, next) = (first.token_hash.clone(), token(family, session, f.user));
        tokio::spawn(async move {
            store
                .rotate_refresh(&hash, &next, Utc::now())
                .await
                .unwrap()
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), RefreshRotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1);
    // The others were second uses: the whole family, the winner's successor too, is revoked.
    assert_eq!(f.live_in_family(family).await, 0);
}
