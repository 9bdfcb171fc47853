//! `POST /v1/telemetry` (batch in) and `GET /v1/machines/{id}/telemetry` (downsampled out).

use std::collections::{HashMap, HashSet};

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::{BucketQuery, MachineId, MetricName, Step, TimeRange};
use aurum_http::{Problem, Tenant};
use aurum_ports::ingestion::{Source, WriteBatch};
use aurum_proto::Encoding;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::pipeline::{Envelope, MessageReport};

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Stored,
    PartiallyStored,
    Duplicate,
    Rejected,
}

#[derive(Debug, Serialize)]
struct MessageResult {
    index: usize,
    status: Status,
    #[serde(flatten)]
    report: MessageReport,
}

#[derive(Debug, Serialize)]
struct BatchResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<MessageResult>,
}

/// Stores a batch and answers with one result per message. Malformed bodies get 400;
/// bodies over the limit 413 (enforced by the payload config before this runs).
pub async fn post_batch(
    req: HttpRequest,
    tenant: Tenant,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body = aurum_http::read_body(&req, payload, state.body_limit_bytes).await?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let encoding = Encoding::from_content_type(content_type).ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Content-Type must be application/json or application/x-protobuf",
        )
    })?;
    let batch =
        aurum_proto::decode_batch(encoding, &body).map_err(|e| Problem::bad_request(e.detail))?;
    if batch.messages.len() > state.max_batch_messages {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-messages",
            "The batch holds too many messages",
        )
        .detail(format!(
            "at most {} messages per request",
            state.max_batch_messages
        )));
    }
    let received_at = Utc::now();
    let tenant = tenant.0;
    state
        .metrics
        .received
        .with_label_values(&[Source::Http.as_str()])
        .inc_by(batch.messages.len() as u64);

    let mut write = WriteBatch {
        report_inserted: true,
        ..WriteBatch::default()
    };
    let mut reports = Vec::with_capacity(batch.messages.len());
    let mut origins = HashMap::new();
    let traceparent = aurum_telemetry::current_traceparent();
    for (decoded, raw) in batch.messages {
        let env = Envelope {
            source: Source::Http,
            tenant: Some(tenant.as_str()),
            topic: None,
            received_at,
            raw: &raw,
            traceparent: traceparent.as_deref(),
        };
        let processed = state
            .ingestor
            .process(&env, &tenant, None, decoded)
            .await
            .map_err(|e| Problem::store(&e, "looking a machine up"))?;
        let key = processed
            .stored
            .as_ref()
            .map(|m| (m.machine, m.seq.as_i64()));
        if let (Some(stored), Some(machine)) = (&processed.stored, processed.machine) {
            if state.features.is_some() {
                origins.entry(stored.machine).or_insert(machine);
            }
        }
        write.messages.extend(processed.stored);
        write.quarantine.extend(processed.quarantine);
        reports.push((key, processed.report));
    }
    let outcome = state
        .store
        .write(&write)
        .await
        .map_err(|e| Problem::store(&e, "writing telemetry"))?;
    state.metrics.written.inc_by(outcome.inserted);
    state.metrics.duplicates.inc_by(outcome.duplicates);
    let readings: usize = write.messages.iter().map(|m| m.readings.len()).sum();
    state.metrics.readings_written.inc_by(readings as u64);

    // After the commit, and only what it inserted: a retried batch feeds features once.
    if let Some(feed) = &state.features {
        feed.offer_inserted(write.messages, &origins, &outcome.inserted_keys);
    }
    let inserted: HashSet<_> = outcome.inserted_keys.into_iter().collect();
    let mut response = BatchResponse {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        results: Vec::with_capacity(reports.len()),
    };
    for (index, (key, report)) in reports.into_iter().enumerate() {
        let status = match key {
            None => Status::Rejected,
            Some(k) if !inserted.contains(&k) => Status::Duplicate,
            Some(_) if report.rejections.is_empty() => Status::Stored,
            Some(_) => Status::PartiallyStored,
        };
        match status {
            Status::Stored | Status::PartiallyStored => response.accepted += 1,
            Status::Duplicate => response.duplicates += 1,
            Status::Rejected => response.rejected += 1,
        }
        response.results.push(MessageResult {
            index,
            status,
            report,
        });
    }
    Ok(HttpResponse::Ok().json(response))
}

#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

#[derive(Debug, Serialize)]
struct SeriesResponse {
    machine_id: String,
    metric: String,
    unit: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_s: u32,
    buckets: Vec<aurum_domain::Bucket>,
}

fn parse_time(
    name: &str,
    v: Option<&str>,
    default: DateTime<Utc>,
) -> Result<DateTime<Utc>, Problem> {
    match v {
        None => Ok(default),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Problem::bad_request(format!("{name} must be RFC 3339: {e}"))),
    }
}

/// Buckets of one metric: avg, min, max and count per `step` over `[from, to)`.
pub async fn get_series(
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<SeriesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = MachineId::parse(&path).map_err(|e| Problem::bad_request(e.to_string()))?;
    let metric = query
        .metric
        .as_deref()
        .ok_or_else(|| Problem::bad_request("the metric parameter is required"))
        .and_then(|m| MetricName::parse(m).map_err(|e| Problem::bad_request(e.to_string())))?;
    let now = Utc::now();
    let to = parse_time("to", query.to.as_deref(), now)?;
    let from = parse_time("from", query.from.as_deref(), to - TimeDelta::hours(1))?;
    let step: Step =
        query.step.as_deref().unwrap_or("1m").parse().map_err(
            |e: aurum_domain::downsampling::StepError| Problem::bad_request(e.to_string()),
        )?;
    let range = TimeRange::new(from, to).map_err(|e| Problem::bad_request(e.to_string()))?;

    let Some(known) = state
        .ingestor
        .lookup(&tenant.0, &id)
        .await
        .map_err(|e| Problem::store(&e, "looking a machine up"))?
    else {
        return Err(Problem::not_found(format!(
            "machine {id} is not registered"
        )));
    };
    let profile = state
        .ingestor
        .profiles()
        .history(&tenant.0, &known.profile)
        .await
        .map_err(|e| Problem::store(&e, "reading the machine's profile"))?
        .ok_or_else(|| Problem::not_found(format!("profile {} does not exist", known.profile)))?;
    // A metric of any version: history is kept for metrics a later version dropped.
    let spec = profile
        .versions()
        .iter()
        .rev()
        .find_map(|p| p.spec.metric(&metric))
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "{metric} is not a metric of profile {}",
                known.profile
            ))
        })?;
    let q = BucketQuery::new(tenant.0, id.clone(), metric.clone(), range, step)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let buckets = state
        .store
        .buckets(known.key, &q)
        .await
        .map_err(|e| Problem::store(&e, "querying telemetry"))?;
    Ok(HttpResponse::Ok().json(SeriesResponse {
        machine_id: id.to_string(),
        metric: metric.to_string(),
        unit: spec.unit.as_str().to_owned(),
        from,
        to,
        step_s: step.seconds(),
        buckets,
    }))
}
