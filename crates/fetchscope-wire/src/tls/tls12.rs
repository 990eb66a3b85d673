//! TLS 1.2 record decryption from the key log's CLIENT_RANDOM master secret.
