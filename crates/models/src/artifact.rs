//! The versioned, checksummed model artifact the prediction service loads.
//!
//! On disk: a small JSON envelope `{format, format_version, payload_sha256, payload}` where
//! `payload` is the models' JSON as a string. The checksum covers the payload's exact bytes,
//! so any flipped byte, truncation or hand edit is refused before a model is built from it.

use aurum_domain::{FeatureSchema, FeatureVector, MachineType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ModelError, ScoreError};
use crate::evaluate::EvaluationReport;
use crate::model::TypeModels;
use crate::score::Score;
use crate::window::{schema_for, WindowSettings};

/// Identifies the file kind.
pub const ARTIFACT_FORMAT: &str = "aurum-model-artifact";
/// Bumped whenever the payload's layout changes; older readers refuse newer files.
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;

/// Everything the prediction service needs to score machines.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Free-form model version, e.g. `2026-11-28.1`.
    pub version: String,
    pub trained_at: DateTime<Utc>,
    /// The classifier predicts a breakdown within this many hours.
    pub horizon_h: f64,
    /// Remaining-useful-life predictions are capped at this many hours.
    pub rul_cap_h: f64,
    /// The window features must be computed over.
    pub window: WindowSettings,
    /// Figures on held-out runs, when evaluated.
    pub evaluation: Option<EvaluationReport>,
    /// Per machine type: schema and models.
    pub types: Vec<TypeModels>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    format_version: u32,
    payload_sha256: String,
    payload: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ModelArtifact {
    /// Reads an artifact written by [`to_json`](Self::to_json), refusing a corrupted,
    /// truncated or tampered file, one of another format version, and one whose feature
    /// schemas do not match the machine types' catalogues.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ModelError> {
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Malformed(e.to_string()))?;
        if envelope.format != ARTIFACT_FORMAT || envelope.format_version != ARTIFACT_FORMAT_VERSION
        {
            return Err(ModelError::UnsupportedFormat {
                expected: format!("{ARTIFACT_FORMAT} v{ARTIFACT_FORMAT_VERSION}"),
                found: format!("{} v{}", envelope.format, envelope.format_version),
            });
        }
        let computed = sha256_hex(envelope.payload.as_bytes());
        if !computed.eq_ignore_ascii_case(envelope.payload_sha256.trim()) {
            return Err(ModelError::ChecksumMismatch {
                recorded: envelope.payload_sha256,
                computed,
            });
        }
        let artifact: ModelArtifact = serde_json::from_str(&envelope.payload)
            .map_err(|e| ModelError::Malformed(format!("payload: {e}")))?;
        artifact.validate()?;
        Ok(artifact)
    }

    /// The artifact as JSON bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, ModelError> {
        self.validate()?;
        let payload =
            serde_json::to_string(self).map_err(|e| ModelError::Serialise(e.to_string()))?;
        let envelope = Envelope {
            format: ARTIFACT_FORMAT.to_owned(),
            format_version: ARTIFACT_FORMAT_VERSION,
            payload_sha256: sha256_hex(payload.as_bytes()),
            payload,
        };
        serde_json::to_vec(&envelope).map_err(|e| ModelError::Serialise(e.to_string()))
    }

    /// Reads an artifact file.
    pub fn load(path: &std::path::Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// Writes the artifact to a file (through a temporary file renamed into place, so a
    /// reader never sees half a model).
    pub fn save(&self, path: &std::path::Path) -> Result<(), ModelError> {
        let bytes = self.to_json()?;
        let io = |source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The models of a machine type.
    pub fn models(&self, t: MachineType) -> Option<&TypeModels> {
        self.types.iter().find(|m| m.machine_type == t)
    }

    /// How feature vectors of machine type `t` must be flattened.
    pub fn schema(&self, t: MachineType) -> Option<&FeatureSchema> {
        self.models(t).map(|m| &m.schema)
    }

    /// The machine types this artifact can score.
    pub fn machine_types(&self) -> Vec<MachineType> {
        self.types.iter().map(|m| m.machine_type).collect()
    }

    /// The alert threshold learned for machine type `t`.
    pub fn alert_threshold(&self, t: MachineType) -> Option<f64> {
        self.models(t).map(|m| m.alert_threshold)
    }

    /// Scores the features of one machine of type `t`.
    pub fn score(&self, t: MachineType, features: &FeatureVector) -> Result<Score, ScoreError> {
        let models = self
            .models(t)
            .ok_or(ScoreError::UnsupportedMachineType(t))?;
        let row = models.inputs_of(features)?;
        models.score_inputs(&row, self.rul_cap_h)
    }

    /// Checks what the type system cannot: schemas match the catalogues, parts agree.
    fn validate(&self) -> Result<(), ModelError> {
        if !(self.horizon_h.is_finite() && self.horizon_h > 0.0) {
            return Err(ModelError::Inconsistent(format!(
                "horizon {} h is not positive",
                self.horizon_h
            )));
        }
        if !(self.rul_cap_h.is_finite() && self.rul_cap_h > 0.0) {
            return Err(ModelError::Inconsistent(format!(
                "RUL cap {} h is not positive",
                self.rul_cap_h
            )));
        }
        self.window.spec()?;
        for (i, models) in self.types.iter().enumerate() {
            if self.types[..i]
                .iter()
                .any(|m| m.machine_type == models.machine_type)
            {
                return Err(ModelError::Inconsistent(format!(
                    "two model sets for {}",
                    models.machine_type
                )));
            }
            let expected = schema_for(models.machine_type);
            if models.schema != expected {
                return Err(ModelError::SchemaMismatch {
                    machine_type: models.machine_type,
                    expected: expected.names(),
                    found: models.schema.names(),
                });
            }
            models.check().map_err(ModelError::Inconsistent)?;
        }
        Ok(())
    }
}
