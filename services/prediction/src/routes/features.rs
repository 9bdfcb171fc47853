//! `POST /v1/features`: feature batches from ingestion.

use actix_web::{web, HttpResponse};
use aurum_http::Problem;
use aurum_proto::features::FeatureBatch;

use crate::app::AppState;
use crate::esg::EsgServiceError;
use crate::routes::store_problem;
use crate::scoring::ScoringError;

pub async fn post_batch(
    state: web::Data<AppState>,
    batch: web::Json<FeatureBatch>,
) -> Result<HttpResponse, Problem> {
    let batch = batch.into_inner();
    if batch.vectors.len() > FeatureBatch::MAX_VECTORS {
        return Err(Problem::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-vectors",
            "Too many feature vectors in one batch",
        )
        .detail(format!(
            "{} vectors; at most {} per request",
            batch.vectors.len(),
            FeatureBatch::MAX_VECTORS
        )));
    }
    let (report, stored) = match state.scorer.ingest(batch).await {
        Ok(r) => r,
        Err(ScoringError::AllRejected(rejected)) => {
            let reasons: Vec<String> = rejected
                .iter()
                .map(|r| format!("{}: {}", r.machine_id, r.reason))
                .collect();
            return Err(Problem::unprocessable(format!(
                "no feature vector fits the active model's schema: {}",
                reasons.join("; ")
            )));
        }
        Err(ScoringError::Store(e)) => return Err(store_problem(&e)),
        Err(e) => return Err(Problem::bad_request(e.to_string())),
    };
    let activity: Vec<_> = stored
        .iter()
        .filter(|(_, activity)| !activity.is_empty())
        .map(|(machine, activity)| (&machine.tenant_id, machine.key, activity.as_slice()))
        .collect();
    if !activity.is_empty() {
        match state.esg.record_activity_batch(&activity).await {
            Ok(_) => {}
            Err(EsgServiceError::Store(e)) => return Err(store_problem(&e)),
            Err(e) => return Err(Problem::unprocessable(e.to_string())),
        }
    }
    Ok(HttpResponse::Ok().json(report))
}
