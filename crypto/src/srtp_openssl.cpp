#include "srtp_openssl.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <srtp2/auth.h>
#include <srtp2/cipher.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace ringlane::crypto {
namespace {

EVP_MAC* sha1_hmac() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// The key is set once (init); start() re-initialises the MAC with the same key, which OpenSSL
// does from its saved inner/outer pads without a new key schedule.
struct HmacState {
  HmacState() = default;
  HmacState(const HmacState&) = delete;
  HmacState& operator=(const HmacState&) = delete;
  ~HmacState() { EVP_MAC_CTX_free(ctx); }
  bool ok() const { return ctx != nullptr; }
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(sha1_hmac());
};

// libsrtp2 hands back through dealloc what alloc returned: the object and its state live in one
// block, as libsrtp2 lays out its own transforms. Each State owns its OpenSSL context (ok() says
// it got one).
template <typename Object, typename State>
Object* make_with_state() {
  void* raw = std::calloc(1, sizeof(Object) + sizeof(State));
  if (raw == nullptr) {
    return nullptr;
  }
  auto* state = new (static_cast<char*>(raw) + sizeof(Object)) State();
  if (!state->ok()) {
    state->~State();
    std::free(raw);
    return nullptr;
  }
  auto* object = static_cast<Object*>(raw);
  object->state = state;
  return object;
}

template <typename Object, typename State>
void destroy_with_state(Object* object) {
  static_cast<State*>(object->state)->~State();
  // libsrtp2's own dealloc zeroes the key state before freeing: do the same.
  std::memset(static_cast<void*>(object), 0, sizeof(Object) + sizeof(State));
  std::free(object);
}

extern const srtp_auth_type_t kOpenSslHmacSha1;

srtp_err_status_t hmac_alloc(srtp_auth_pointer_t* ap, int key_len, int out_len) {
  // HMAC-SHA1 in SRTP: keys of at most 20 octets, tags of at most 20 (RFC 3711 §4.2.1).
  if (key_len < 0 || key_len > 20 || out_len < 0 || out_len > 20 || sha1_hmac() == nullptr) {
    return srtp_err_status_bad_param;
  }
  auto* a = make_with_state<srtp_auth_t, HmacState>();
  if (a == nullptr) {
    return srtp_err_status_alloc_fail;
  }
  a->type = &kOpenSslHmacSha1;
  a->out_len = out_len;
  a->key_len = key_len;
  a->prefix_len = 0;
  *ap = a;
  return srtp_err_status_ok;
}

srtp_err_status_t hmac_dealloc(srtp_auth_pointer_t a) {
  destroy_with_state<srtp_auth_t, HmacState>(a);
  return srtp_err_status_ok;
}

srtp_err_status_t hmac_init(void* s, const std::uint8_t* key, int key_len) {
  auto* state = static_cast<HmacState*>(s);
  char digest[] = "SHA1";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  return EVP_MAC_init(state->ctx, key, static_cast<std::size_t>(key_len), params) == 1
             ? srtp_err_status_ok
             : srtp_err_status_auth_fail;
}

srtp_err_status_t hmac_start(void* s) {
  auto* state = static_cast<HmacState*>(s);
  return EVP_MAC_init(state->ctx, nullptr, 0, nullptr) == 1 ? srtp_err_status_ok
                                                            : srtp_err_status_auth_fail;
}

srtp_err_status_t hmac_update(void* s, const std::uint8_t* message, int bytes) {
  auto* state = static_cast<HmacState*>(s);
  return bytes < 0 || EVP_MAC_update(state->ctx, message, static_cast<std::size_t>(bytes)) != 1
             ? srtp_err_status_auth_fail
             : srtp_err_status_ok;
}

srtp_err_status_t hmac_compute(void* s, const std::uint8_t* message, int bytes, int tag_len,
                               std::uint8_t* result) {
  auto* state = static_cast<HmacState*>(s);
  if (tag_len < 0 || tag_len > 20 || hmac_update(s, message, bytes) != srtp_err_status_ok) {
    return srtp_err_status_auth_fail;
  }
  std::uint8_t full[EVP_MAX_MD_SIZE];
  std::size_t n = 0;
  if (EVP_MAC_final(state->ctx, full, &n, sizeof(full)) != 1 || n < 20) {
    return srtp_err_status_auth_fail;
  }
  std::memcpy(result, full, static_cast<std::size_t>(tag_len));
  return srtp_err_status_ok;
}

// RFC 2202 §3 test case 1: libsrtp2 runs it (and its own HMAC's cases) when the type is loaded.
const std::uint8_t kTestKey[20] = {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                   0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
const std::uint8_t kTestData[8] = {'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'};
const std::uint8_t kTestTag[20] = {0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72, 0x64, 0xe2, 0x8b,
                                   0xc0, 0xb6, 0xfb, 0x37, 0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00};
const srtp_auth_test_case_t kTestCase = {20, kTestKey, 8, kTestData, 20, kTestTag, nullptr};

const srtp_auth_type_t kOpenSslHmacSha1 = {hmac_alloc,
                                           hmac_dealloc,
                                           hmac_init,
                                           hmac_compute,
                                           hmac_update,
                                           hmac_start,
                                           "hmac sha-1 (OpenSSL EVP_MAC, ringlane)",
                                           &kTestCase,
                                           SRTP_HMAC_SHA1};

// ---------------------------------------------------------------------------------------------
// AES-128 in integer counter mode (RFC 3711 §4.1.1): the counter block is (salt || 0x0000) XOR
// the IV libsrtp2 passes; OpenSSL's AES-128-CTR then runs it. The key schedule is made once
// in init(); set_iv() only loads a new counter.

constexpr int kIcmKeyWithSalt = 30;  // SRTP_AES_ICM_128_KEY_LEN_WSALT
constexpr int kSaltBytes = 14;

struct IcmState {
  IcmState() = default;
  IcmState(const IcmState&) = delete;
  IcmState& operator=(const IcmState&) = delete;
  ~IcmState() { EVP_CIPHER_CTX_free(ctx); }
  bool ok() const { return ctx != nullptr; }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::uint8_t salt[16] = {};
};

extern const srtp_cipher_type_t kOpenSslAesIcm128;

srtp_err_status_t icm_alloc(srtp_cipher_pointer_t* cp, int key_len, int) {
  if (key_len != kIcmKeyWithSalt) {
    return srtp_err_status_bad_param;
  }
  auto* c = make_with_state<srtp_cipher_t, IcmState>();
  if (c == nullptr) {
    return srtp_err_status_alloc_fail;
  }
  c->type = &kOpenSslAesIcm128;
  c->key_len = key_len;
  c->algorithm = SRTP_AES_ICM_128;
  *cp = c;
  return srtp_err_status_ok;
}

srtp_err_status_t icm_dealloc(srtp_cipher_pointer_t c) {
  destroy_with_state<srtp_cipher_t, IcmState>(c);
  return srtp_err_status_ok;
}

srtp_err_status_t icm_init(void* s, const std::uint8_t* key) {
  auto* state = static_cast<IcmState*>(s);
  std::memset(state->salt, 0, sizeof(state->salt));
  std::memcpy(state->salt, key + 16, kSaltBytes);
  return EVP_EncryptInit_ex(state->ctx, EVP_aes_128_ctr(), nullptr, key, nullptr) == 1
             ? srtp_err_status_ok
             : srtp_err_status_init_fail;
}

srtp_err_status_t icm_set_iv(void* s, std::uint8_t* iv, srtp_cipher_direction_t) {
  auto* state = static_cast<IcmState*>(s);
  std::uint8_t counter[16];
  for (int i = 0; i < 16; ++i) {
    counter[i] = static_cast<std::uint8_t>(state->salt[i] ^ iv[i]);
  }
  return EVP_EncryptInit_ex(state->ctx, nullptr, nullptr, nullptr, counter) == 1
             ? srtp_err_status_ok
             : srtp_err_status_cipher_fail;
}

srtp_err_status_t icm_encrypt(void* s, std::uint8_t* buffer, unsigned int* octets) {
  auto* state = static_cast<IcmState*>(s);
  int out = 0;
  if (*octets > static_cast<unsigned int>(INT32_MAX) ||
      EVP_EncryptUpdate(state->ctx, buffer, &out, buffer, static_cast<int>(*octets)) != 1) {
    return srtp_err_status_cipher_fail;
  }
  *octets = static_cast<unsigned int>(out);
  return srtp_err_status_ok;
}

// RFC 3711 Appendix B.2: the AES-CM keystream for session key 2B7E...3C and salt F0F1...FD.
const std::uint8_t kIcmKey[30] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7,
                                  0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c, 0xf0, 0xf1, 0xf2, 0xf3,
                                  0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd};
std::uint8_t kIcmIndex[16] = {};
const std::uint8_t kIcmPlain[32] = {};
const std::uint8_t kIcmCipher[32] = {
    0xe0, 0x3e, 0xad, 0x09, 0x35, 0xc9, 0x5e, 0x80, 0xe1, 0x66, 0xb1, 0x6d, 0xd9, 0x2b, 0x4e, 0xb4,
    0xd2, 0x35, 0x13, 0x16, 0x2b, 0x02, 0xd0, 0xf7, 0x2a, 0x43, 0xa2, 0xfe, 0x4a, 0x5f, 0x97, 0xab};
const srtp_cipher_test_case_t kIcmTest = {30,         kIcmKey, kIcmIndex, 32, kIcmPlain, 32,
                                          kIcmCipher, 0,       nullptr,   0,  nullptr};

const srtp_cipher_type_t kOpenSslAesIcm128 = {
    icm_alloc,  icm_dealloc,     icm_init,
    nullptr,    icm_encrypt,     icm_encrypt,
    icm_set_iv, nullptr,         "AES-128 counter mode (OpenSSL EVP, ringlane)",
    &kIcmTest,  SRTP_AES_ICM_128};

// ---------------------------------------------------------------------------------------------
// AEAD_AES_128_GCM (RFC 7714): libsrtp2 forms the 12-byte IV from the salt and passes it to
// set_iv, then the header as AAD, then the payload; on protect it asks for the tag, on
// unprotect the tag ends the buffer it passes to decrypt.

constexpr int kGcmKeyWithSalt = 28;  // SRTP_AES_GCM_128_KEY_LEN_WSALT

struct GcmState {
  GcmState() = default;
  GcmState(const GcmState&) = delete;
  GcmState& operator=(const GcmState&) = delete;
  ~GcmState() { EVP_CIPHER_CTX_free(ctx); }
  bool ok() const { return ctx != nullptr; }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int tag_len = 16;
  bool encrypting = true;
};

extern const srtp_cipher_type_t kOpenSslAesGcm128;

srtp_err_status_t gcm_alloc(srtp_cipher_pointer_t* cp, int key_len, int tag_len) {
  if (key_len != kGcmKeyWithSalt || (tag_len != 16 && tag_len != 8)) {
    return srtp_err_status_bad_param;
  }
  auto* c = make_with_state<srtp_cipher_t, GcmState>();
  if (c == nullptr) {
    return srtp_err_status_alloc_fail;
  }
  static_cast<GcmState*>(c->state)->tag_len = tag_len;
  c->type = &kOpenSslAesGcm128;
  c->key_len = key_len;
  c->algorithm = SRTP_AES_GCM_128;
  *cp = c;
  return srtp_err_status_ok;
}

srtp_err_status_t gcm_dealloc(srtp_cipher_pointer_t c) {
  destroy_with_state<srtp_cipher_t, GcmState>(c);
  return srtp_err_status_ok;
}

srtp_err_status_t gcm_init(void* s, const std::uint8_t* key) {
  auto* state = static_cast<GcmState*>(s);
  // The key schedule and GHASH key are computed here once; set_iv only loads an IV.
  return EVP_CipherInit_ex(state->ctx, EVP_aes_128_gcm(), nullptr, key, nullptr, 1) == 1
             ? srtp_err_status_ok
             : srtp_err_status_init_fail;
}

srtp_err_status_t gcm_set_iv(void* s, std::uint8_t* iv, srtp_cipher_direction_t direction) {
  auto* state = static_cast<GcmState*>(s);
  if (direction != srtp_direction_encrypt && direction != srtp_direction_decrypt) {
    return srtp_err_status_bad_param;
  }
  state->encrypting = direction == srtp_direction_encrypt;
  return EVP_CipherInit_ex(state->ctx, nullptr, nullptr, nullptr, iv, state->encrypting ? 1 : 0) ==
                 1
             ? srtp_err_status_ok
             : srtp_err_status_init_fail;
}

srtp_err_status_t gcm_set_aad(void* s, const std::uint8_t* aad, std::uint32_t aad_len) {
  auto* state = static_cast<GcmState*>(s);
  int out = 0;
  return aad_len <= static_cast<std::uint32_t>(INT32_MAX) &&
                 EVP_CipherUpdate(state->ctx, nullptr, &out, aad, static_cast<int>(aad_len)) == 1
             ? srtp_err_status_ok
             : srtp_err_status_algo_fail;
}

srtp_err_status_t gcm_encrypt(void* s, std::uint8_t* buffer, unsigned int* octets) {
  auto* state = static_cast<GcmState*>(s);
  int out = 0;
  if (*octets > static_cast<unsigned int>(INT32_MAX) ||
      EVP_CipherUpdate(state->ctx, buffer, &out, buffer, static_cast<int>(*octets)) != 1) {
    return srtp_err_status_cipher_fail;
  }
  return srtp_err_status_ok;
}

srtp_err_status_t gcm_get_tag(void* s, std::uint8_t* tag, std::uint32_t* len) {
  auto* state = static_cast<GcmState*>(s);
  std::uint8_t none[16];
  int out = 0;
  if (EVP_CipherFinal_ex(state->ctx, none, &out) != 1 ||
      EVP_CIPHER_CTX_ctrl(state->ctx, EVP_CTRL_GCM_GET_TAG, state->tag_len, tag) != 1) {
    return srtp_err_status_algo_fail;
  }
  *len = static_cast<std::uint32_t>(state->tag_len);
  return srtp_err_status_ok;
}

// The buffer holds ciphertext then the tag; on success *octets loses the tag.
srtp_err_status_t gcm_decrypt(void* s, std::uint8_t* buffer, unsigned int* octets) {
  auto* state = static_cast<GcmState*>(s);
  auto tag_len = static_cast<unsigned int>(state->tag_len);
  if (*octets < tag_len || *octets > static_cast<unsigned int>(INT32_MAX)) {
    return srtp_err_status_bad_param;
  }
  unsigned int body = *octets - tag_len;
  int out = 0;
  std::uint8_t none[16];
  if (EVP_CipherUpdate(state->ctx, buffer, &out, buffer, static_cast<int>(body)) != 1 ||
      EVP_CIPHER_CTX_ctrl(state->ctx, EVP_CTRL_GCM_SET_TAG, state->tag_len, buffer + body) != 1) {
    return srtp_err_status_cipher_fail;
  }
  if (EVP_CipherFinal_ex(state->ctx, none, &out) != 1) {
    return srtp_err_status_auth_fail;
  }
  *octets = body;
  return srtp_err_status_ok;
}

// The GCM specification's test case 4 (McGrew & Viega; also in NIST's GCM vectors): a 60-byte
// plaintext with 20 bytes of AAD. The key carries 12 salt bytes libsrtp2 expects but ignores here.
const std::uint8_t kGcmKey[28] = {0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a,
                                  0x8f, 0x94, 0x67, 0x30, 0x83, 0x08, 0,    0,    0,    0,
                                  0,    0,    0,    0,    0,    0,    0,    0};
std::uint8_t kGcmIv[12] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
const std::uint8_t kGcmAad[20] = {0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed,
                                  0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2};
const std::uint8_t kGcmPlain[60] = {
    0xd9, 0x31, 0x32, 0x25, 0xf8, 0x84, 0x06, 0xe5, 0xa5, 0x59, 0x09, 0xc5, 0xaf, 0xf5, 0x26,
    0x9a, 0x86, 0xa7, 0xa9, 0x53, 0x15, 0x34, 0xf7, 0xda, 0x2e, 0x4c, 0x30, 0x3d, 0x8a, 0x31,
    0x8a, 0x72, 0x1c, 0x3c, 0x0c, 0x95, 0x95, 0x68, 0x09, 0x53, 0x2f, 0xcf, 0x0e, 0x24, 0x49,
    0xa6, 0xb5, 0x25, 0xb1, 0x6a, 0xed, 0xf5, 0xaa, 0x0d, 0xe6, 0x57, 0xba, 0x63, 0x7b, 0x39};
const std::uint8_t kGcmCipherAndTag[76] = {
    0x42, 0x83, 0x1e, 0xc2, 0x21, 0x77, 0x74, 0x24, 0x4b, 0x72, 0x21, 0xb7, 0x84, 0xd0, 0xd4, 0x9c,
    0xe3, 0xaa, 0x21, 0x2f, 0x2c, 0x02, 0xa4, 0xe0, 0x35, 0xc1, 0x7e, 0x23, 0x29, 0xac, 0xa1, 0x2e,
    0x21, 0xd5, 0x14, 0xb2, 0x54, 0x66, 0x93, 0x1c, 0x7d, 0x8f, 0x6a, 0x5a, 0xac, 0x84, 0xaa, 0x05,
    0x1b, 0xa3, 0x0b, 0x39, 0x6a, 0x0a, 0xac, 0x97, 0x3d, 0x58, 0xe0, 0x91, 0x5b, 0xc9, 0x4f, 0xbc,
    0x32, 0x21, 0xa5, 0xdb, 0x94, 0xfa, 0xe9, 0x5a, 0xe7, 0x12, 0x1a, 0x47};
const srtp_cipher_test_case_t kGcmTest = {
    28, kGcmKey, kGcmIv, 60, kGcmPlain, 76, kGcmCipherAndTag, 20, kGcmAad, 16, nullptr};

const srtp_cipher_type_t kOpenSslAesGcm128 = {
    gcm_alloc,   gcm_dealloc,     gcm_init,
    gcm_set_aad, gcm_encrypt,     gcm_decrypt,
    gcm_set_iv,  gcm_get_tag,     "AES-128 GCM (OpenSSL EVP, ringlane)",
    &kGcmTest,   SRTP_AES_GCM_128};

}  // namespace

bool install_openssl_srtp_transforms() {
  return srtp_replace_cipher_type(&kOpenSslAesIcm128, SRTP_AES_ICM_128) == srtp_err_status_ok &&
         srtp_replace_cipher_type(&kOpenSslAesGcm128, SRTP_AES_GCM_128) == srtp_err_status_ok &&
         srtp_replace_auth_type(&kOpenSslHmacSha1, SRTP_HMAC_SHA1) == srtp_err_status_ok;
}

}  // namespace ringlane::crypto
