//! Random helpers for the physical model: Gaussian noise and mean-reverting random walks.

use rand::Rng;

/// A standard normal draw (Box-Muller; the second value of the pair is not kept).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // `random::<f64>()` is in [0, 1): `1 - u` is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A normal draw with the given mean and standard deviation.
pub fn gaussian<R: Rng + ?Sized>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    mean + sd * standard_normal(rng)
}

/// A uniform draw in `[lo, hi)`; `lo` when the range is empty.
pub fn uniform<R: Rng + ?Sized>(rng: &mut R, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// One step of an Ornstein-Uhlenbeck process: `x` is pulled towards `mean` at rate `theta`
/// (per hour) and shaken by `sigma` (per square-root hour). Used for slowly wandering
/// operating points (ore feed, steam demand).
pub fn mean_reverting_step<R: Rng + ?Sized>(
    rng: &mut R,
    x: f64,
    mean: f64,
    theta: f64,
    sigma: f64,
    dt_h: f64,
) -> f64 {
    let dt = dt_h.max(0.0);
    let pull = 1.0 - (-theta * dt).exp();
    x + (mean - x) * pull + sigma * dt.sqrt() * standard_normal(rng)
}

/// First-order lag (thermal inertia): moves `current` towards `target` with time constant
/// `tau_h` hours.
pub fn lag(current: f64, target: f64, tau_h: f64, dt_h: f64) -> f64 {
    if tau_h <= 0.0 {
        return target;
    }
    current + (target - current) * (1.0 - (-dt_h.max(0.0) / tau_h).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn standard_normal_has_zero_mean_and_unit_variance() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!(xs.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn lag_converges_without_overshoot() {
        let mut t = 20.0;
        for _ in 0..1000 {
            let next = lag(t, 90.0, 0.1, 0.01);
            assert!(next >= t && next <= 90.0);
            t = next;
        }
        assert!((t - 90.0).abs() < 1e-3);
        assert_eq!(lag(20.0, 90.0, 0.0, 1.0), 90.0);
    }

    #[test]
    fn mean_reversion_stays_near_the_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut x = 0.5;
        let mut sum = 0.0;
        for _ in 0..10_000 {
            x = mean_reverting_step(&mut rng, x, 0.8, 2.0, 0.1, 1.0 / 60.0);
            sum += x;
        }
        assert!((sum / 10_000.0 - 0.8).abs() < 0.05);
    }
}
