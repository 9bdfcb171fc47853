//! Devices in `auth.devices`: who provisioned which machine's MQTT identity, and its
//! revocation.

use async_trait::async_trait;
use aurum_domain::{MachineId, TenantId};
use aurum_ports::auth::{DeviceRecord, DeviceStore, NewDeviceError};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{pool_error, store_error, PgPool};

use super::schema::auth::devices;

#[derive(Debug, Clone)]
pub struct PgDeviceStore {
    pool: PgPool,
}

impl PgDeviceStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = devices)]
struct Row {
    id: Uuid,
    tenant_id: String,
    machine_id: String,
    username: String,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by: Option<String>,
    /// `text[]`: PostgreSQL lets an element be NULL, though none is ever written.
    cert_serials: Vec<Option<String>>,
}

impl Row {
    fn from_domain(d: &DeviceRecord) -> Self {
        Self {
            id: d.id,
            tenant_id: d.tenant.as_str().to_owned(),
            machine_id: d.machine.as_str().to_owned(),
            username: d.username.clone(),
            created_by: d.created_by.clone(),
            created_at: d.created_at,
            revoked_at: d.revoked_at,
            revoked_by: d.revoked_by.clone(),
            cert_serials: d.cert_serials.iter().cloned().map(Some).collect(),
        }
    }

    /// Rows were written from parsed values; one that no longer parses was edited by hand.
    fn into_domain(self) -> Result<DeviceRecord, StoreError> {
        let bad = |what: &str, e: String| {
            StoreError::Refused(format!("device row {} has an invalid {what}: {e}", self.id))
        };
        Ok(DeviceRecord {
            tenant: TenantId::parse(&self.tenant_id).map_err(|e| bad("tenant", e.to_string()))?,
            machine: MachineId::parse(&self.machine_id)
                .map_err(|e| bad("machine", e.to_string()))?,
            id: self.id,
            username: self.username,
            created_by: self.created_by,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            revoked_by: self.revoked_by,
            cert_serials: self.cert_serials.into_iter().flatten().collect(),
        })
    }
}

#[async_trait]
impl DeviceStore for PgDeviceStore {
    async fn insert(&self, device: &DeviceRecord) -> Result<(), NewDeviceError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let result = diesel::insert_into(devices::table)
            .values(Row::from_domain(device))
            .execute(&mut conn)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            )) if info.constraint_name() == Some("devices_one_live_per_machine") => Err(
                NewDeviceError::MachineTaken(device.machine.as_str().to_owned()),
            ),
            Err(e) => Err(store_error(e).into()),
        }
    }

    async fn list(&self, tenant: &TenantId) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        devices::table
            .filter(devices::tenant_id.eq(tenant.as_str()))
            .order(devices::created_at.desc())
            .select(Row::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(Row::into_domain)
            .collect()
    }

    async fn find(&self, tenant: &TenantId, id: Uuid) -> Result<Option<DeviceRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        devices::table
            .filter(devices::tenant_id.eq(tenant.as_str()))
            .filter(devices::id.eq(id))
            .select(Row::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)?
            .map(Row::into_domain)
            .transpose()
    }

    async fn revoke(
        &self,
        tenant: &TenantId,
        id: Uuid,
        by: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::update(
            devices::table
                .filter(devices::tenant_id.eq(tenant.as_str()))
                .filter(devices::id.eq(id))
                .filter(devices::revoked_at.is_null()),
        )
        .set((
            devices::revoked_at.eq(Utc::now()),
            devices::revoked_by.eq(by),
        ))
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        drop(conn);
        self.find(tenant, id).await
    }

    async fn add_certificate(
        &self,
        tenant: &TenantId,
        id: Uuid,
        serial: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "UPDATE auth.devices SET cert_serials = array_append(cert_serials, $3) \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind::<diesel::sql_types::Text, _>(tenant.as_str())
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Text, _>(serial)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
