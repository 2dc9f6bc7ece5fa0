//! A latency histogram with 1 µs buckets up to 1 s; slower samples are kept exactly.

/// Buckets of 1 µs, from 0 to 1 s.
const BUCKETS: usize = 1_000_000;

/// Latency samples in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    slow: Vec<u64>,
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            slow: Vec::new(),
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one sample.
    pub fn record(&mut self, micros: u64) {
        self.count += 1;
        self.max = self.max.max(micros);
        match usize::try_from(micros) {
            Ok(i) if i < BUCKETS => self.buckets[i] = self.buckets[i].saturating_add(1),
            _ => self.slow.push(micros),
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value at or above which lies `1 - q` of the samples (`q` in 0..=1).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (micros, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return micros as u64;
            }
        }
        let mut slow = self.slow.clone();
        slow.sort_unstable();
        let i = usize::try_from(rank - seen - 1).unwrap_or(usize::MAX);
        slow.get(i).copied().unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for us in 1..=1000 {
            h.record(us);
        }
        h.record(5_000_000); // one very slow sample
        assert_eq!(h.count(), 1001);
        assert_eq!(h.quantile(0.5), 501);
        assert_eq!(h.quantile(0.99), 991);
        assert_eq!(h.quantile(1.0), 5_000_000);
        assert_eq!(h.max(), 5_000_000);
    }
}
