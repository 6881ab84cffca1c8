#include "ringlane/crypto/digest.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>

namespace ringlane::crypto {
namespace {

// One fetched HMAC implementation for the process and one context per thread: fetching
// per call costs more than the MAC itself on STUN-sized inputs.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (m == nullptr) {
      std::fputs("ringlane: OpenSSL has no HMAC implementation\n", stderr);
      std::abort();
    }
    return m;
  }();
  return mac;
}

struct MacCtx {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac_algorithm());
  ~MacCtx() { EVP_MAC_CTX_free(ctx); }
};

template <std::size_t N>
std::array<std::uint8_t, N> hmac(const char* digest, Bytes key,
                                 std::initializer_list<Bytes> parts) {
  thread_local MacCtx holder;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  std::array<std::uint8_t, N> out{};
  // An empty key is legal for HMAC; OpenSSL wants a non-null pointer.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  if (EVP_MAC_init(holder.ctx, key_ptr, key.size(), params) != 1) {
    std::fputs("ringlane: EVP_MAC_init failed\n", stderr);
    std::abort();
  }
  for (Bytes part : parts) {
    EVP_MAC_update(holder.ctx, part.data(), part.size());
  }
  std::size_t len = 0;
  EVP_MAC_final(holder.ctx, out.data(), &len, out.size());
  return out;
}

}  // namespace

Sha1Digest hmac_sha1(Bytes key, std::initializer_list<Bytes> parts) {
  return hmac<20>("SHA1", key, parts);
}

Sha256Digest hmac_sha256(Bytes key, std::initializer_list<Bytes> parts) {
  return hmac<32>("SHA256", key, parts);
}

Md5Digest md5(std::initializer_list<Bytes> parts) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
  for (Bytes part : parts) {
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  Md5Digest out{};
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::uint32_t crc32(Bytes data) {
  return static_cast<std::uint32_t>(
      ::crc32(::crc32(0L, Z_NULL, 0), data.data(), static_cast<uInt>(data.size())));
}

std::string base64_encode(Bytes data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::vector<std::uint8_t> out(3 * text.size() / 4);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock keeps the bytes that padding stands for; drop them.
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

bool equal_ct(Bytes a, Bytes b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void random_bytes(std::span<std::uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fputs("ringlane: RAND_bytes failed\n", stderr);
    std::abort();
  }
}

std::string random_token(std::size_t bytes) {
  std::vector<std::uint8_t> raw(bytes);
  random_bytes(raw);
  std::string s = base64_encode(raw);
  for (char& c : s) {
    if (c == '/' || c == '+') {
      c = 'x';
    }
  }
  return s;
}

std::string random_alnum(std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::vector<std::uint8_t> bytes(n);
  random_bytes(bytes);
  std::string out;
  for (auto b : bytes) {
    out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  }
  return out;
}

}  // namespace ringlane::crypto
