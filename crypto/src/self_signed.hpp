#pragma once
// The self-signed certificates the node makes for itself: DTLS-SRTP's per-process one and the
// development certificate of TURN over TLS and HTTPS.
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace ringlane::crypto {

// An ECDSA P-256 key and a certificate for it: subject and issuer CN=`common_name`, valid from a
// day ago for `days`, with `subject_alt_name` (OpenSSL's syntax, e.g. "DNS:localhost,IP:::1";
// nullptr: none), signed with SHA-256. On success the caller owns both; on failure (false)
// there is nothing to free.
bool make_self_signed(const char* common_name, long days, const char* subject_alt_name, X509*& cert,
                      EVP_PKEY*& key);

}  // namespace ringlane::crypto
