#include "self_signed.hpp"

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <string>

namespace ringlane::crypto {

bool make_self_signed(const char* common_name, long days, const char* subject_alt_name, X509*& cert,
                      EVP_PKEY*& key) {
  key = EVP_EC_gen("P-256");
  cert = X509_new();
  std::uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  bool ok = key != nullptr && cert != nullptr && X509_set_version(cert, 2) == 1 &&
            ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial >> 1) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert), -86400) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400) != nullptr &&
            X509_set_pubkey(cert, key) == 1;
  if (ok) {
    X509_NAME* name = X509_get_subject_name(cert);
    ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert, name) == 1;
  }
  if (ok && subject_alt_name != nullptr) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    std::string san = subject_alt_name;  // the conf parser takes a mutable string
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.data());
    ok = ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  if (!ok) {
    EVP_PKEY_free(key);
    X509_free(cert);
    key = nullptr;
    cert = nullptr;
  }
  return ok;
}

}  // namespace ringlane::crypto
