//! Which traces are recorded: the service's `telemetry.sampling_ratio`, unless the standard
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` variables say otherwise (an operator's
//! usual lever, and what the Helm chart sets).

use opentelemetry_sdk::trace::Sampler;

/// The decision for a trace that starts here (no sampled parent to follow).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootDecision {
    AlwaysOn,
    AlwaysOff,
    /// Keep this fraction of trace ids, 0.0 to 1.0.
    Ratio(f64),
}

/// A sampler as the OpenTelemetry environment variables describe one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSpec {
    /// Follow the caller's decision when there is a parent (the platform's default: a trace
    /// the gateway keeps is kept by every service it reaches).
    pub parent_based: bool,
    pub root: RootDecision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamplerError {
    #[error("OTEL_TRACES_SAMPLER={0:?} is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)")]
    Unknown(String),
    #[error("OTEL_TRACES_SAMPLER_ARG={0:?} is not a ratio between 0 and 1")]
    Ratio(String),
}

impl SamplerSpec {
    /// Parent-based with the configured ratio for new traces.
    pub fn from_ratio(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            1.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        Self {
            parent_based: true,
            root: RootDecision::Ratio(ratio),
        }
    }

    /// `sampler` and `arg` are the values of `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG`; without a sampler the configured `ratio` applies. A ratio
    /// sampler without an argument samples everything, as the specification says.
    pub fn resolve(
        sampler: Option<&str>,
        arg: Option<&str>,
        ratio: f64,
    ) -> Result<Self, SamplerError> {
        let Some(name) = sampler.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Self::from_ratio(ratio));
        };
        let ratio_arg = || -> Result<f64, SamplerError> {
            match arg.map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(1.0),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| SamplerError::Ratio(a.to_owned())),
            }
        };
        let (parent_based, root) = match name.to_ascii_lowercase().as_str() {
            "always_on" => (false, RootDecision::AlwaysOn),
            "always_off" => (false, RootDecision::AlwaysOff),
            "traceidratio" => (false, RootDecision::Ratio(ratio_arg()?)),
            "parentbased_always_on" => (true, RootDecision::AlwaysOn),
            "parentbased_always_off" => (true, RootDecision::AlwaysOff),
            "parentbased_traceidratio" => (true, RootDecision::Ratio(ratio_arg()?)),
            _ => return Err(SamplerError::Unknown(name.to_owned())),
        };
        Ok(Self { parent_based, root })
    }

    /// From the process environment.
    pub fn from_env(ratio: f64) -> Result<Self, SamplerError> {
        let sampler = std::env::var("OTEL_TRACES_SAMPLER").ok();
        let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok();
        Self::resolve(sampler.as_deref(), arg.as_deref(), ratio)
    }

    pub fn build(self) -> Sampler {
        let root = match self.root {
            RootDecision::AlwaysOn => Sampler::AlwaysOn,
            RootDecision::AlwaysOff => Sampler::AlwaysOff,
            RootDecision::Ratio(r) => Sampler::TraceIdRatioBased(r),
        };
        if self.parent_based {
            Sampler::ParentBased(Box::new(root))
        } else {
            root
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn without_the_variables_the_configured_ratio_applies_to_new_traces() {
        assert_eq!(
            SamplerSpec::resolve(None, Some("0.5"), 0.25).unwrap(),
            SamplerSpec {
                parent_based: true,
                root: RootDecision::Ratio(0.25)
            }
        );
        assert_eq!(
            SamplerSpec::resolve(Some(" "), None, 7.0).unwrap().root,
            RootDecision::Ratio(1.0)
        );
    }

    #[test]
    fn every_standard_sampler_name_is_understood() {
        let cases = [
            ("always_on", false, RootDecision::AlwaysOn),
            ("always_off", false, RootDecision::AlwaysOff),
            ("traceidratio", false, RootDecision::Ratio(0.1)),
            ("parentbased_always_on", true, RootDecision::AlwaysOn),
            ("PARENTBASED_ALWAYS_OFF", true, RootDecision::AlwaysOff),
            ("parentbased_traceidratio", true, RootDecision::Ratio(0.1)),
        ];
        for (name, parent_based, root) in cases {
            assert_eq!(
                SamplerSpec::resolve(Some(name), Some("0.1"), 1.0).unwrap(),
                SamplerSpec { parent_based, root },
                "{name}"
            );
        }
    }

    #[test]
    fn a_ratio_sampler_without_an_argument_keeps_everything() {
        assert_eq!(
            SamplerSpec::resolve(Some("traceidratio"), None, 0.0)
                .unwrap()
                .root,
            RootDecision::Ratio(1.0)
        );
    }

    #[test]
    fn unknown_samplers_and_bad_ratios_are_refused() {
        assert_eq!(
            SamplerSpec::resolve(Some("jaeger_remote"), None, 1.0),
            Err(SamplerError::Unknown("jaeger_remote".into()))
        );
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            assert_eq!(
                SamplerSpec::resolve(Some("traceidratio"), Some(bad), 1.0),
                Err(SamplerError::Ratio(bad.into())),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_ratio_in_range_is_taken_as_given(r in 0.0f64..=1.0) {
            let spec = SamplerSpec::resolve(Some("parentbased_traceidratio"), Some(&r.to_string()), 0.0).unwrap();
            prop_assert_eq!(spec.root, RootDecision::Ratio(r));
        }

        #[test]
        fn the_configured_ratio_is_always_clamped(r in proptest::num::f64::ANY) {
            match SamplerSpec::resolve(None, None, r).unwrap().root {
                RootDecision::Ratio(x) => prop_assert!((0.0..=1.0).contains(&x)),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
