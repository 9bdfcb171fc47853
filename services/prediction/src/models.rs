//! The active model: loaded from the registry at start-up, swapped when another model is
//! activated (here or on another replica), never replaced by an artifact that fails to load.

use std::sync::{Arc, RwLock};

use aurum_models::{ModelArtifact, ModelError};
use aurum_ports::prediction::{ModelRecord, ModelRegistry, NewModel, RegisterModelOutcome};
use aurum_ports::StoreError;
use sha2::{Digest, Sha256};

/// Why a model could not be registered or activated.
#[derive(Debug, thiserror::Error)]
pub enum ModelServiceError {
    #[error("the model artifact is unusable: {0}")]
    Invalid(#[from] ModelError),
    #[error("version {0} is already registered with a different artifact")]
    VersionTaken(String),
    #[error("no model version {0}")]
    UnknownVersion(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The model predictions are made with.
#[derive(Debug)]
pub struct ActiveModel {
    pub artifact: ModelArtifact,
}

impl ActiveModel {
    pub fn version(&self) -> &str {
        &self.artifact.version
    }
}

#[derive(Debug)]
pub struct ModelService {
    registry: Arc<dyn ModelRegistry>,
    current: RwLock<Option<Arc<ActiveModel>>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ModelService {
    pub fn new(registry: Arc<dyn ModelRegistry>) -> Self {
        Self {
            registry,
            current: RwLock::new(None),
        }
    }

    /// The model in use, if one is active.
    pub fn current(&self) -> Option<Arc<ActiveModel>> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, model: Arc<ActiveModel>) {
        let version = model.version().to_owned();
        match self.current.write() {
            Ok(mut g) => *g = Some(model),
            Err(poisoned) => *poisoned.into_inner() = Some(model),
        }
        tracing::info!(version, "model activated");
    }

    pub async fn list(&self) -> Result<Vec<ModelRecord>, StoreError> {
        self.registry.list().await
    }

    /// Checks an artifact and registers it under its own version. Returns the version.
    pub async fn register(&self, bytes: &[u8]) -> Result<String, ModelServiceError> {
        let artifact = ModelArtifact::from_json(bytes)?;
        let evaluation = artifact
            .evaluation
            .as_ref()
            .and_then(|e| serde_json::to_value(e).ok());
        let sha = sha256_hex(bytes);
        let outcome = self
            .registry
            .register(NewModel {
                version: &artifact.version,
                trained_at: artifact.trained_at,
                sha256: &sha,
                artifact: bytes,
                evaluation,
            })
            .await?;
        match outcome {
            RegisterModelOutcome::Registered | RegisterModelOutcome::AlreadyRegistered => {
                Ok(artifact.version)
            }
            RegisterModelOutcome::VersionTaken => {
                Err(ModelServiceError::VersionTaken(artifact.version))
            }
        }
    }

    /// Loads `version` from the registry and, only when it loads, makes it the active model
    /// here and in the registry; otherwise the current model keeps serving.
    pub async fn activate(&self, version: &str, by: &str) -> Result<(), ModelServiceError> {
        let bytes = self
            .registry
            .artifact(version)
            .await?
            .ok_or_else(|| ModelServiceError::UnknownVersion(version.to_owned()))?;
        let artifact = ModelArtifact::from_json(&bytes)?;
        if !self.registry.activate(version, by).await? {
            return Err(ModelServiceError::UnknownVersion(version.to_owned()));
        }
        self.swap(Arc::new(ActiveModel { artifact }));
        Ok(())
    }

    /// Follows the registry: loads the active version when it differs from the one in use.
    /// A version that fails to load is logged and the current model kept.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let Some(active) = self.registry.active_version().await? else {
            return Ok(());
        };
        if self.current().is_some_and(|m| m.version() == active) {
            return Ok(());
        }
        let Some(bytes) = self.registry.artifact(&active).await? else {
            return Ok(());
        };
        match ModelArtifact::from_json(&bytes) {
            Ok(artifact) => self.swap(Arc::new(ActiveModel { artifact })),
            Err(e) => tracing::error!(
                version = active,
                error = %e,
                "the active model in the registry does not load; keeping the current one"
            ),
        }
        Ok(())
    }

    /// Registers and activates `bytes` unless a model is already active: a first install
    /// starts predicting without a manual step.
    pub async fn bootstrap(&self, bytes: &[u8]) -> Result<(), ModelServiceError> {
        if self.registry.active_version().await?.is_some() {
            return Ok(());
        }
        let version = self.register(bytes).await?;
        self.activate(&version, "bootstrap").await
    }
}
