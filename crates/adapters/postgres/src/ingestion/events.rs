//! The maintenance log in `ingestion.maintenance_events`.

use async_trait::async_trait;
use aurum_domain::ingestion::{EventKind, MaintenanceEvent, NewEvent};
use aurum_domain::{MachineId, TenantId};
use aurum_ports::ingestion::{EventError, EventQuery, MaintenanceLog};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;

use super::schema::ingestion::maintenance_events as events;
use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgMaintenanceLog {
    pool: PgPool,
}

impl PgMaintenanceLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct Row {
    event_id: i64,
    machine_id: String,
    kind: String,
    failure_mode: Option<String>,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
    note: String,
}

impl Row {
    fn into_domain(self) -> Result<MaintenanceEvent, StoreError> {
        let bad = |what: &str| {
            StoreError::Refused(format!(
                "maintenance event {} has an invalid {what}",
                self.event_id
            ))
        };
        Ok(MaintenanceEvent {
            id: self.event_id,
            machine_id: MachineId::parse(&self.machine_id).map_err(|_| bad("machine id"))?,
            kind: EventKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            failure_mode: self.failure_mode.clone(),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            recorded_by: self.recorded_by.clone(),
            note: self.note.clone(),
        })
    }
}

#[async_trait]
impl MaintenanceLog for PgMaintenanceLog {
    async fn record(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        event: &NewEvent,
        recorded_by: &str,
    ) -> Result<MaintenanceEvent, EventError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row = diesel::insert_into(events::table)
            .values((
                events::tenant_id.eq(tenant.as_str()),
                events::machine_id.eq(machine.as_str()),
                events::kind.eq(event.kind.as_str()),
                events::failure_mode.eq(event.failure_mode.as_deref()),
                events::occurred_at.eq(event.occurred_at),
                events::recorded_by.eq(recorded_by),
                events::note.eq(&event.note),
            ))
            .returning(Row::as_returning())
            .get_result(&mut conn)
            .await;
        match row {
            Ok(row) => Ok(row.into_domain()?),
            // The machine key refers to the registry: an unregistered machine has no log.
            Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                Err(EventError::UnknownMachine(machine.clone()))
            }
            Err(e) => Err(EventError::Store(store_error(e))),
        }
    }

    async fn list(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        query: &EventQuery,
    ) -> Result<Vec<MaintenanceEvent>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let mut q = events::table
            .filter(events::tenant_id.eq(tenant.as_str()))
            .filter(events::machine_id.eq(machine.as_str()))
            .into_boxed();
        if let Some(from) = query.from {
            q = q.filter(events::occurred_at.ge(from));
        }
        if let Some(to) = query.to {
            q = q.filter(events::occurred_at.lt(to));
        }
        let rows: Vec<Row> = q
            .order((events::occurred_at.desc(), events::event_id.desc()))
            .limit(i64::from(query.limit))
            .select(Row::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(Row::into_domain).collect()
    }
}
