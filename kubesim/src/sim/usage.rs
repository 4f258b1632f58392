//! Usage profiles: the known functions of time that a simulated container's CPU rate and
//! memory follow. CPU counters are the exact integral of the rate, so the expected usage over
//! any window is computable: this is the simulator's ground truth.
//!
//! Time `t` is in seconds since the container (or node) started.

use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// A function of time. For CPU it is a rate in cores; for memory a value in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Profile {
    /// `value` at all times.
    Constant { value: f64 },
    /// `before` until `at` seconds, then `after`.
    Step { before: f64, after: f64, at: f64 },
    /// `base + amplitude * sin(2π t / period + phase)`; keep `amplitude <= base`.
    Sine {
        base: f64,
        amplitude: f64,
        period: f64,
        phase: f64,
    },
    /// Linear from `from` to `to` over `duration` seconds, then `to`.
    Ramp { from: f64, to: f64, duration: f64 },
}

impl Profile {
    /// The function's value at `t` (clamped to `t >= 0`).
    pub fn value(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        match *self {
            Profile::Constant { value } => value,
            Profile::Step { before, after, at } => {
                if t < at {
                    before
                } else {
                    after
                }
            }
            Profile::Sine {
                base,
                amplitude,
                period,
                phase,
            } => base + amplitude * (TAU * t / period + phase).sin(),
            Profile::Ramp { from, to, duration } => {
                if t < duration {
                    from + (to - from) * t / duration
                } else {
                    to
                }
            }
        }
    }

    /// The exact integral of the function from 0 to `t` (0 for `t <= 0`).
    pub fn integral(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        match *self {
            Profile::Constant { value } => value * t,
            Profile::Step { before, after, at } => {
                if t < at {
                    before * t
                } else {
                    before * at + after * (t - at)
                }
            }
            Profile::Sine {
                base,
                amplitude,
                period,
                phase,
            } => base * t + amplitude * period / TAU * (phase.cos() - (TAU * t / period + phase).cos()),
            Profile::Ramp { from, to, duration } => {
                let ramp_t = t.min(duration);
                let ramp = from * ramp_t + (to - from) * ramp_t * ramp_t / (2.0 * duration);
                ramp + to * (t - ramp_t)
            }
        }
    }

    /// Mean of the function over `[t1, t2]` (the value at `t2` when the window is empty).
    pub fn mean(&self, t1: f64, t2: f64) -> f64 {
        if t2 <= t1 {
            return self.value(t2);
        }
        (self.integral(t2) - self.integral(t1)) / (t2 - t1)
    }

    /// Whether the function can go negative, which a CPU rate or memory must never do.
    pub fn is_valid(&self) -> bool {
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            Profile::Constant { value } => finite(value),
            Profile::Step { before, after, at } => finite(before) && finite(after) && at >= 0.0,
            Profile::Sine {
                base,
                amplitude,
                period,
                phase,
            } => finite(base) && finite(amplitude) && amplitude <= base && period > 0.0 && phase.is_finite(),
            Profile::Ramp { from, to, duration } => finite(from) && finite(to) && duration > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_integral(p: &Profile, t: f64) -> f64 {
        let steps = 200_000;
        let dt = t / steps as f64;
        (0..steps).map(|i| p.value((i as f64 + 0.5) * dt) * dt).sum()
    }

    #[test]
    fn integrals_match_numeric_integration() {
        let profiles = [
            Profile::Constant { value: 0.25 },
            Profile::Step {
                before: 0.1,
                after: 0.9,
                at: 30.0,
            },
            Profile::Sine {
                base: 0.5,
                amplitude: 0.3,
                period: 60.0,
                phase: 1.0,
            },
            Profile::Ramp {
                from: 0.05,
                to: 1.5,
                duration: 90.0,
            },
        ];
        for p in &profiles {
            assert!(p.is_valid());
            for t in [0.5, 29.0, 31.0, 95.0, 400.0] {
                let exact = p.integral(t);
                let approx = numeric_integral(p, t);
                assert!(
                    (exact - approx).abs() < 1e-3 * exact.max(1.0),
                    "{p:?} at {t}: {exact} vs {approx}"
                );
            }
        }
    }

    #[test]
    fn mean_over_window_is_rate_for_constant_and_step() {
        let step = Profile::Step {
            before: 1.0,
            after: 3.0,
            at: 10.0,
        };
        assert_eq!(step.mean(0.0, 10.0), 1.0);
        assert_eq!(step.mean(5.0, 15.0), 2.0);
        assert_eq!(Profile::Constant { value: 0.5 }.mean(100.0, 115.0), 0.5);
    }

    #[test]
    fn invalid_profiles_are_recognised() {
        assert!(!Profile::Constant { value: -1.0 }.is_valid());
        assert!(
            !Profile::Sine {
                base: 0.1,
                amplitude: 0.2,
                period: 10.0,
                phase: 0.0
            }
            .is_valid()
        );
        assert!(
            !Profile::Ramp {
                from: 0.0,
                to: 1.0,
                duration: 0.0
            }
            .is_valid()
        );
    }
}
