//! TLS 1.2 record decryption from the key log's CLIENT_RANDOM master secret: the PRF
//! (RFC 5246 §5), the key block (§6.3), and AEAD record protection (RFC 5246 §6.2.3.3)
//! for AES-GCM (RFC 5288) and ChaCha20-Poly1305 (RFC 7905).

use ring::{aead, hmac};

/// Length of a TLS 1.2 master secret.
pub(crate) const MASTER_SECRET_LEN: usize = 48;
/// Length of the AEAD nonce of every suite here.
const NONCE_LEN: usize = 12;
/// Length of the explicit nonce an AES-GCM record body begins with.
const EXPLICIT_NONCE_LEN: usize = 8;
/// Length of the additional data: seq_num(8) type(1) version(2) length(2).
const AAD_LEN: usize = 13;

/// The parameters of a TLS 1.2 AEAD cipher suite that record decryption needs.
#[derive(Clone, Copy)]
pub(crate) struct Tls12Suite {
    aead: &'static aead::Algorithm,
    prf: hmac::Algorithm,
    /// client/server_write_IV length: 4 (the GCM salt) or 12 (ChaCha20-Poly1305).
    fixed_iv_len: usize,
}

impl std::fmt::Debug for Tls12Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls12Suite")
            .field("aead", self.aead)
            .field("fixed_iv_len", &self.fixed_iv_len)
            .finish()
    }
}

impl Tls12Suite {
    /// The AEAD suites ring can decrypt: AES_128_GCM_SHA256, AES_256_GCM_SHA384 (with
    /// ECDHE_ECDSA, ECDHE_RSA, DHE_RSA or RSA key exchange) and CHACHA20_POLY1305_SHA256
    /// (ECDHE_ECDSA, ECDHE_RSA, DHE_RSA).
    pub fn from_id(id: u16) -> Option<Self> {
        let (aead, prf, fixed_iv_len) = match id {
            0xc02b | 0xc02f | 0x009e | 0x009c => (&aead::AES_128_GCM, hmac::HMAC_SHA256, 4),
            0xc02c | 0xc030 | 0x009f | 0x009d => (&aead::AES_256_GCM, hmac::HMAC_SHA384, 4),
            0xcca8..=0xccaa => (&aead::CHACHA20_POLY1305, hmac::HMAC_SHA256, 12),
            _ => return None,
        };
        Some(Tls12Suite {
            aead,
            prf,
            fixed_iv_len,
        })
    }

    /// True when records carry an explicit nonce (AES-GCM), false when the nonce is the
    /// IV XOR the sequence number (ChaCha20-Poly1305).
    fn explicit_nonce(&self) -> bool {
        self.fixed_iv_len < NONCE_LEN
    }
}

/// The TLS 1.2 PRF: P_hash(secret, label + seed) with `alg` (HMAC-SHA256 or the suite's
/// hash), filling `out`.
pub(crate) fn prf(alg: hmac::Algorithm, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(alg, secret);
    // A(1) = HMAC(secret, label + seed).
    let mut a = {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(seed);
        ctx.sign()
    };
    let hash_len = alg.digest_algorithm().output_len();
    for chunk in out.chunks_mut(hash_len) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let block = ctx.sign();
        for (o, b) in chunk.iter_mut().zip(block.as_ref()) {
            *o = *b;
        }
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The key and IV that protect one direction's TLS 1.2 records after its ChangeCipherSpec.
pub(crate) struct Tls12Key {
    key: aead::LessSafeKey,
    /// GCM: the 4-byte salt, then zeros for the explicit nonce; ChaCha20: the 12-byte IV.
    iv: [u8; NONCE_LEN],
    explicit: bool,
}

impl std::fmt::Debug for Tls12Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls12Key(..)")
    }
}

impl Tls12Key {
    /// The client's (`client`) or the server's write key and IV: key_block = PRF(master,
    /// "key expansion", server_random + client_random), cut into client_write_key,
    /// server_write_key, client_write_IV, server_write_IV (AEAD suites have no MAC keys).
    pub fn derive(
        suite: &Tls12Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        client: bool,
    ) -> Option<Self> {
        if master.len() != MASTER_SECRET_LEN {
            return None;
        }
        let key_len = suite.aead.key_len();
        let iv_len = suite.fixed_iv_len;
        let mut seed = [0u8; 64];
        for (s, r) in seed
            .iter_mut()
            .zip(server_random.iter().chain(client_random))
        {
            *s = *r;
        }
        let mut block = vec![0u8; 2 * key_len + 2 * iv_len];
        prf(suite.prf, master, b"key expansion", &seed, &mut block);
        let (keys, ivs) = block.split_at_checked(2 * key_len)?;
        let (client_key, server_key) = keys.split_at_checked(key_len)?;
        let (client_iv, server_iv) = ivs.split_at_checked(iv_len)?;
        let (key, fixed) = if client {
            (client_key, client_iv)
        } else {
            (server_key, server_iv)
        };
        let mut iv = [0u8; NONCE_LEN];
        for (i, f) in iv.iter_mut().zip(fixed) {
            *i = *f;
        }
        let unbound = aead::UnboundKey::new(suite.aead, key).ok()?;
        Some(Tls12Key {
            key: aead::LessSafeKey::new(unbound),
            iv,
            explicit: suite.explicit_nonce(),
        })
    }

    /// The nonce and the ciphertext (tag included) of a record body.
    fn nonce<'b>(&self, seq: u64, body: &'b [u8]) -> Option<([u8; NONCE_LEN], &'b [u8])> {
        let mut nonce = self.iv;
        if self.explicit {
            let (explicit, rest) = body.split_at_checked(EXPLICIT_NONCE_LEN)?;
            for (n, e) in nonce
                .iter_mut()
                .skip(NONCE_LEN - EXPLICIT_NONCE_LEN)
                .zip(explicit)
            {
                *n = *e;
            }
            Some((nonce, rest))
        } else {
            for (n, s) in nonce.iter_mut().skip(NONCE_LEN - 8).zip(seq.to_be_bytes()) {
                *n ^= s;
            }
            Some((nonce, body))
        }
    }

    /// Decrypts one record body (`TLSCiphertext.fragment`) of content type `kind` and
    /// record version `version` with sequence number `seq` into `buf` (cleared first; its
    /// room is reused). True when the record authenticated.
    pub fn open_into(
        &self,
        seq: u64,
        kind: u8,
        version: u16,
        body: &[u8],
        buf: &mut Vec<u8>,
    ) -> bool {
        buf.clear();
        let Some((nonce, ciphertext)) = self.nonce(seq, body) else {
            return false;
        };
        let tag_len = self.key.algorithm().tag_len();
        let Some(len) = ciphertext
            .len()
            .checked_sub(tag_len)
            .and_then(|l| u16::try_from(l).ok())
        else {
            return false;
        };
        let aad = additional_data(seq, kind, version, len);
        buf.extend_from_slice(ciphertext);
        let opened = self.key.open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            buf,
        );
        match opened {
            Ok(plain) => {
                let len = plain.len();
                buf.truncate(len);
                true
            }
            Err(_) => {
                buf.clear();
                false
            }
        }
    }

    /// Encrypts like a TLS 1.2 sender would (GCM: with `explicit` as the explicit nonce);
    /// used by tests to build records.
    #[cfg(test)]
    pub fn seal(
        &self,
        seq: u64,
        kind: u8,
        version: u16,
        explicit: [u8; 8],
        plain: &[u8],
    ) -> Vec<u8> {
        let mut out = if self.explicit {
            explicit.to_vec()
        } else {
            Vec::new()
        };
        let (nonce, _) = self.nonce(seq, &out).expect("nonce");
        let len = u16::try_from(plain.len()).expect("small record");
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(additional_data(seq, kind, version, len)),
                &mut buf,
            )
            .expect("sealing cannot fail for small inputs");
        out.extend(buf);
        out
    }
}

/// The additional data of RFC 5246 §6.2.3.3: seq_num, type, version, plaintext length.
fn additional_data(seq: u64, kind: u8, version: u16, len: u16) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    let fields = seq
        .to_be_bytes()
        .into_iter()
        .chain([kind])
        .chain(version.to_be_bytes())
        .chain(len.to_be_bytes());
    for (a, f) in aad.iter_mut().zip(fields) {
        *a = f;
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widely circulated TLS 1.2 PRF (SHA-256) test vector.
    #[test]
    fn prf_sha256_test_vector() {
        let secret = hex::decode("9bbe436ba940f017b17652849a71db35").expect("hex");
        let seed = hex::decode("a0ba9f936cda311827a6f796ffd5198c").expect("hex");
        let mut out = [0u8; 100];
        prf(hmac::HMAC_SHA256, &secret, b"test label", &seed, &mut out);
        assert_eq!(
            hex::encode(out),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
             6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
             4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
             87347b66"
        );
        // A shorter output is a prefix of the longer one.
        let mut short = [0u8; 20];
        prf(hmac::HMAC_SHA256, &secret, b"test label", &seed, &mut short);
        assert_eq!(short[..], out[..20]);
    }

    #[test]
    fn seal_open_round_trip_and_failures() {
        for id in [0xc02b, 0xc030, 0xcca9] {
            let suite = Tls12Suite::from_id(id).expect("suite");
            let master = [0x42; MASTER_SECRET_LEN];
            let (cr, sr) = ([1u8; 32], [2u8; 32]);
            let client = Tls12Key::derive(&suite, &master, &cr, &sr, true).expect("client");
            let server = Tls12Key::derive(&suite, &master, &cr, &sr, false).expect("server");
            let sealed = client.seal(3, 23, 0x0303, [9; 8], b"GET / HTTP/1.1\r\n");
            let mut buf = Vec::new();
            assert!(client.open_into(3, 23, 0x0303, &sealed, &mut buf));
            assert_eq!(buf, b"GET / HTTP/1.1\r\n");
            assert!(
                !server.open_into(3, 23, 0x0303, &sealed, &mut buf),
                "other side"
            );
            assert!(buf.is_empty());
            assert!(
                !client.open_into(4, 23, 0x0303, &sealed, &mut buf),
                "sequence"
            );
            assert!(!client.open_into(3, 22, 0x0303, &sealed, &mut buf), "type");
            assert!(
                !client.open_into(3, 23, 0x0301, &sealed, &mut buf),
                "version"
            );
            for cut in 0..sealed.len() {
                assert!(!client.open_into(3, 23, 0x0303, &sealed[..cut], &mut buf));
            }
            assert!(Tls12Key::derive(&suite, &master[1..], &cr, &sr, true).is_none());
        }
        assert!(Tls12Suite::from_id(0x1301).is_none());
        assert!(
            Tls12Suite::from_id(0xc013).is_none(),
            "CBC suites are not decrypted"
        );
    }

    /// The key block's layout: the client's key, the server's, then their IVs.
    #[test]
    fn key_block_layout() {
        let suite = Tls12Suite::from_id(0xcca8).expect("suite");
        let master = [7u8; MASTER_SECRET_LEN];
        let (cr, sr) = ([3u8; 32], [4u8; 32]);
        let mut seed = sr.to_vec();
        seed.extend_from_slice(&cr);
        let mut block = [0u8; 2 * 32 + 2 * 12];
        prf(
            hmac::HMAC_SHA256,
            &master,
            b"key expansion",
            &seed,
            &mut block,
        );
        let server = Tls12Key::derive(&suite, &master, &cr, &sr, false).expect("server");
        assert_eq!(server.iv[..], block[76..]);
        let client = Tls12Key::derive(&suite, &master, &cr, &sr, true).expect("client");
        assert_eq!(client.iv[..], block[64..76]);
        let gcm = Tls12Suite::from_id(0xc02f).expect("suite");
        let mut block = [0u8; 2 * 16 + 2 * 4];
        prf(
            hmac::HMAC_SHA256,
            &master,
            b"key expansion",
            &seed,
            &mut block,
        );
        let client = Tls12Key::derive(&gcm, &master, &cr, &sr, true).expect("client");
        assert_eq!(client.iv[..4], block[32..36]);
        assert_eq!(client.iv[4..], [0; 8]);
    }
}
