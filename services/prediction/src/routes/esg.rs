//! ESG endpoints, registered under the caller's `/v1` scope by [`configure`]:
//!
//! - `GET /esg/summary?from=&to=&site=&as_of=`: scope 1, scope 2 and total kg CO2e, production
//!   and carbon intensity, per site and per machine.
//! - `GET /esg/machines/{id}?from=&to=&as_of=`: one machine, with every ledger line.
//! - `GET /esg/report.csv?from=&to=&site=&as_of=`: one row per machine, kind and factor
//!   version.
//! - `GET /esg/forecast?site=`: the next 24 hourly emission values.
//! - `GET /esg/factors`, `POST /esg/factors`: every factor version; add the next version.
//! - `PUT /esg/sites/{site}/region`: the electricity grid region of a site.
//!
//! `from`/`to`/`as_of` are RFC 3339 instants or `YYYY-MM-DD` dates (midnight UTC). `as_of`
//! (default: now) pins the factors, regions and activity known at that instant, so the same
//! query with the same `as_of` always answers the same.

use std::borrow::Cow;

use std::collections::BTreeMap;

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::prediction::esg::{MachineSummary, SiteSummary, Uncovered};
use aurum_domain::prediction::{
    ActivityKind, EmissionFactor, FactorSource, LedgerLine, NewFactor, Period, Region, Totals,
};
use aurum_domain::{ActivityUnit, MachineId, MachineType, SiteId};
use aurum_http::{Problem, Tenant};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::esg::{EsgServiceError, EsgState, Report};

/// Registers the ESG routes; the caller mounts them under `/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let r = |path| aurum_authn::declared(aurum_contract::prediction::ROUTES, path);
    cfg.service(r("/esg/summary").route(web::get().to(summary)))
        .service(r("/esg/machines/{id}").route(web::get().to(machine)))
        .service(r("/esg/report.csv").route(web::get().to(report_csv)))
        .service(r("/esg/forecast").route(web::get().to(forecast)))
        .service(
            r("/esg/factors")
                .route(web::get().to(list_factors))
                .route(web::post().to(add_factor)),
        )
        .service(r("/esg/sites/{site}/region").route(web::put().to(set_site_region)));
}

const UNIT: &str = "kg CO2e";

/// Storage failures are logged with their cause and answered without it.
fn problem(e: EsgServiceError) -> Problem {
    match e {
        EsgServiceError::Store(e) => super::store_problem(&e),
        EsgServiceError::Conflict(why) => Problem::conflict(why),
    }
}

#[derive(Debug, Default, Deserialize)]
struct RawQuery {
    from: Option<String>,
    to: Option<String>,
    site: Option<String>,
    as_of: Option<String>,
}

fn raw_query(req: &HttpRequest) -> Result<RawQuery, Problem> {
    web::Query::<RawQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
}

/// An RFC 3339 instant, or a date meaning its midnight UTC.
fn instant(name: &str, value: &str) -> Result<DateTime<Utc>, Problem> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "`{name}` must be an RFC 3339 instant or a YYYY-MM-DD date"
            ))
        })
}

/// A validated report request.
struct Window {
    period: Period,
    site: Option<SiteId>,
    as_of: DateTime<Utc>,
}

impl Window {
    fn parse(q: &RawQuery, now: DateTime<Utc>) -> Result<Self, Problem> {
        let required = |name: &str, v: &Option<String>| {
            v.as_deref()
                .ok_or_else(|| Problem::bad_request(format!("`{name}` is required")))
                .and_then(|v| instant(name, v))
        };
        let from = required("from", &q.from)?;
        let to = required("to", &q.to)?;
        let period = Period::report(from, to).map_err(|e| Problem::bad_request(e.to_string()))?;
        Ok(Self {
            period,
            site: site_param(q)?,
            as_of: as_of_param(q, now)?,
        })
    }
}

fn site_param(q: &RawQuery) -> Result<Option<SiteId>, Problem> {
    q.site
        .as_deref()
        .map(SiteId::parse)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("site: {e}")))
}

/// Reports as of a future instant would change as the future arrives: refused.
fn as_of_param(q: &RawQuery, now: DateTime<Utc>) -> Result<DateTime<Utc>, Problem> {
    match q.as_of.as_deref() {
        None => Ok(now),
        Some(v) => {
            let t = instant("as_of", v)?;
            if t > now {
                Err(Problem::bad_request("`as_of` cannot be in the future"))
            } else {
                Ok(t)
            }
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Every machine of the report, with zeros for those without activity in the window.
fn machine_summaries(report: &Report) -> Vec<MachineSummary> {
    let mut computed: BTreeMap<MachineId, MachineSummary> = report
        .ledger
        .by_machine()
        .into_iter()
        .map(|m| (m.machine_id.clone(), m))
        .collect();
    report
        .machines
        .iter()
        .map(|m| {
            computed.remove(&m.id).unwrap_or_else(|| MachineSummary {
                machine_id: m.id.clone(),
                machine_type: m.machine_type,
                site: m.site.clone(),
                totals: Totals::default(),
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct SummaryBody {
    from: String,
    to: String,
    as_of: String,
    site: Option<SiteId>,
    unit: &'static str,
    totals: Totals,
    sites: Vec<SiteSummary>,
    machines: Vec<MachineSummary>,
    /// Emission activity no factor covered (its emissions are not in the totals).
    uncovered: Vec<Uncovered>,
}

/// The window (and site) a query asks for, and the tenant's report of it.
async fn windowed_report(
    req: &HttpRequest,
    tenant: &Tenant,
    state: &EsgState,
) -> Result<(Window, Report), Problem> {
    let w = Window::parse(&raw_query(req)?, Utc::now())?;
    let report = state
        .report(&tenant.0, w.period, w.site.clone(), None, w.as_of)
        .await
        .map_err(problem)?;
    Ok((w, report))
}

async fn summary(
    req: HttpRequest,
    tenant: Tenant,
    state: web::Data<EsgState>,
) -> Result<HttpResponse, Problem> {
    let (w, report) = windowed_report(&req, &tenant, &state).await?;
    Ok(HttpResponse::Ok().json(SummaryBody {
        from: rfc3339(w.period.from()),
        to: rfc3339(w.period.to()),
        as_of: rfc3339(w.as_of),
        site: w.site,
        unit: UNIT,
        totals: report.ledger.totals(),
        sites: report.ledger.by_site(),
        machines: machine_summaries(&report),
        uncovered: report.ledger.uncovered(),
    }))
}

#[derive(Debug, Serialize)]
struct MachineBody {
    machine_id: MachineId,
    machine_type: MachineType,
    site: Option<SiteId>,
    grid_region: Region,
    from: String,
    to: String,
    as_of: String,
    unit: &'static str,
    totals: Totals,
    lines: Vec<LedgerLine>,
    uncovered: Vec<Uncovered>,
}

async fn machine(
    req: HttpRequest,
    tenant: Tenant,
    path: web::Path<String>,
    state: web::Data<EsgState>,
) -> Result<HttpResponse, Problem> {
    let id = MachineId::parse(&path.into_inner())
        .map_err(|e| Problem::bad_request(format!("machine id: {e}")))?;
    let q = raw_query(&req)?;
    if q.site.is_some() {
        return Err(Problem::bad_request("`site` does not apply to one machine"));
    }
    let w = Window::parse(&q, Utc::now())?;
    let report = state
        .report(&tenant.0, w.period, None, Some(id.clone()), w.as_of)
        .await
        .map_err(problem)?;
    let Some(m) = report.machines.first() else {
        return Err(Problem::not_found(format!("no machine {id}")));
    };
    Ok(HttpResponse::Ok().json(MachineBody {
        machine_id: m.id.clone(),
        machine_type: m.machine_type,
        site: m.site.clone(),
        grid_region: m.region.clone(),
        from: rfc3339(w.period.from()),
        to: rfc3339(w.period.to()),
        as_of: rfc3339(w.as_of),
        unit: UNIT,
        totals: report.ledger.totals(),
        uncovered: report.ledger.uncovered(),
        lines: report.ledger.lines,
    }))
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 19] = [
    "from",
    "to",
    "as_of",
    "machine_id",
    "machine_type",
    "site",
    "scope",
    "activity_kind",
    "activity_amount",
    "activity_unit",
    "grid_region",
    "factor_id",
    "factor_version",
    "factor_region",
    "kg_co2e_per_unit",
    "factor_source",
    "factor_citation",
    "kg_co2e",
    "unit",
];

/// A text cell a spreadsheet will not run: one that starts with `=`, `+`, `-`, `@`, a tab or
/// a carriage return is prefixed with `'` (the factor citation and source are free text that
/// every tenant's report carries, so a formula there would run in each tenant's spreadsheet).
fn text_cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn csv_body(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let (from, to, as_of) = (
        rfc3339(report.period.from()),
        rfc3339(report.period.to()),
        rfc3339(report.as_of),
    );
    for l in &report.ledger.lines {
        let f = l.factor.as_ref();
        // Numbers in Rust's shortest round-trip form: the same report gives the same bytes.
        w.write_record([
            from.as_str(),
            to.as_str(),
            as_of.as_str(),
            &text_cell(l.machine.as_str()),
            l.machine_type.as_str(),
            &text_cell(l.site.as_ref().map_or("", SiteId::as_str)),
            l.scope.map_or("production", |s| s.as_str()),
            l.kind.as_str(),
            &l.amount.to_string(),
            l.unit.symbol(),
            &text_cell(l.region.as_str()),
            &f.map_or(String::new(), |f| f.id.to_string()),
            &f.map_or(String::new(), |f| f.version.to_string()),
            &text_cell(f.map_or("", |f| f.region.as_str())),
            &f.map_or(String::new(), |f| f.kg_co2e_per_unit.to_string()),
            &text_cell(f.map_or("", |f| f.source.as_str())),
            &text_cell(f.map_or("", |f| f.citation.as_str())),
            &l.kg_co2e.to_string(),
            if l.scope.is_some() { UNIT } else { "" },
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

async fn report_csv(
    req: HttpRequest,
    tenant: Tenant,
    state: web::Data<EsgState>,
) -> Result<HttpResponse, Problem> {
    let (w, report) = windowed_report(&req, &tenant, &state).await?;
    let body = csv_body(&report).map_err(|e| {
        tracing::error!(error = %e, "cannot write the ESG CSV");
        Problem::internal()
    })?;
    let name = format!(
        "esg-{}-{}.csv",
        w.period.from().format("%Y%m%dT%H%M%SZ"),
        w.period.to().format("%Y%m%dT%H%M%SZ")
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name)],
        })
        // Quoting this instant reproduces the report exactly.
        .insert_header(("X-Aurum-As-Of", rfc3339(w.as_of)))
        .body(body))
}

#[derive(Debug, Serialize)]
struct ForecastBody {
    site: Option<SiteId>,
    generated_at: String,
    unit: &'static str,
    #[serde(flatten)]
    forecast: aurum_domain::prediction::Forecast,
}

async fn forecast(
    req: HttpRequest,
    tenant: Tenant,
    state: web::Data<EsgState>,
) -> Result<HttpResponse, Problem> {
    let q = raw_query(&req)?;
    if q.from.is_some() || q.to.is_some() || q.as_of.is_some() {
        return Err(Problem::bad_request(
            "the forecast always covers the next 24 hours; only `site` applies",
        ));
    }
    let site = site_param(&q)?;
    let now = Utc::now();
    let forecast = state
        .forecast(&tenant.0, site.clone(), now)
        .await
        .map_err(problem)?;
    Ok(HttpResponse::Ok().json(ForecastBody {
        site,
        generated_at: rfc3339(now),
        unit: UNIT,
        forecast,
    }))
}

#[derive(Debug, Serialize)]
struct FactorView {
    #[serde(flatten)]
    factor: EmissionFactor,
    unit: ActivityUnit,
}

impl From<EmissionFactor> for FactorView {
    fn from(factor: EmissionFactor) -> Self {
        Self {
            unit: factor.unit(),
            factor,
        }
    }
}

#[derive(Debug, Serialize)]
struct FactorsBody {
    factors: Vec<FactorView>,
}

async fn list_factors(state: web::Data<EsgState>) -> Result<HttpResponse, Problem> {
    let factors = state.factors().await.map_err(problem)?;
    Ok(HttpResponse::Ok().json(FactorsBody {
        factors: factors.into_iter().map(FactorView::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactorRequest {
    kind: String,
    region: String,
    kg_co2e_per_unit: f64,
    source: String,
    citation: String,
    valid_from: String,
}

impl FactorRequest {
    fn parse(&self) -> Result<NewFactor, Problem> {
        let bad = |e: aurum_domain::prediction::EsgError| Problem::bad_request(e.to_string());
        NewFactor::new(
            ActivityKind::parse(&self.kind).map_err(bad)?,
            Region::parse(&self.region).map_err(bad)?,
            self.kg_co2e_per_unit,
            FactorSource::parse(&self.source).map_err(bad)?,
            &self.citation,
            instant("valid_from", &self.valid_from)?,
        )
        .map_err(bad)
    }
}

/// Adds the next version of a factor. Factors are platform reference data, shared by all
/// tenants: the gateway restricts this route to platform administrators.
async fn add_factor(
    state: web::Data<EsgState>,
    body: web::Json<FactorRequest>,
) -> Result<HttpResponse, Problem> {
    let new = body.parse()?;
    let added = state.add_factor(&new).await.map_err(problem)?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(FactorView::from(added)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionRequest {
    grid_region: String,
}

#[derive(Debug, Serialize)]
struct RegionBody {
    site: SiteId,
    grid_region: Region,
}

async fn set_site_region(
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<RegionRequest>,
    state: web::Data<EsgState>,
) -> Result<HttpResponse, Problem> {
    let site = SiteId::parse(&path.into_inner())
        .map_err(|e| Problem::bad_request(format!("site: {e}")))?;
    let region =
        Region::parse(&body.grid_region).map_err(|e| Problem::bad_request(e.to_string()))?;
    state
        .set_site_region(&tenant.0, &site, &region)
        .await
        .map_err(problem)?;
    Ok(HttpResponse::Ok().json(RegionBody {
        site,
        grid_region: region,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use actix_web::{test, App};
    use async_trait::async_trait;
    use aurum_domain::prediction::{MachineActivity, MachineRef, MeteredActivity};
    use aurum_domain::{MetricName, TenantId};
    use aurum_http::TENANT_HEADER;
    use aurum_ports::prediction::{
        AddFactorError, EsgStore, RecordOutcome, ReportData, ReportQuery,
    };
    use aurum_ports::{MachineKey, StoreError};
    use chrono::TimeZone;

    use super::*;

    /// An in-memory store: one tenant with a mill in the UK and a truck without a region.
    #[derive(Debug, Default)]
    struct FakeStore {
        factors: Mutex<Vec<EmissionFactor>>,
        fail: bool,
        /// Each `record_activity` call: its tenant and number of periods.
        recorded: Mutex<Vec<(String, usize)>>,
    }

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap()
    }

    fn seeded() -> FakeStore {
        let f = |id, kind, region: &str, kg| EmissionFactor {
            id,
            version: 1,
            kind,
            region: Region::parse(region).unwrap(),
            kg_co2e_per_unit: kg,
            source: FactorSource::Defra,
            citation: "test, \"quoted\", table 1".into(),
            valid_from: t(1, 0),
            valid_to: None,
            recorded_at: t(1, 0),
            closed_at: None,
        };
        FakeStore {
            factors: Mutex::new(vec![
                f(1, ActivityKind::Diesel, "GLOBAL", 2.5),
                f(2, ActivityKind::Electricity, "UK", 0.2),
            ]),
            fail: false,
            recorded: Mutex::default(),
        }
    }

    #[async_trait]
    impl EsgStore for FakeStore {
        async fn record_activity(
            &self,
            tenant: &TenantId,
            a: &[(MachineKey, MeteredActivity)],
        ) -> Result<RecordOutcome, StoreError> {
            self.recorded
                .lock()
                .unwrap()
                .push((tenant.as_str().to_owned(), a.len()));
            Ok(RecordOutcome {
                inserted: a.len() as u64,
                duplicates: 0,
            })
        }
        async fn list_factors(&self) -> Result<Vec<EmissionFactor>, StoreError> {
            Ok(self.factors.lock().unwrap().clone())
        }
        async fn add_factor(&self, n: &NewFactor) -> Result<EmissionFactor, AddFactorError> {
            if n.valid_from() < t(1, 0) {
                return Err(AddFactorError::Conflict("too early".into()));
            }
            let mut fs = self.factors.lock().unwrap();
            let added = EmissionFactor {
                id: fs.len() as i64 + 1,
                version: 2,
                kind: n.kind(),
                region: n.region().clone(),
                kg_co2e_per_unit: n.kg_co2e_per_unit(),
                source: n.source(),
                citation: n.citation().into(),
                valid_from: n.valid_from(),
                valid_to: None,
                recorded_at: Utc::now(),
                closed_at: None,
            };
            fs.push(added.clone());
            Ok(added)
        }
        async fn set_site_region(
            &self,
            _: &TenantId,
            _: &SiteId,
            _: &Region,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn load_report(&self, q: &ReportQuery) -> Result<ReportData, StoreError> {
            if self.fail {
                return Err(StoreError::Unavailable("password=secret host down".into()));
            }
            let machines = vec![
                MachineRef {
                    id: MachineId::parse("MILL-1").unwrap(),
                    machine_type: MachineType::GrindingMill,
                    site: Some(SiteId::parse("plant").unwrap()),
                    region: Region::parse("UK").unwrap(),
                },
                MachineRef {
                    id: MachineId::parse("TRUCK-1").unwrap(),
                    machine_type: MachineType::HaulTruck,
                    site: Some(SiteId::parse("pit").unwrap()),
                    region: Region::global(),
                },
            ];
            let a = |m: &str, metric: &str, amount| MachineActivity {
                machine: MachineId::parse(m).unwrap(),
                activity: MeteredActivity::new(
                    MetricName::parse(metric).unwrap(),
                    t(2, 0),
                    t(2, 10),
                    amount,
                )
                .unwrap(),
            };
            let machines: Vec<_> = machines
                .into_iter()
                .filter(|_| q.tenant.as_str() == "acme")
                .filter(|m| q.machine.as_ref().is_none_or(|id| *id == m.id))
                .filter(|m| q.site.is_none() || q.site == m.site)
                .collect();
            Ok(ReportData {
                activity: vec![
                    a("MILL-1", "power_kw", 1_000.0),
                    a("MILL-1", "throughput_tph", 100.0),
                    a("TRUCK-1", "fuel_rate_lh", 40.0),
                ]
                .into_iter()
                .filter(|x| machines.iter().any(|m| m.id == x.machine))
                .collect(),
                machines,
                factors: self.factors.lock().unwrap().clone(),
            })
        }
    }

    async fn call(store: FakeStore, req: test::TestRequest) -> (StatusCode, String, String) {
        let state = EsgState::new(Arc::new(store));
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(state))
                .service(web::scope("/v1").configure(configure)),
        )
        .await;
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = test::read_body(resp).await;
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(uri: &str) -> test::TestRequest {
        test::TestRequest::get()
            .uri(uri)
            .insert_header((TENANT_HEADER, "acme"))
    }

    #[actix_web::test]
    async fn summary_has_scopes_sites_machines_and_intensity() {
        let (status, _, body) = call(
            seeded(),
            get("/v1/esg/summary?from=2025-03-01&to=2025-03-08"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["totals"]["scope1_kg_co2e"], 100.0);
        assert_eq!(v["totals"]["scope2_kg_co2e"], 200.0);
        assert_eq!(v["totals"]["total_kg_co2e"], 300.0);
        assert_eq!(v["totals"]["production_t"], 100.0);
        assert_eq!(v["totals"]["intensity_kg_co2e_per_t"], 3.0);
        assert_eq!(v["machines"].as_array().unwrap().len(), 2);
        assert_eq!(v["sites"].as_array().unwrap().len(), 2);
        assert_eq!(v["unit"], "kg CO2e");
    }

    #[actix_web::test]
    async fn bad_windows_are_400_problems() {
        for uri in [
            "/v1/esg/summary?to=2025-03-08",
            "/v1/esg/summary?from=yesterday&to=2025-03-08",
            "/v1/esg/summary?from=2025-03-08&to=2025-03-08",
            "/v1/esg/summary?from=2025-03-09&to=2025-03-08",
            "/v1/esg/summary?from=2024-01-01&to=2025-03-08",
            "/v1/esg/summary?from=2025-03-01&to=2025-03-08&site=a/b",
            "/v1/esg/summary?from=2025-03-01&to=2025-03-08&as_of=2999-01-01",
            "/v1/esg/report.csv?from=2025-03-01",
            "/v1/esg/machines/MILL-1?from=2025-03-01",
            "/v1/esg/forecast?from=2025-03-01",
        ] {
            let (status, ct, body) = call(seeded(), get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert_eq!(ct, "application/problem+json", "{uri}");
        }
        let no_tenant =
            test::TestRequest::get().uri("/v1/esg/summary?from=2025-03-01&to=2025-03-08");
        assert_eq!(call(seeded(), no_tenant).await.0, StatusCode::BAD_REQUEST);
    }

    #[actix_web::test]
    async fn an_unknown_machine_is_404_and_a_known_one_lists_its_lines() {
        let (status, ct, _) = call(
            seeded(),
            get("/v1/esg/machines/NOPE?from=2025-03-01&to=2025-03-08"),
        )
        .await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::NOT_FOUND, "application/problem+json")
        );
        let other_tenant = test::TestRequest::get()
            .uri("/v1/esg/machines/MILL-1?from=2025-03-01&to=2025-03-08")
            .insert_header((TENANT_HEADER, "globex"));
        assert_eq!(call(seeded(), other_tenant).await.0, StatusCode::NOT_FOUND);

        let (status, _, body) = call(
            seeded(),
            get("/v1/esg/machines/MILL-1?from=2025-03-01&to=2025-03-08"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["grid_region"], "UK");
        assert_eq!(v["lines"].as_array().unwrap().len(), 2);
        assert_eq!(v["totals"]["intensity_kg_co2e_per_t"], 2.0);
    }

    #[actix_web::test]
    async fn the_csv_has_a_row_per_machine_kind_and_factor_with_its_source() {
        let (status, ct, body) = call(
            seeded(),
            get("/v1/esg/report.csv?from=2025-03-01&to=2025-03-08&as_of=2025-03-10T00:00:00Z"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/csv"), "{ct}");
        let mut r = csv::Reader::from_reader(body.as_bytes());
        assert_eq!(r.headers().unwrap().len(), CSV_HEADER.len());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 3, "{body}");
        let truck = rows.iter().find(|r| &r[3] == "TRUCK-1").unwrap();
        assert_eq!(&truck[6], "scope1");
        assert_eq!(&truck[8], "40");
        assert_eq!(&truck[9], "L");
        assert_eq!(&truck[15], "defra");
        assert_eq!(&truck[16], "test, \"quoted\", table 1");
        assert_eq!(&truck[17], "100");
        // The same query as of the same instant gives the same bytes.
        let (_, _, again) = call(
            seeded(),
            get("/v1/esg/report.csv?from=2025-03-01&to=2025-03-08&as_of=2025-03-10T00:00:00Z"),
        )
        .await;
        assert_eq!(body, again);
    }

    #[actix_web::test]
    async fn forecast_has_24_hours() {
        let (status, _, body) = call(seeded(), get("/v1/esg/forecast?site=plant")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["hours"].as_array().unwrap().len(), 24);
        assert!(v["method"].as_str().unwrap().contains("same hour"));
    }

    #[actix_web::test]
    async fn factors_are_listed_added_and_validated() {
        let (status, _, body) = call(seeded(), get("/v1/esg/factors")).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["factors"][1]["unit"], "kWh");

        let post = |body: serde_json::Value| {
            test::TestRequest::post()
                .uri("/v1/esg/factors")
                .set_json(body)
        };
        let good = serde_json::json!({
            "kind": "diesel", "region": "uk", "kg_co2e_per_unit": 2.66155,
            "source": "defra", "citation": "DEFRA 2025, Fuels", "valid_from": "2025-06-01"
        });
        let (status, _, body) = call(seeded(), post(good.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["region"].as_str(), v["unit"].as_str()),
            (Some("UK"), Some("L"))
        );

        let mut early = good.clone();
        early["valid_from"] = "2020-01-01".into();
        assert_eq!(call(seeded(), post(early)).await.0, StatusCode::CONFLICT);
        for (field, value) in [
            ("kind", serde_json::json!("ore_milled")),
            ("kind", serde_json::json!("coal")),
            ("kg_co2e_per_unit", serde_json::json!(-1.0)),
            ("source", serde_json::json!("wikipedia")),
            ("citation", serde_json::json!("")),
            ("valid_from", serde_json::json!("soon")),
            ("region", serde_json::json!("U K")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            let (status, ct, body) = call(seeded(), post(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
            assert_eq!(ct, "application/problem+json");
        }
    }

    #[actix_web::test]
    async fn site_regions_are_set_and_validated() {
        let put = |site: &str, region: &str| {
            test::TestRequest::put()
                .uri(&format!("/v1/esg/sites/{site}/region"))
                .insert_header((TENANT_HEADER, "acme"))
                .set_json(serde_json::json!({ "grid_region": region }))
        };
        let (status, _, body) = call(seeded(), put("plant", "au-wa-nwis")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("AU-WA-NWIS"));
        assert_eq!(
            call(seeded(), put("plant", "no way")).await.0,
            StatusCode::BAD_REQUEST
        );
    }

    #[actix_web::test]
    async fn storage_failures_never_leak_their_text() {
        let store = FakeStore {
            fail: true,
            ..seeded()
        };
        let (status, ct, body) =
            call(store, get("/v1/esg/summary?from=2025-03-01&to=2025-03-08")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ct, "application/problem+json");
        assert!(!body.contains("secret"), "{body}");
    }

    #[actix_web::test]
    async fn record_activity_skips_invalid_and_unaccounted_records() {
        use aurum_proto::features::ActivityRecord;
        let store = Arc::new(seeded());
        let state = EsgState::new(store.clone());
        let rec = |metric: &str, h: u32, amount: f64| ActivityRecord {
            metric: MetricName::parse(metric).unwrap(),
            from: t(2, h),
            to: t(2, h + 1),
            amount,
        };
        let mut backwards = rec("power_kw", 3, 1.0);
        backwards.to = backwards.from;
        let acme = TenantId::parse("acme").unwrap();
        let other = TenantId::parse("other").unwrap();
        let truck = [
            rec("fuel_rate_lh", 1, 10.0),
            rec("rpm", 2, 5.0),
            rec("fuel_rate_lh", 4, f64::NAN),
            rec("fuel_rate_lh", 5, -1.0),
        ];
        let mill = [rec("power_kw", 2, 5.0), backwards];
        let boiler = [rec("fuel_rate_lh", 1, 3.0)];
        let summary = state
            .record_activity_batch(&[
                (&acme, MachineKey(1), &truck[..]),
                (&acme, MachineKey(2), &mill[..]),
                (&other, MachineKey(3), &boiler[..]),
                (&acme, MachineKey(4), &[][..]),
            ])
            .await
            .unwrap();
        assert_eq!((summary.inserted, summary.skipped), (3, 4));
        // One store call per tenant, whatever the number of machines.
        assert_eq!(
            *store.recorded.lock().unwrap(),
            [("acme".to_owned(), 2), ("other".to_owned(), 1)]
        );
    }
}

#[cfg(test)]
mod text_cell_tests {
    use super::text_cell;

    #[test]
    fn text_cells_never_start_a_spreadsheet_formula() {
        for (raw, safe) in [
            (
                "=HYPERLINK(\"http://x\",\"DEFRA\")",
                "'=HYPERLINK(\"http://x\",\"DEFRA\")",
            ),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("DEFRA 2025, Fuels", "DEFRA 2025, Fuels"),
            ("", ""),
        ] {
            assert_eq!(text_cell(raw), safe);
        }
    }

    proptest::proptest! {
        #[test]
        fn no_text_cell_starts_with_a_formula_character(s in "\\PC{0,40}") {
            let cell = text_cell(&s);
            proptest::prop_assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']));
            // Only a prefix is ever added: the text itself is kept.
            proptest::prop_assert!(cell.ends_with(s.as_str()));
        }
    }
}
