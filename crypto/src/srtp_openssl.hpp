#pragma once
// libsrtp2's AES-ICM-128, AES-GCM-128 and HMAC-SHA1 transforms replaced by OpenSSL ones, through
// srtp_replace_cipher_type / srtp_replace_auth_type (libsrtp2's public hooks for exactly this).
// Debian builds libsrtp2 on NSS, which costs about twice OpenSSL's work per packet for both
// profiles (bench/RESULTS.md). Sessions, key derivation, replay windows
// and rollover stay libsrtp2's; libsrtp2 runs its own self tests and ours on each replacement.
// Call once, after srtp_init().
namespace ringlane::crypto {
bool install_openssl_srtp_transforms();
}
