//! TLS 1.3 record protection (RFC 8446 §5.2, §7.1, §7.3): key schedule pieces and AEAD open.

use ring::{aead, hkdf};

/// Length of the AEAD nonce / IV of every TLS 1.3 suite.
const IV_LEN: usize = 12;

/// The parameters of a TLS 1.3 cipher suite that record decryption needs.
#[derive(Clone, Copy)]
pub(crate) struct Tls13Suite {
    aead: &'static aead::Algorithm,
    hkdf: hkdf::Algorithm,
    hash_len: usize,
}

impl std::fmt::Debug for Tls13Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls13Suite")
            .field("aead", self.aead)
            .field("hash_len", &self.hash_len)
            .finish()
    }
}

impl Tls13Suite {
    /// The suites ring can decrypt: TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384,
    /// TLS13_CHACHA20_POLY1305_SHA256.
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x1301 => Some(Tls13Suite {
                aead: &aead::AES_128_GCM,
                hkdf: hkdf::HKDF_SHA256,
                hash_len: 32,
            }),
            0x1302 => Some(Tls13Suite {
                aead: &aead::AES_256_GCM,
                hkdf: hkdf::HKDF_SHA384,
                hash_len: 48,
            }),
            0x1303 => Some(Tls13Suite {
                aead: &aead::CHACHA20_POLY1305,
                hkdf: hkdf::HKDF_SHA256,
                hash_len: 32,
            }),
            _ => None,
        }
    }

    /// The next traffic secret after a KeyUpdate: HKDF-Expand-Label(secret, "traffic upd", "").
    pub fn next_secret(&self, secret: &[u8]) -> Option<Vec<u8>> {
        if secret.len() != self.hash_len {
            return None;
        }
        expand_label(self.hkdf, secret, b"traffic upd", self.hash_len)
    }
}

/// A length for ring's HKDF output.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) of RFC 8446 §7.1.
fn expand_label(alg: hkdf::Algorithm, secret: &[u8], label: &[u8], len: usize) -> Option<Vec<u8>> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(len).ok()?.to_be_bytes();
    let label_len = [u8::try_from(PREFIX.len() + label.len()).ok()?];
    let context_len = [0u8];
    let info: [&[u8]; 5] = [&out_len, &label_len, PREFIX, label, &context_len];
    let prk = hkdf::Prk::new_less_safe(alg, secret);
    let okm = prk.expand(&info, OutLen(len)).ok()?;
    let mut out = vec![0u8; len];
    okm.fill(&mut out).ok()?;
    Some(out)
}

/// The key and IV that protect one direction's records in one epoch.
pub(crate) struct RecordKey {
    key: aead::LessSafeKey,
    iv: [u8; IV_LEN],
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

impl RecordKey {
    /// Derives the record key and IV from a traffic secret (RFC 8446 §7.3).
    pub fn derive(suite: &Tls13Suite, secret: &[u8]) -> Option<Self> {
        if secret.len() != suite.hash_len {
            return None;
        }
        let key = expand_label(suite.hkdf, secret, b"key", suite.aead.key_len())?;
        let iv = expand_label(suite.hkdf, secret, b"iv", IV_LEN)?;
        let unbound = aead::UnboundKey::new(suite.aead, &key).ok()?;
        Some(RecordKey {
            key: aead::LessSafeKey::new(unbound),
            iv: iv.try_into().ok()?,
        })
    }

    /// Decrypts one record body (`TLSCiphertext.encrypted_record`) with record sequence
    /// number `seq`; the 5-byte record header is the additional data. Returns the
    /// `TLSInnerPlaintext`, or `None` when authentication fails.
    #[cfg(test)]
    pub fn open(&self, seq: u64, header: &[u8; 5], body: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_into(seq, header, body, &mut buf).then_some(buf)
    }

    /// Like [`RecordKey::open`], into `buf` (cleared first; its room is reused, so a
    /// transfer's records need no new buffer each). True when the record authenticated.
    pub fn open_into(&self, seq: u64, header: &[u8; 5], body: &[u8], buf: &mut Vec<u8>) -> bool {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(IV_LEN - 8).zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        buf.clear();
        buf.extend_from_slice(body);
        let opened = self.key.open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            buf,
        );
        match opened {
            Ok(plain) => {
                let len = plain.len();
                buf.truncate(len);
                true
            }
            Err(_) => false,
        }
    }

    /// Encrypts like a TLS 1.3 sender would; used by tests to build records.
    #[cfg(test)]
    pub fn seal(&self, seq: u64, header: &[u8; 5], inner: &[u8]) -> Vec<u8> {
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(IV_LEN - 8).zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let mut buf = inner.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header),
                &mut buf,
            )
            .expect("sealing cannot fail for small inputs");
        buf
    }
}

/// Splits a `TLSInnerPlaintext` (RFC 8446 §5.2) into its content type and the length of
/// its content: the type is the last non-zero byte; zeros after it are padding.
pub(crate) fn split_inner_len(inner: &[u8]) -> Option<(u8, usize)> {
    let last = inner.iter().rposition(|&b| b != 0)?;
    Some((*inner.get(last)?, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8448 §3 (simple 1-RTT handshake): server handshake traffic secret and the
    /// derived key and IV.
    #[test]
    fn rfc8448_server_handshake_key() {
        let secret =
            hex::decode("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
                .expect("hex");
        let suite = Tls13Suite::from_id(0x1301).expect("suite");
        let key = expand_label(suite.hkdf, &secret, b"key", 16).expect("key");
        let iv = expand_label(suite.hkdf, &secret, b"iv", 12).expect("iv");
        assert_eq!(hex::encode(key), "3fce516009c21727d0f2e4e86ee403bc");
        assert_eq!(hex::encode(iv), "5d313eb2671276ee13000b30");
    }

    #[test]
    fn seal_open_round_trip_and_failures() {
        for id in [0x1301, 0x1302, 0x1303] {
            let suite = Tls13Suite::from_id(id).expect("suite");
            let secret = vec![0x42; suite.hash_len];
            let key = RecordKey::derive(&suite, &secret).expect("derives");
            let header = [23, 3, 3, 0, 21];
            let sealed = key.seal(5, &header, b"hi\x17");
            assert_eq!(
                key.open(5, &header, &sealed).as_deref(),
                Some(&b"hi\x17"[..])
            );
            assert_eq!(key.open(6, &header, &sealed), None, "wrong sequence number");
            assert_eq!(
                key.open(5, &header, &sealed[..3]),
                None,
                "shorter than a tag"
            );
            let next = suite.next_secret(&secret).expect("next");
            assert_ne!(next, secret);
            assert!(
                RecordKey::derive(&suite, &secret[1..]).is_none(),
                "wrong length"
            );
        }
        assert!(Tls13Suite::from_id(0xc02b).is_none());
    }

    #[test]
    fn inner_plaintext() {
        assert_eq!(split_inner_len(b"abc\x17\0\0"), Some((23, 3)));
        assert_eq!(split_inner_len(&[0, 0]), None);
        assert_eq!(split_inner_len(&[]), None);
    }
}
