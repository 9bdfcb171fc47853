//! The ESG store against a real PostgreSQL: factor versioning, idempotent activity,
//! reproducible reports and the append-only guarantee on factors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_domain::prediction::{
    ActivityKind, FactorBook, FactorSource, Ledger, MeteredActivity, NewFactor, Period, Region,
};
use aurum_domain::{MetricName, SiteId, TenantId};
use aurum_ports::prediction::{AddFactorError, EsgStore, ReportQuery};
use aurum_ports::MachineKey;
use aurum_postgres::connect_pool;
use aurum_postgres::prediction::{migrate, PgEsgStore};
use aurum_testkit::TestDb;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

const ROLE: &str = "aurumai_prediction";

struct Fixture {
    db: TestDb,
    store: PgEsgStore,
}

async fn fixture() -> Fixture {
    let db = TestDb::create().await;
    let settings = db.settings(ROLE);
    migrate(&settings).await.expect("migrate");
    let store = PgEsgStore::new(connect_pool(&settings).expect("pool"));
    Fixture { db, store }
}

impl Fixture {
    /// Registers a machine the way prediction does, returning its key.
    async fn machine(&self, tenant: &str, id: &str, machine_type: &str, site: &str) -> MachineKey {
        let row = self
            .db
            .client()
            .await
            .query_one(
                "INSERT INTO prediction.machines (tenant_id, machine_id, machine_type, site_id) \
                 VALUES ($1, $2, $3, $4) RETURNING machine_key",
                &[&tenant, &id, &machine_type, &site],
            )
            .await
            .unwrap();
        MachineKey(row.get(0))
    }

    async fn report(&self, query: &ReportQuery) -> Ledger {
        let data = self.store.load_report(query).await.unwrap();
        let book = FactorBook::as_of(data.factors, query.as_of);
        Ledger::account(query.period, &data.machines, &data.activity, &book)
    }
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, 0, 0, 0).unwrap()
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn activity(metric: &str, from: DateTime<Utc>, hours: i64, amount: f64) -> MeteredActivity {
    MeteredActivity::new(
        MetricName::parse(metric).unwrap(),
        from,
        from + TimeDelta::hours(hours),
        amount,
    )
    .unwrap()
}

fn new_factor(kind: ActivityKind, region: &str, kg: f64, from: DateTime<Utc>) -> NewFactor {
    NewFactor::new(
        kind,
        Region::parse(region).unwrap(),
        kg,
        FactorSource::Other,
        "test publication, table 1",
        from,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_factors_are_present_and_cited() {
    let f = fixture().await;
    let factors = f.store.list_factors().await.unwrap();
    let diesel = factors
        .iter()
        .find(|x| x.kind == ActivityKind::Diesel && x.region.is_global())
        .unwrap();
    assert!((2.6..2.8).contains(&diesel.kg_co2e_per_unit));
    assert_eq!(diesel.source, FactorSource::Epa);
    let uk: Vec<_> = factors
        .iter()
        .filter(|x| x.kind == ActivityKind::Electricity && x.region.as_str() == "UK")
        .collect();
    assert_eq!(uk.len(), 2, "two published years, two versions");
    assert_eq!(uk[0].valid_to, Some(uk[1].valid_from));
    assert!(factors.iter().all(|x| !x.citation.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_version_closes_the_open_one() {
    let f = fixture().await;
    let v1 = f
        .store
        .add_factor(&new_factor(ActivityKind::Diesel, "CL", 2.6, day(1)))
        .await
        .unwrap();
    assert_eq!((v1.version, v1.valid_to), (1, None));
    let v2 = f
        .store
        .add_factor(&new_factor(ActivityKind::Diesel, "CL", 2.5, day(10)))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let cl: Vec<_> = f
        .store
        .list_factors()
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.region.as_str() == "CL")
        .collect();
    assert_eq!(cl.len(), 2);
    assert_eq!(cl[0].kg_co2e_per_unit, 2.6, "the old value is kept");
    assert_eq!(cl[0].valid_to, Some(day(10)));
    assert!(cl[0].closed_at.is_some());
    assert_eq!(cl[1].valid_to, None);

    // A version starting before the open one started would rewrite history.
    let err = f
        .store
        .add_factor(&new_factor(ActivityKind::Diesel, "CL", 9.9, day(5)))
        .await
        .unwrap_err();
    assert!(matches!(err, AddFactorError::Conflict(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activity_is_idempotent_and_tenant_bound() {
    let f = fixture().await;
    let truck = f.machine("acme", "TRUCK-1", "haul_truck", "pit").await;
    let batch = [
        (truck, activity("fuel_rate_lh", day(2), 1, 100.0)),
        (
            truck,
            activity("fuel_rate_lh", day(2) + TimeDelta::hours(1), 1, 120.0),
        ),
    ];
    let first = f.store.record_activity(&tenant(), &batch).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (2, 0));
    let again = f.store.record_activity(&tenant(), &batch).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    assert_eq!(
        f.db.count("SELECT count(*) FROM prediction.activity").await,
        2
    );

    let other = TenantId::parse("other").unwrap();
    assert!(f.store.record_activity(&other, &batch).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_a_machine_of_another_tenant_is_refused_whole() {
    let f = fixture().await;
    let ours = f.machine("acme", "TRUCK-1", "haul_truck", "pit").await;
    let theirs = f.machine("other", "TRUCK-2", "haul_truck", "pit").await;
    let batch = [
        (ours, activity("fuel_rate_lh", day(2), 1, 100.0)),
        (theirs, activity("fuel_rate_lh", day(2), 1, 50.0)),
    ];
    let err = f
        .store
        .record_activity(&tenant(), &batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, aurum_ports::StoreError::Refused(_)),
        "{err:?}"
    );
    // An unknown key is refused the same way.
    let unknown = [(
        MachineKey(i64::MAX),
        activity("fuel_rate_lh", day(2), 1, 1.0),
    )];
    assert!(f.store.record_activity(&tenant(), &unknown).await.is_err());
    assert_eq!(
        f.db.count("SELECT count(*) FROM prediction.activity").await,
        0,
        "not even the tenant's own machine got its rows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_many_machines_is_stored_in_one_call() {
    let f = fixture().await;
    let client = f.db.client().await;
    // 6,000 machines: more rows than one insert statement takes (ROWS_PER_STATEMENT).
    let keys: Vec<MachineKey> = client
        .query(
            "INSERT INTO prediction.machines (tenant_id, machine_id, machine_type, site_id) \
             SELECT 'acme', 'TRUCK-' || i, 'haul_truck', 'pit' FROM generate_series(1, 6000) i \
             RETURNING machine_key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| MachineKey(r.get(0)))
        .collect();
    let hour = |h: i64| day(2) + TimeDelta::hours(h);
    // Two consecutive hours of fuel per machine.
    let batch: Vec<_> = keys
        .iter()
        .flat_map(|&k| {
            [
                (k, activity("fuel_rate_lh", hour(0), 1, 10.0)),
                (k, activity("fuel_rate_lh", hour(1), 1, 12.0)),
            ]
        })
        .collect();
    let first = f.store.record_activity(&tenant(), &batch).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (12_000, 0));
    assert_eq!(
        f.db.count("SELECT count(*) FROM prediction.activity").await,
        12_000
    );

    // A batch overlapping the first: the second hour again (another amount, which must not
    // overwrite the stored one) plus a third.
    let next: Vec<_> = keys
        .iter()
        .flat_map(|&k| {
            [
                (k, activity("fuel_rate_lh", hour(1), 1, 99.0)),
                (k, activity("fuel_rate_lh", hour(2), 1, 14.0)),
            ]
        })
        .collect();
    let second = f.store.record_activity(&tenant(), &next).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (6_000, 6_000));
    assert_eq!(
        f.db.count("SELECT count(*) FROM prediction.activity").await,
        18_000
    );
    assert_eq!(
        f.db.count(
            "SELECT count(*) FROM prediction.activity \
             WHERE period_from = '2025-03-02T01:00:00Z' AND amount = 12"
        )
        .await,
        6_000,
        "a duplicate leaves the stored period as it was"
    );

    // Nothing to record is a no-op.
    let empty = f.store.record_activity(&tenant(), &[]).await.unwrap();
    assert_eq!((empty.inserted, empty.duplicates), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_past_report_is_identical_after_a_factor_change() {
    let f = fixture().await;
    let mill = f.machine("acme", "MILL-1", "grinding_mill", "plant").await;
    let truck = f.machine("acme", "TRUCK-1", "haul_truck", "pit").await;
    f.store
        .set_site_region(
            &tenant(),
            &SiteId::parse("plant").unwrap(),
            &Region::parse("UK").unwrap(),
        )
        .await
        .unwrap();
    f.store
        .record_activity(
            &tenant(),
            &[
                (mill, activity("power_kw", day(3), 10, 20_000.0)),
                (mill, activity("throughput_tph", day(3), 10, 4_000.0)),
                (truck, activity("fuel_rate_lh", day(3), 10, 1_500.0)),
            ],
        )
        .await
        .unwrap();

    let query = |as_of| ReportQuery {
        tenant: tenant(),
        period: Period::report(day(1), day(8)).unwrap(),
        site: None,
        machine: None,
        as_of,
    };
    let before = f.report(&query(Utc::now())).await;
    let totals = before.totals();
    // Seeded UK 2023 electricity factor and the global EPA diesel factor.
    assert!(
        (totals.scope2_kg_co2e - 20_000.0 * 0.20707).abs() < 1e-6,
        "{totals:?}"
    );
    assert!(
        (totals.scope1_kg_co2e - 1_500.0 * 2.69627).abs() < 1e-6,
        "{totals:?}"
    );
    let intensity = totals.intensity_kg_co2e_per_t.unwrap();
    assert!((intensity - totals.total_kg_co2e / 4_000.0).abs() < 1e-9);

    // New versions from now on, for both kinds the report used.
    let now = Utc::now();
    f.store
        .add_factor(&new_factor(ActivityKind::Electricity, "UK", 0.9, now))
        .await
        .unwrap();
    f.store
        .add_factor(&new_factor(ActivityKind::Diesel, "GLOBAL", 9.0, now))
        .await
        .unwrap();
    let after = f.report(&query(Utc::now())).await;
    assert_eq!(
        before, after,
        "a change from now on leaves past periods alone"
    );

    // Even a back-dated version (valid from inside the period) leaves the report as of the
    // earlier instant unchanged: as_of pins what was known.
    let pinned = Utc::now();
    let pinned_report = f.report(&query(pinned)).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    f.store
        .add_factor(&new_factor(ActivityKind::Diesel, "PIT-REGION", 1.0, day(1)))
        .await
        .unwrap();
    f.store
        .set_site_region(
            &tenant(),
            &SiteId::parse("pit").unwrap(),
            &Region::parse("PIT-REGION").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(f.report(&query(pinned)).await, pinned_report);
    let now_report = f.report(&query(Utc::now())).await;
    assert!((now_report.totals().scope1_kg_co2e - 1_500.0).abs() < 1e-6);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_filters_by_site_and_machine() {
    let f = fixture().await;
    let mill = f.machine("acme", "MILL-1", "grinding_mill", "plant").await;
    let truck = f.machine("acme", "TRUCK-1", "haul_truck", "pit").await;
    f.machine("other", "TRUCK-1", "haul_truck", "pit").await;
    f.store
        .record_activity(
            &tenant(),
            &[
                (mill, activity("power_kw", day(3), 1, 10.0)),
                (truck, activity("fuel_rate_lh", day(3), 1, 10.0)),
            ],
        )
        .await
        .unwrap();
    let base = ReportQuery {
        tenant: tenant(),
        period: Period::report(day(1), day(8)).unwrap(),
        site: Some(SiteId::parse("pit").unwrap()),
        machine: None,
        as_of: Utc::now(),
    };
    let data = f.store.load_report(&base).await.unwrap();
    assert_eq!(data.machines.len(), 1);
    assert_eq!(data.machines[0].id.as_str(), "TRUCK-1");
    assert!(data.machines[0].region.is_global());
    assert_eq!(data.activity.len(), 1);

    let unknown = ReportQuery {
        site: None,
        machine: Some(aurum_domain::MachineId::parse("NOPE").unwrap()),
        ..base
    };
    let data = f.store.load_report(&unknown).await.unwrap();
    assert!(data.machines.is_empty() && data.activity.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_role_cannot_rewrite_or_delete_a_factor() {
    let f = fixture().await;
    let rewrite =
        f.db.as_role(
            ROLE,
            "UPDATE prediction.emission_factors SET kg_co2e_per_unit = 0 WHERE kind = 'diesel'",
        )
        .await;
    assert!(
        rewrite
            .as_ref()
            .is_err_and(|e| e.contains("permission denied")),
        "{rewrite:?}"
    );
    let delete =
        f.db.as_role(ROLE, "DELETE FROM prediction.emission_factors")
            .await;
    assert!(delete.is_err(), "{delete:?}");
    // Closing columns are the only writable ones, and a closed version stays closed.
    let reopen =
        f.db.as_role(
            ROLE,
            "UPDATE prediction.emission_factors SET valid_to = NULL, closed_at = NULL \
             WHERE valid_to IS NOT NULL",
        )
        .await;
    assert!(
        reopen.as_ref().is_err_and(|e| e.contains("immutable")),
        "{reopen:?}"
    );
    // Even the superuser (who bypasses grants) meets the trigger.
    let client = f.db.client().await;
    let err = client
        .execute(
            "UPDATE prediction.emission_factors SET kg_co2e_per_unit = 0 WHERE kind = 'diesel'",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("add a new version"), "{err:?}");
    assert_eq!(
        f.db.count("SELECT count(*) FROM prediction.emission_factors WHERE kg_co2e_per_unit = 0")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_versions_are_refused_by_the_database() {
    let f = fixture().await;
    // Bypassing the store: the exclusion constraint still holds.
    let client = f.db.client().await;
    let err = client
        .execute(
            "INSERT INTO prediction.emission_factors \
             (kind, region, version, kg_co2e_per_unit, unit, source, citation, valid_from) \
             VALUES ('electricity', 'UK', 9, 0.1, 'kWh', 'other', 'x', '2024-01-01')",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("emission_factors_no_overlap"),
        "{err:?}"
    );
}
