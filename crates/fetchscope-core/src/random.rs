//! [`Randomness`]: every random choice of a run, fresh or fixed by `--seed`.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rustls::crypto::{CryptoProvider, GetRandomFailed, SecureRandom};

/// The source of every random choice in a run: TCP initial sequence numbers, ports, DNS
/// ids, TLS randoms, fault injection.
///
/// Without a seed every stream comes from the operating system; with one, each named
/// stream is a fixed function of the seed and its purpose, so two runs with the same seed
/// make the same choices and independent parts of the program don't disturb each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Randomness {
    seed: Option<u64>,
}

impl Randomness {
    /// Fresh randomness (`None`) or fixed by `seed`.
    pub fn new(seed: Option<u64>) -> Self {
        Randomness { seed }
    }

    /// The seed, if the run is repeatable.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// A random number generator for one `purpose` (e.g. "client-tcp", "lab-tls").
    pub fn rng(&self, purpose: &str) -> StdRng {
        match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed ^ fnv1a(purpose.as_bytes())),
            None => StdRng::from_os_rng(),
        }
    }

    /// rustls's ring provider; with a seed, its `secure_random` is the seeded stream for
    /// `purpose`, so TLS randoms and session ids repeat too.
    ///
    /// Key shares and signatures still use ring's own randomness: their bytes change from
    /// run to run, their lengths don't.
    pub fn crypto_provider(&self, purpose: &str) -> Arc<CryptoProvider> {
        let mut provider = rustls::crypto::ring::default_provider();
        if self.seed.is_some() {
            let source: &'static SeededSecureRandom = Box::leak(Box::new(SeededSecureRandom {
                rng: Mutex::new(self.rng(purpose)),
            }));
            provider.secure_random = source;
        }
        Arc::new(provider)
    }
}

/// A rustls [`SecureRandom`] fed by a seeded generator: for repeatable runs only.
#[derive(Debug)]
struct SeededSecureRandom {
    rng: Mutex<StdRng>,
}

impl SecureRandom for SeededSecureRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let mut rng = self.rng.lock().map_err(|_| GetRandomFailed)?;
        rng.fill_bytes(buf);
        Ok(())
    }
}

/// FNV-1a, to turn a purpose name into a seed offset.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_same_stream_and_purposes_differ() {
        let a = Randomness::new(Some(7));
        let b = Randomness::new(Some(7));
        let x: u64 = a.rng("tcp").random();
        assert_eq!(x, b.rng("tcp").random::<u64>());
        assert_ne!(x, a.rng("dns").random::<u64>());
    }

    #[test]
    fn seeded_provider_repeats_its_bytes() {
        let p1 = Randomness::new(Some(1)).crypto_provider("tls");
        let p2 = Randomness::new(Some(1)).crypto_provider("tls");
        let (mut b1, mut b2) = ([0u8; 32], [0u8; 32]);
        p1.secure_random.fill(&mut b1).unwrap();
        p2.secure_random.fill(&mut b2).unwrap();
        assert_eq!(b1, b2);
        let mut b3 = [0u8; 32];
        Randomness::new(None)
            .crypto_provider("tls")
            .secure_random
            .fill(&mut b3)
            .unwrap();
        assert_ne!(b1, b3);
    }
}
